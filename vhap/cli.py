"""``vhap <subcommand>``: a thin dispatcher.

Each subcommand lives in the module named below as a function ``main(argv: list[str]) -> int`` that
parses its typed config (:func:`vhap.config.parse_config`) and calls one library entry point. Modules
are imported lazily so ``vhap --help`` is instant and one broken optional backend cannot take the
others down.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

from vhap.errors import VhapError

#: name → ("module:function", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "preprocess": ("vhap.preprocess.cli:preprocess_main", "extract frames from videos (mono / NeRSemble)"),
    "matting": ("vhap.preprocess.cli:matting_main", "foreground alpha mattes for extracted frames"),
    "landmarks": ("vhap.preprocess.cli:landmarks_main", "2D facial landmarks per video / camera"),
    "track": ("vhap.track.cli:main", "photometric head tracking (monocular or multi-view)"),
    "export": ("vhap.export.cli:export_main", "export a tracking run as a NeRF/3DGS dataset"),
    "combine": ("vhap.export.cli:combine_main", "union dataset of several exported sequences"),
    "validate-export": ("vhap.export.cli:validate_main", "check an export against the GaussianAvatars contract"),
    "report": ("vhap.track.report:main", "summary figures / metrics table of tracking runs"),
    "qa": ("vhap.qa.cli:main", "quality gates per sequence, dataset dashboard, a dry run's pending work"),
    "assets": ("vhap.model.cli:assets_main", "head-model assets: check what is found / missing"),
    "view": ("vhap.viewer.cli:view_main", "web viewer of a tracking run"),
    "regions": ("vhap.viewer.cli:regions_main", "web region inspector / editor of the head model"),
}


#: errno → (words, fix) for the OS failures users meet with outputs; others print the system's own words
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk full", "free space on that disk or write the outputs to another one"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or write the outputs elsewhere"),
    errno.EROFS: ("read-only file system", "write the outputs to a writable folder"),
    errno.EACCES: ("permission denied", "check the permissions of that path or choose another folder"),
    errno.EPERM: ("operation not permitted", "check the permissions of that path or choose another folder"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EIO: ("input/output error", "check the disk (dmesg) and run again"),
}


def describe_os_error(e: OSError) -> str:
    """``<path>: <words> (<ERRNO>). <fix>`` for an OSError (the path is omitted when the error names none)."""
    code = e.errno
    words, fix = _OS_ERRORS.get(code, (e.strerror or str(e), "")) if code is not None else (str(e), "")
    name = errno.errorcode.get(code, "") if code is not None else ""
    text = f"{words} ({name})" if name else words
    if e.filename is not None:
        text = f"{e.filename}: {text}"
    if e.filename2 is not None:
        text += f" (with {e.filename2})"
    return f"{text}. {fix}" if fix else text


def _usage() -> str:
    width = max(len(k) for k in SUBCOMMANDS)
    lines = ["usage: vhap <subcommand> [options]   (vhap <subcommand> --help for its options)", "", "subcommands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("--version", "-V"):
        from vhap import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"vhap: unknown subcommand '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = SUBCOMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(rest) or 0)
    except VhapError as e:
        print(f"vhap {name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if os.environ.get("VHAP_TRACEBACK"):
            raise
        print(f"vhap {name}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vhap {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
