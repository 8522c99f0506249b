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


def validation_args(wildcards):
    """The subject's sequences, quoted for the shell loop of validate_export."""
    return " ".join(shlex.quote(r["seq"]) for r in sequences_of(wildcards.ds, wildcards.subject))


# One job per subject: `vhap validate-export` on each of its exports, one <seq>.json each, so the DAG
# holds ~400 validation jobs for NeRSemble instead of ~10k (DAG building costs per job). Every export
# is checked even after one fails; the job then fails (its folder is removed) and the log names the
# invalid sequences with their reports.
rule validate_export:
    input:
        exports=job_function(lambda w: subject_paths(EXPORT, w.ds, w.subject)),
    output:
        reports=directory(VALIDATIONS),
    params:
        **step_params(
            "validate",
            seqs=validation_args,
            exports=lambda w: f"{RESULTS}/export/{w.ds}/{w.subject}",
        ),
    log:
        RESULTS + "/logs/validate/{ds}/{subject}.log",
    # tiny CPU jobs: SLURM gets them in bundles (profiles/slurm: group-components)
    group:
        "small"
    threads: step_threads("validate")
    resources:
        **step_resources("validate"),
    conda:
        conda_env("validate")
    shell:
        WRITE_JOB_CONFIG
        + 'out={output.reports:q} && mkdir -p "$out" && rc=0 && '
        + "for seq in {params.job[seqs]}; do "
        + f'{VHAP} validate-export {{params.job[preset]}} --config "$cfg" --json '
        + '{params.job[exports]:q}/{wildcards.subject:q}_"$seq" > "$out/$seq.json" 2>> {log} '
        + '|| {{ rc=1; echo "invalid export: $seq" >> {log}; cat "$out/$seq.json" >> {log}; }}; '
        + "done; exit $rc"
