"""Modules talk through public names only: nothing in ``vhap/``, ``bench/`` or ``tests/`` reaches into another
module's underscored names (``obj._name`` where ``_name`` is not defined in the same file, ``from m import _name``).
A module's private helpers can then change without breaking callers they never promised anything to."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("vhap", "bench", "tests")

#: private names of third-party libraries that we use on purpose, anywhere, each for its reason
THIRD_PARTY = {
    "_foreach_add_": "torch: multi-tensor add (the tracker's Adam updates all parameters in one launch)",
    "_fused_adam_": "torch: the fused Adam kernel that torch.optim.Adam(fused=True) calls, with tensor rates",
    "_get_plugin": "nvdiffrast: builds/loads its compiled plugin (so its start-up is not booked to a step)",
    "_version": "torch: a tensor's in-place version counter, a cache key that changes whenever it is written",
}

#: cross-module private access still to be removed by the helpers who own these files (the lead deletes each
#: entry once its owner's change is merged): (file, name)
PENDING: set[tuple[str, str]] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a file defines itself: functions, classes, assigned names and attributes, parameters."""
    names: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            names.add(n.attr)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            names.add(n.target.id)
    return names


def private_accesses(path: Path, rel: str) -> list[tuple[str, int, str]]:
    """(file, line, name) of every access to another module's private name in the file at ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    own = _defined_names(tree)
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and _private(n.attr):
            if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                continue
            if n.attr not in own:
                found.append((rel, n.lineno, n.attr))
        elif isinstance(n, ast.ImportFrom):
            found += [(rel, n.lineno, a.name) for a in n.names if _private(a.name)]
    return found


def _all_accesses() -> list[tuple[str, int, str]]:
    out = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            out += private_accesses(path, rel)
    return out


def test_no_module_reaches_into_another_modules_private_names():
    found = _all_accesses()
    bad = [f"{f}:{line}: {name}" for f, line, name in found if name not in THIRD_PARTY and (f, name) not in PENDING]
    assert not bad, "private names used across modules (make them public or use the public API):\n" + "\n".join(bad)


def test_the_check_finds_what_it_must(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from vhap.track.tracker import _hidden\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def f(self, other, tracker):\n"
        "        return other._mine + tracker._step() + self._x + type(self).__name__\n"
    )
    assert [(line, name) for _, line, name in private_accesses(src, "m.py")] == [(1, "_hidden"), (6, "_step")]
