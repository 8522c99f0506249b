"""Benchmarks and profiling tools of the project (not part of the ``vhap`` wheel).

Run a tool from the repository root as ``python bench/<name>.py`` (or ``python -m bench.<name>``); tests and
other tools import it as ``bench.<name>``. A script started by path puts the repository root on ``sys.path``
itself, so that ``bench`` and the source tree's ``vhap`` are importable.
"""
