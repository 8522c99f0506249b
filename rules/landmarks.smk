# 2D landmarks: <sequence folder>/images[_<n>]/ -> <sequence folder>/landmark2d/<detector>[/<serial>].npz
#.


rule landmarks:
    input:
        # the chain preprocess -> matting -> landmarks -> track orders the steps; an edge per step
        # before it would only add ~30k file lookups to a NeRSemble-sized DAG (config changes upstream
        # are in params.job[upstream])
        mattes=stamp_of("matting"),
    output:
        stamp=stamp_of("landmarks"),
    params:
        **step_params("landmarks", folder=lambda w: seq_record(w).folder),
    log:
        log_of("landmarks"),
    threads: step_threads("landmarks")
    resources:
        **step_resources("landmarks"),
    conda:
        conda_env("landmarks")
    shell:
        vhap_shell("landmarks") + '{params.job[folder]:q} > {log} 2>&1 && cp "$cfg" {output}'
