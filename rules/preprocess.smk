# Frames: video(s) -> <sequence folder>/images[_<n>]/ (VHAP layout, in place next to the raw videos;
# the demo's frames go to results/data/demo). The output is a stamp under results/stamps/: the frames
# live in the dataset and the subcommand writes them atomically.
#
# Under SLURM, preprocess -> matting -> landmarks of one sequence are one SLURM job: profiles/slurm puts
# the three rules in group `prep` (each sequence's jobs are their own connected component, so a failure
# stays within its sequence). Groups live in the cluster profile: local runs ignore them, and a dry run
# without them is faster.


def preprocess_source(wildcards):
    """A video file (monocular) or the folder of cam_<serial>.mp4 files (multi-view)."""
    rec = seq_record(wildcards)
    return rec.videos[0] if rec.layout == "monocular" else rec.folder


@job_function
def preprocess_input(wildcards):
    """The video (monocular), or the sequence folder flagged ancient (multi-view).

    A multi-view sequence folder is an input only to require that it exists: the later steps write
    alpha_maps/ and landmark2d/ into it, which makes it newer than the frames' stamp, so its mtime must
    not count. Its videos are not inputs one by one either (16 file lookups per job add up over a
    dataset-sized dry run); a video added, removed or replaced changes ``params.job[videos]`` instead.
    """
    rec = seq_record(wildcards)
    return rec.videos[0] if rec.layout == "monocular" else ancient(rec.folder)


def video_stamp(wildcards):
    try:
        return wf_plan.video_stamp(seq_record(wildcards))
    except VhapError as e:
        raise WorkflowError(str(e))


rule preprocess:
    input:
        preprocess_input,
    output:
        stamp=stamp_of("preprocess"),
    params:
        **step_params(
            "preprocess",
            folder=lambda w: seq_record(w).folder,
            source=preprocess_source,
            videos=video_stamp,
        ),
    log:
        log_of("preprocess"),
    threads: step_threads("preprocess")
    resources:
        **step_resources("preprocess"),
    conda:
        conda_env("preprocess")
    shell:
        vhap_shell("preprocess") + '{params.job[source]:q} --output {params.job[folder]:q} > {log} 2>&1 && cp "$cfg" {output}'
