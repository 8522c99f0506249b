# Foreground mattes: <sequence folder>/images[_<n>]/ -> <sequence folder>/alpha_maps/.


rule matting:
    input:
        frames=stamp_of("preprocess"),
    output:
        stamp=stamp_of("matting"),
    params:
        **step_params("matting", folder=lambda w: seq_record(w).folder),
    log:
        log_of("matting"),
    threads: step_threads("matting")
    resources:
        **step_resources("matting"),
    conda:
        conda_env("matting")
    shell:
        vhap_shell("matting") + '{params.job[folder]:q} > {log} 2>&1 && cp "$cfg" {output}'
