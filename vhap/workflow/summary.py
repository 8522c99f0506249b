"""The pending work of a dry run, per step and subject (what ``snakemake -n`` lists, condensed).

``snakemake -n`` prints every pending job with its rule, wildcards and reason; over a dataset that is
tens of MB. :func:`pending_table` folds it into one line per (step, dataset, subject) with the
number of jobs and their reasons, params changes named by key.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

_RULE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:local)?rule (\w+):")
_WILDCARDS = re.compile(r"^\s*wildcards: (.*)$")
_REASON = re.compile(r"^\s*reason: (.*)$")
# a changed param value as the rules write it: `key: <json>` (vhap.workflow.settings.config_params)
_PARAM_KEY = re.compile(r"'(\w+): ")


@dataclass
class PendingJob:
    rule: str
    wildcards: dict = field(default_factory=dict)
    reason: str = ""


def parse_dry_run(text: str) -> list[PendingJob]:
    """The jobs of a ``snakemake -n`` listing (group jobs' members included)."""
    jobs: list[PendingJob] = []
    for line in text.splitlines():
        m = _RULE.match(line)
        if m:
            jobs.append(PendingJob(m.group(1)))
            continue
        if not jobs:
            continue
        m = _WILDCARDS.match(line)
        if m:
            jobs[-1].wildcards = dict(kv.split("=", 1) for kv in m.group(1).split(", ") if "=" in kv)
            continue
        m = _REASON.match(line)
        if m:
            jobs[-1].reason = m.group(1)
    return jobs


def short_reason(reason: str) -> list[str]:
    """The reasons of a job, shortened; a params change names the changed keys (``params: w, exp``)."""
    out = []
    for part in reason.split("; "):
        if part.startswith("Params have changed"):
            now = part.split(" now: ", 1)[1] if " now: " in part else part
            keys = sorted(set(_PARAM_KEY.findall(now)))
            out.append(f"params: {', '.join(keys)}" if keys else "params")
        elif part.startswith("Missing output files"):
            out.append("missing output")
        elif part.startswith("Input files updated by another job"):
            out.append("upstream rerun")
        elif part.startswith("Updated input files"):
            out.append("input newer")
        elif part:
            out.append(part.split(":", 1)[0][:40])
    return out


def pending_table(jobs: list[PendingJob]) -> str:
    """One line per (step, dataset, subject): jobs pending and why, sorted; and a total per step."""
    rows: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    count: Counter = Counter()
    for j in jobs:
        if j.rule in ("all", "demo", "qa"):
            continue
        key = (j.rule, j.wildcards.get("ds", ""), j.wildcards.get("subject", ""))
        count[key] += 1
        rows[key].update(short_reason(j.reason))
    if not count:
        return "nothing pending"
    lines = [f"{'step':<16}{'dataset':<14}{'subject':<16}{'jobs':>6}  why"]
    for key in sorted(count):
        why = ", ".join(f"{r} ({n})" if n != count[key] else r for r, n in rows[key].most_common())
        lines.append(f"{key[0]:<16}{key[1]:<14}{key[2]:<16}{count[key]:>6}  {why}")
    per_step = Counter()
    for (rule, _, _), n in count.items():
        per_step[rule] += n
    lines.append("total: " + ", ".join(f"{r} {n}" for r, n in sorted(per_step.items())))
    return "\n".join(lines)
