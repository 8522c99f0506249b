# vhap workflow: videos / NeRSemble captures -> frames -> mattes -> landmarks -> tracking -> export
# (+ quality gates, unions, reports, a dataset dashboard). One job per (dataset, subject, sequence) per
# step; every rule calls one `vhap` subcommand. See docs/workflow.md.
#
#   snakemake demo --profile profiles/local           # the carphone demo, CPU, offline
#   snakemake -n --profile profiles/local             # what is pending for config/config.yaml
#   snakemake -n ... | vhap qa pending                # the same, one line per step and subject
#   snakemake --profile profiles/slurm                # everything, through sbatch
#   snakemake qa --profile profiles/local             # one HTML page of every sequence's quality verdict
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
    qa,
    dashboard,


rule all:
    """Every dataset of the config: quality gates, unions, per-subject reports and the dashboards."""
    input:
        [t for ds in DATASETS for t in dataset_targets(ds)],
        [DASHBOARD.format(ds=ds) for ds in DATASETS],


rule qa:
    """The dashboard of every dataset of the config: results/qa/<ds>.html."""
    input:
        [DASHBOARD.format(ds=ds) for ds in DATASETS],


warn_unions()


rule demo:
    """The whole pipeline on the carphone clip (open head model, CPU, `demo` tracking preset)."""
    input:
        lambda w: dataset_targets("demo") or raise_(WorkflowError(DEMO_MISSING)),
    params:
        where=lambda w: {
            "frames": SEQUENCES[("demo", "carphone", "carphone")].folder,
            "tracking": TRACK.format(ds="demo", subject="carphone", seq="carphone"),
            "export": EXPORT.format(ds="demo", subject="carphone", seq="carphone"),
            "quality gate": GATES.format(ds="demo", subject="carphone") + "/carphone.json",
            "report": REPORT.format(ds="demo", subject="carphone"),
        },
    run:
        print("\nvhap demo finished. Results:")
        for what, path in params.where.items():
            print(f"  {what:<11} {Path(path).absolute()}")
        print("  HTML report: snakemake --report report.html -- demo\n")
