# Per-subject summary of the tracking runs (metrics table, figures), also shown by `snakemake --report`;
# and the dataset dashboard: one HTML page of every sequence's gate verdict (target `qa`).


rule report:
    input:
        runs=job_function(lambda w: subject_paths(TRACK, w.ds, w.subject)),
        gates=GATES,
    output:
        summary=report(
            directory(REPORT),
            patterns=["{name}.png", "{name}.json", "{name}.md"],
            caption="../report/summary.rst",
            category="Summary",
            subcategory="{ds} / {subject}",
            labels={"dataset": "{ds}", "subject": "{subject}", "file": "{name}"},
        ),
    params:
        **step_params("report"),
    log:
        RESULTS + "/logs/report/{ds}/{subject}.log",
    threads: step_threads("report")
    resources:
        **step_resources("report"),
    conda:
        conda_env("report")
    shell:
        vhap_shell("report") + "--runs {input.runs:q} --output {output.summary:q} > {log} 2>&1"


def dashboard_title(wildcards):
    return f"vhap quality gates: dataset {wildcards.ds}"


rule dashboard:
    input:
        gates=job_function(lambda w: [GATES.format(ds=w.ds, subject=s) for s in subjects_of(w.ds)]),
    output:
        page=DASHBOARD,
    params:
        title=dashboard_title,
        thresholds=job_function(lambda w: qa_args(w).replace("--", "")),
    log:
        RESULTS + "/logs/qa/{ds}.log",
    shell:
        f"{VHAP} qa dashboard " + "--verdicts {input.gates:q} --output {output.page:q} "
        + "--title {params.title:q} --thresholds {params.thresholds:q} > {log} 2>&1"
