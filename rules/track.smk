# Photometric head tracking: one run folder per sequence (results/track/<ds>/<subject>/<seq>/); the sequence
# is addressed by its folder, as in the steps before. Its checkpoints go to results/.resume/<ds>/<subject>/<seq>/,
# outside the output: snakemake deletes the output of a failed or killed job, and the retry (or the next run)
# resumes from there; `vhap track` removes them when the run finishes.


rule track:
    input:
        # frames and mattes come before the landmarks (see landmarks.smk)
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
            folder=lambda w: seq_record(w).folder,
            resume=lambda w: RESUME.format(ds=w.ds, subject=w.subject, seq=w.seq),
        ),
    log:
        log_of("track"),
    threads: step_threads("track")
    # k > 1 track jobs per GPU on a cluster: k of them form one job (config tracks_per_gpu)
    group: track_group
    resources:
        **step_resources("track"),
    conda:
        conda_env("track")
    shell:
        vhap_shell("track")
        + "--data.sequence-dir {params.job[folder]:q} "
        + "--exp.output_folder {output.run:q} --exp.checkpoint-dir {params.job[resume]:q} > {log} 2>&1"
