# Per-subject summary of the tracking runs (metrics table, figures), also shown by `snakemake --report`.


rule report:
    input:
        runs=job_function(lambda w: subject_paths(TRACK, w.ds, w.subject)),
        validated=VALIDATIONS,
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
    group:
        "small"
    threads: step_threads("report")
    resources:
        **step_resources("report"),
    conda:
        conda_env("report")
    shell:
        vhap_shell("report") + "--runs {input.runs:q} --output {output.summary:q} > {log} 2>&1"
