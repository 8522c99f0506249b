# Frames: video(s) -> <sequence folder>/images[_<n>]/ (VHAP layout, in place next to the raw videos;
# the demo's frames go to results/data/demo). The output is a stamp under results/stamps/: the frames
# live in the dataset and the subcommand writes them atomically.


def preprocess_source(wildcards):
    """A video file (monocular) or the folder of cam_<serial>.mp4 files (multi-view)."""
    rec = seq_record(wildcards)
    return rec["videos"][0] if rec["layout"] == "monocular" else rec["folder"]


rule preprocess:
    input:
        videos=job_function(lambda w: seq_record(w)["videos"]),
    output:
        stamp=stamp_of("preprocess"),
    params:
        **step_params(
            "preprocess",
            folder=lambda w: seq_record(w)["folder"],
            source=preprocess_source,
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
