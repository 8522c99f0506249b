"""Workflow logic that is more than wiring, used by the Snakefile (rules/common.smk) and tested with pytest.

- :mod:`vhap.workflow.plan`: the dataset plan: which sequences exist (discovered with
  :func:`vhap.data.layout.discover`, or read from a TSV listing), written once by the planning process
  and read by every job instead of scanning the dataset again;
- :mod:`vhap.workflow.settings`: step settings: per-layout default presets, merging, and the check of
  every step's config against the subcommand's typed config before anything is queued;
- :mod:`vhap.workflow.summary`: the pending-work table of a dry run, per step and subject.

Nothing here imports torch: every snakemake process (and every SLURM job step) loads this.
"""
