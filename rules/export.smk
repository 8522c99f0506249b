# NeRF/3DGS export of a tracking run, then its check against the GaussianAvatars contract.


rule export:
    input:
        run=TRACK,
    output:
        export=directory(EXPORT),
    params:
        **step_params("export"),
    log:
        log_of("export"),
    threads: step_threads("export")
    resources:
        **step_resources("export"),
    conda:
        conda_env("export")
    shell:
        vhap_shell("export") + "--src {input.run:q} --tgt {output.export:q} > {log} 2>&1"


rule validate_export:
    input:
        export=EXPORT,
    output:
        report=VALIDATION,
    params:
        **step_params("validate"),
    log:
        log_of("validate"),
    # many tiny CPU jobs: SLURM gets them in bundles (profiles/slurm: group-components)
    group:
        "small"
    threads: step_threads("validate")
    resources:
        **step_resources("validate"),
    conda:
        conda_env("validate")
    shell:
        vhap_shell("validate-export") + "--json {input.export:q} > {output.report:q} 2> {log}"
