# Union datasets of one subject (datasets.<ds>.combine: NAME -> sequences); the union folder sits next
# to its member exports because it references their files through ../<member>/ paths. Members whose
# quality gate failed (results/qa/<ds>/<subject>/<seq>.FAILED) are left out, with a line in the log,
# unless `qa.force_unions` (or datasets.<ds>.force_unions) is set.


@job_function
def union_members(wildcards):
    members = ALL_DATASETS[wildcards.ds]["combine"].get(wildcards.name)
    if members is None:
        raise WorkflowError(f"no union '{wildcards.name}' in datasets.{wildcards.ds}.combine")
    return subject_paths(EXPORT, wildcards.ds, wildcards.subject, tuple(members))


def union_loop(wildcards):
    """`member<TAB>export` words for the shell loop that drops failed members."""
    members = ALL_DATASETS[wildcards.ds]["combine"][wildcards.name]
    exports = subject_paths(EXPORT, wildcards.ds, wildcards.subject, tuple(members))
    return " ".join(shlex.quote(f"{m}={e}") for m, e in zip(members, exports))


rule combine:
    input:
        exports=union_members,
        gates=GATES,
    output:
        union=directory(UNION),
    params:
        **step_params(
            "combine",
            members=union_loop,
            force=lambda w: "1" if force_unions(w.ds) else "0",
        ),
    log:
        log_of("combine", union=True),
    threads: step_threads("combine")
    resources:
        **step_resources("combine"),
    conda:
        conda_env("combine")
    shell:
        write_job_config("combine")
        + "src=(); for pair in {params.job[members]}; do m=${{pair%%=*}}; "
        + 'if [ -e {input.gates:q}/"$m".FAILED ] && [ {params.job[force]} != 1 ]; then '
        + 'echo "union {wildcards.name}: $m left out (quality gate failed: $(head -1 {input.gates:q}/"$m".FAILED))" | tee -a {log} >&2; '
        + 'else src+=("${{pair#*=}}"); fi; done; '
        + 'if [ ${{#src[@]}} -eq 0 ]; then echo "union {wildcards.name}: every member failed its quality gate" | tee -a {log} >&2; exit 1; fi; '
        + f'{VHAP} combine {{params.job[preset]}} --config "$cfg" '
        + '--src "${{src[@]}}" --tgt {output.union:q} >> {log} 2>&1'
