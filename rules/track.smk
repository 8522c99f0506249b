# Photometric head tracking: one run folder per sequence (results/track/<ds>/<subject>/<seq>/).


rule track:
    input:
        frames=stamp_of("preprocess"),
        mattes=stamp_of("matting"),
        landmarks=stamp_of("landmarks"),
    output:
        run=report(
            directory(TRACK),
            patterns=["{name,loss_curves}.png", "{name,overlay}.mp4", "{name,metrics}.json"],
            caption="../report/track.rst",
            category="Tracking",
            subcategory="{ds} / {subject} / {seq}",
            labels={"dataset": "{ds}", "subject": "{subject}", "sequence": "{seq}", "file": "{name}"},
        ),
    params:
        **step_params(
            "track",
            root=lambda r: r["root"],
            layout=lambda r: r["layout"],
            subject=lambda r: f"--data.subject {r['subject']}" if r["layout"] != "monocular" else "",
        ),
    log:
        log_of("track"),
    threads: step_threads("track")
    resources:
        **step_resources("track"),
    conda:
        conda_env("track")
    shell:
        vhap_shell("track")
        + "--data.root {params.job[root]:q} --data.layout {params.job[layout]} {params.job[subject]} --data.sequence {wildcards.seq:q} "
        + "--exp.output_folder {output.run:q} > {log} 2>&1"
