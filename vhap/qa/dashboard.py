"""One static HTML page for a whole dataset's quality verdicts.

Usable at 10k sequences: the verdicts are embedded once as JSON and the page renders one page of rows
at a time (sortable by any column, failures first by default, filterable); thumbnails are links to
the runs' own overlay frames (nothing is copied) and load lazily, only for the rows shown.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from vhap.qa.gates import Verdict
from vhap.utils.atomic import write_text_atomic

COLUMNS = (
    ("name", "sequence"),
    ("passed", "gate"),
    ("nme_percent", "NME %"),
    ("face_psnr_db", "face PSNR dB"),
    ("head_coverage", "head coverage"),
    ("frames", "frames"),
    ("failures", "why"),
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:16px;color:#222;font-size:14px}
h1{font-size:20px;margin:0 0 6px}
.summary{margin:0 0 10px}.summary b.bad{color:#b00020}.summary b.ok{color:#1b5e20}
.controls{margin:8px 0;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:middle}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0;user-select:none;white-space:nowrap}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td.gate{color:#fff;background:#b00020;font-weight:bold}
tr.pass td.gate{color:#1b5e20;font-weight:bold}
td.why{color:#b00020;max-width:28em}
.strip{display:flex;gap:2px}.strip img{height:72px;width:auto;background:#eee;border-radius:2px}
button{padding:2px 10px}
</style></head><body>
<h1>__TITLE__</h1>
<p class="summary" id="summary"></p>
<div class="controls">
<label>filter <input id="filter" placeholder="name or reason" size="24"></label>
<label><input type="checkbox" id="onlyfail"> failures only</label>
<span><button id="prev">&lsaquo; prev</button> <span id="pageinfo"></span>
<button id="next">next &rsaquo;</button></span>
<label>rows per page
<select id="per"><option>50</option><option selected>100</option><option>500</option></select></label>
</div>
<table><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table>
<script id="data" type="application/json">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const COLS = D.columns, ROWS = D.rows;
let sortKey = 'passed', sortDir = 1, page = 0;
const head = document.getElementById('head');
for (const [key, label] of COLS.concat([['thumbs', 'frames (overlay)']])) {
  const th = document.createElement('th'); th.textContent = label; th.dataset.key = key;
  if (key !== 'thumbs') th.onclick = () => {
    sortDir = (sortKey === key) ? -sortDir : 1; sortKey = key; page = 0; render();
  };
  head.appendChild(th);
}
function cmp(a, b) {
  let x = a[sortKey], y = b[sortKey];
  if (sortKey === 'failures') { x = x.join('; '); y = y.join('; '); }
  if (x === null || x === undefined) return 1;
  if (y === null || y === undefined) return -1;
  if (typeof x === 'boolean') { x = +x; y = +y; }
  const c = (x < y) ? -1 : (x > y) ? 1 : 0;
  return c ? c * sortDir : (a.name < b.name ? -1 : 1);
}
function fmt(key, v) {
  if (v === null || v === undefined) return 'n/a';
  if (key === 'passed') return v ? 'pass' : 'FAIL';
  if (key === 'failures') return v.join('; ');
  if (key === 'nme_percent') return v.toFixed(2);
  if (key === 'face_psnr_db') return v.toFixed(2);
  if (key === 'head_coverage') return v.toFixed(3);
  return String(v);
}
function render() {
  const q = document.getElementById('filter').value.toLowerCase();
  const onlyFail = document.getElementById('onlyfail').checked;
  const per = +document.getElementById('per').value;
  let rows = ROWS.filter(r => (!onlyFail || !r.passed) &&
    (!q || r.name.toLowerCase().includes(q) || r.failures.join(' ').toLowerCase().includes(q)));
  rows.sort(cmp);
  const pages = Math.max(1, Math.ceil(rows.length / per));
  page = Math.min(page, pages - 1);
  document.getElementById('pageinfo').textContent = `page ${page + 1} / ${pages} (${rows.length} rows)`;
  for (const th of head.children)
    th.className = th.dataset.key === sortKey ? (sortDir > 0 ? 'sorted-asc' : 'sorted-desc') : '';
  const body = document.getElementById('rows'); body.textContent = '';
  for (const r of rows.slice(page * per, (page + 1) * per)) {
    const tr = document.createElement('tr'); tr.className = r.passed ? 'pass' : 'fail';
    for (const [key] of COLS) {
      const td = document.createElement('td'); td.textContent = fmt(key, r[key]);
      td.className = key === 'passed' ? 'gate' : key === 'failures' ? 'why' : (typeof r[key] === 'number' ? 'num' : '');
      tr.appendChild(td);
    }
    const td = document.createElement('td'); const strip = document.createElement('div'); strip.className = 'strip';
    for (const src of r.thumbs) {
      const img = document.createElement('img'); img.loading = 'lazy'; img.src = src; img.alt = '';
      strip.appendChild(img);
    }
    td.appendChild(strip); tr.appendChild(td); body.appendChild(tr);
  }
}
const failed = ROWS.filter(r => !r.passed).length;
document.getElementById('summary').innerHTML = `${ROWS.length} sequences: <b class="bad">${failed} failed</b>, ` +
  `<b class="ok">${ROWS.length - failed} passed</b>. Thresholds: ${D.thresholds}. Click a column to sort.`;
document.getElementById('prev').onclick = () => { page = Math.max(0, page - 1); render(); };
document.getElementById('next').onclick = () => { page += 1; render(); };
for (const id of ['filter', 'onlyfail', 'per']) document.getElementById(id).oninput = () => { page = 0; render(); };
render();
</script></body></html>
"""


def dashboard_rows(verdicts: list[Verdict], page_dir: Path) -> list[dict]:
    """One table row per verdict; thumbnail paths relative to the page's folder."""
    rows = []
    for v in verdicts:
        row = {"name": v.name, "passed": v.passed, "failures": list(v.failures)}
        for key, _ in COLUMNS:
            if key in v.figures:
                row[key] = v.figures[key]
        run = Path(v.run)
        row["thumbs"] = [Path(os.path.relpath(run / t, page_dir)).as_posix() for t in v.thumbnails]
        rows.append(row)
    return rows


def write_dashboard(path: Path, verdicts: list[Verdict], title: str, thresholds: str) -> None:
    """Write the page atomically."""
    path = Path(path)
    data = {"columns": [list(c) for c in COLUMNS], "rows": dashboard_rows(verdicts, path.parent.absolute()),
            "thresholds": thresholds}  # fmt: skip
    # "</" inside the JSON would end the script element early
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = _PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, page)
