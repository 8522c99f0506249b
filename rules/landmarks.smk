# 2D landmarks: <sequence folder>/images/ -> <sequence folder>/landmark2d/<detector>[/<serial>].npz.


rule landmarks:
    input:
        frames=stamp_of("preprocess"),
        mattes=stamp_of("matting"),
    output:
        stamp=stamp_of("landmarks"),
    params:
        **step_params("landmarks", folder=lambda r: r["folder"]),
    log:
        log_of("landmarks"),
    threads: step_threads("landmarks")
    resources:
        **step_resources("landmarks"),
    conda:
        conda_env("landmarks")
    shell:
        vhap_shell("landmarks") + '{params.job[folder]:q} > {log} 2>&1 && cp "$cfg" {output}'
