# Photometric head tracking: one run folder per sequence (results/track/<ds>/<subject>/<seq>/).


rule track:
    input:
        frames=stamp_of("preprocess"),
        mattes=stamp_of("matting"),
        landmarks=stamp_of("landmarks"),
    output:
        run=report(
            directory(TRACK),
            patterns=["{name}.png", "{name}.mp4", "{name}.json"],
            caption="../report/track.rst",
            category="Tracking",
            subcategory="{ds} / {subject} / {seq}",
            labels={"dataset": "{ds}", "subject": "{subject}", "sequence": "{seq}", "file": "{name}"},
        ),
    params:
        **step_params("track"),
        root=lambda w: seq_record(w)["root"],
        layout=lambda w: seq_record(w)["layout"],
        subject=lambda w: f"--data.subject {w.subject}" if seq_record(w)["layout"] != "monocular" else "",
    log:
        log_of("track"),
    threads: step_threads("track")
    resources:
        **step_resources("track"),
    conda:
        "../envs/vhap.yaml"
    shell:
        vhap_shell("track")
        + "--data.root {params.root:q} --data.layout {params.layout} {params.subject} --data.sequence {wildcards.seq:q} "
        + "--exp.output_folder {output.run:q} > {log} 2>&1"
