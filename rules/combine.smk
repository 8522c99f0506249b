# Union datasets of one subject (datasets.<ds>.combine: NAME -> sequences); the union folder sits next
# to its member exports because it references their files through ../<member>/ paths.


@job_function
def union_members(wildcards):
    members = ALL_DATASETS[wildcards.ds]["combine"].get(wildcards.name)
    if members is None:
        raise WorkflowError(f"no union '{wildcards.name}' in datasets.{wildcards.ds}.combine")
    return subject_paths(EXPORT, wildcards.ds, wildcards.subject, tuple(members))


rule combine:
    input:
        exports=union_members,
        validated=VALIDATIONS,
    output:
        union=directory(UNION),
    params:
        **step_params("combine"),
    log:
        log_of("combine", union=True),
    threads: step_threads("combine")
    resources:
        **step_resources("combine"),
    conda:
        conda_env("combine")
    shell:
        vhap_shell("combine") + "--src {input.exports:q} --tgt {output.union:q} > {log} 2>&1"
