# NeRF/3DGS export of a tracking run; then, per subject, the quality gates: each export validated
# against the GaussianAvatars contract (images decoded) and each run's figures against the thresholds
# of config `qa`.


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


def gate_args(wildcards):
    """--runs/--exports/--names of every sequence of the subject, quoted."""
    recs = sequences_of(wildcards.ds, wildcards.subject)
    q = lambda xs: " ".join(shlex.quote(x) for x in xs)
    runs = subject_paths(TRACK, wildcards.ds, wildcards.subject)
    exports = subject_paths(EXPORT, wildcards.ds, wildcards.subject)
    return f"--runs {q(runs)} --exports {q(exports)} --names {q(r.seq for r in recs)}"


# One job per subject (~400 for NeRSemble, instead of ~10k: DAG building costs per job). A sequence
# that fails a gate does not fail the job: its verdict says so and <seq>.FAILED marks it (unions leave
# it out unless forced; the dashboard lists it first). Under SLURM, with the report, one SLURM job
# (profiles/slurm: group `subject`).
rule gate:
    input:
        runs=job_function(lambda w: subject_paths(TRACK, w.ds, w.subject)),
        exports=job_function(lambda w: subject_paths(EXPORT, w.ds, w.subject)),
    output:
        verdicts=directory(GATES),
    params:
        **step_params("validate", seqs=gate_args, thresholds=qa_args),
    log:
        RESULTS + "/logs/qa/{ds}/{subject}.log",
    threads: step_threads("validate")
    resources:
        **step_resources("validate"),
    conda:
        conda_env("validate")
    shell:
        vhap_shell("validate", "qa gate") + "{params.job[seqs]} {params.job[thresholds]} --output {output.verdicts:q} > {log} 2>&1"
