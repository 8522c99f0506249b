# vhap workflow: videos / NeRSemble captures -> frames -> mattes -> landmarks -> tracking -> export
# (+ validation, unions, reports). One job per (dataset, subject, sequence) per step; every rule calls
# one `vhap` subcommand. See docs/workflow.md.
#
#   snakemake demo --profile profiles/default        # the carphone demo, CPU, offline
#   snakemake -n --profile profiles/default           # what is pending for config/config.yaml
#   snakemake --profile profiles/slurm                # everything, through sbatch
#   snakemake --report report.html                    # HTML report of the finished runs (-- demo: of the demo)

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/matting.smk"
include: "rules/landmarks.smk"
include: "rules/track.smk"
include: "rules/export.smk"
include: "rules/combine.smk"
include: "rules/report.smk"


report: "report/workflow.rst"


localrules:
    all,
    demo,


rule all:
    """Every dataset of the config: validated exports, unions and per-subject reports."""
    input:
        [t for ds in DATASETS for t in dataset_targets(ds)],


rule demo:
    """The whole pipeline on the carphone clip (open head model, CPU, `demo` tracking preset)."""
    input:
        lambda w: dataset_targets("demo") or raise_(WorkflowError(DEMO_MISSING)),
    params:
        where=lambda w: {
            "frames": SEQUENCES[("demo", "carphone", "carphone")]["folder"],
            "tracking": TRACK.format(ds="demo", subject="carphone", seq="carphone"),
            "export": EXPORT.format(ds="demo", subject="carphone", seq="carphone"),
            "validation": VALIDATION.format(ds="demo", subject="carphone", seq="carphone"),
            "report": REPORT.format(ds="demo", subject="carphone"),
        },
    run:
        print("\nvhap demo finished. Results:")
        for what, path in params.where.items():
            print(f"  {what:<11} {Path(path).absolute()}")
        print("  HTML report: snakemake --report report.html -- demo\n")
