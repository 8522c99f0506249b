# Photometric head tracking: one run folder per sequence (results/track/<ds>/<subject>/<seq>/). Its
# checkpoints go to results/.resume/<ds>/<subject>/<seq>/, outside the output: snakemake deletes the output
# of a failed or killed job, and the retry (or the next run) resumes from there; `vhap track` removes
# them when the run finishes.


def track_data_args(wildcards):
    """`--data.*` arguments of a sequence: dataset root, layout and (multi-view) subject."""
    rec = seq_record(wildcards)
    subject = f" --data.subject {shlex.quote(rec.subject)}" if rec.layout != "monocular" else ""
    return f"--data.root {shlex.quote(rec.root)} --data.layout {rec.layout}{subject}"


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
            data=track_data_args,
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
        + "{params.job[data]} --data.sequence {wildcards.seq:q} "
        + "--exp.output_folder {output.run:q} --exp.checkpoint-dir {params.job[resume]:q} > {log} 2>&1"
