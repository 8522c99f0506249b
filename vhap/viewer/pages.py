"""The two single-file web pages (HTML + CSS + JS, no external resources: they work offline and through tunnels).

Kept as Python strings so they ship with the package without package-data rules. Each page marks its state
in ``document.body.dataset`` (``frames`` = pictures shown so far, ``busy``) so tests can wait on it.
"""

from __future__ import annotations

_STYLE = r"""
<style>
  :root { --bg:#1e1f22; --panel:#2a2c30; --fg:#e6e6e6; --muted:#9aa0a6; --acc:#4fa3ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--fg);
         display:flex; height:100vh; overflow:hidden; }
  #side { width:300px; min-width:300px; background:var(--panel); padding:10px 12px; overflow-y:auto; }
  #main { flex:1; display:flex; align-items:center; justify-content:center; position:relative; }
  #view { max-width:100%; max-height:100%; image-rendering:auto; user-select:none; -webkit-user-drag:none; }
  .fit #view { width:100%; height:100%; object-fit:contain; }
  h1 { font-size:15px; margin:2px 0 8px; } h2 { font-size:12px; text-transform:uppercase; color:var(--muted);
  margin:14px 0 4px; letter-spacing:.05em; }
  label { display:block; margin:3px 0; } input[type=range] { width:100%; }
  select, input[type=text], input[type=number] { width:100%; background:#1b1c1f; color:var(--fg);
         border:1px solid #444; border-radius:3px; padding:3px; }
  button { background:#3a3d42; color:var(--fg); border:1px solid #555; border-radius:3px; padding:4px 8px;
         margin:2px 2px 2px 0; cursor:pointer; } button:hover { border-color:var(--acc); }
  .row { display:flex; gap:4px; align-items:center; } .row > * { flex:1; }
  table { width:100%; border-collapse:collapse; } td { padding:1px 3px; border-bottom:1px solid #3a3a3a; }
  td.v { text-align:right; font-variant-numeric:tabular-nums; }
  #status { color:var(--muted); font-size:12px; min-height:2.8em; word-break:break-all; }
  .muted { color:var(--muted); } .err { color:#ff7b72; }
  #busy { position:absolute; top:8px; right:12px; color:var(--muted); }
  .legend span { display:inline-block; width:10px; height:10px; border-radius:5px; margin:0 4px 0 8px; }
</style>
"""

_COMMON_JS = r"""
const $ = (id) => document.getElementById(id);
function setStatus(msg, err) { const s = $('status'); s.textContent = msg; s.className = err ? 'err' : ''; }
// this launch's secret (from the URL the command printed); every API call carries it
const TOKEN = new URLSearchParams(location.search).get('token') || '';
const AUTH = {'X-Vhap-Token': TOKEN};
async function api(path, body) {
  const opt = body === undefined ? {headers: AUTH} : {method: 'POST', body: JSON.stringify(body),
                                          headers: {...AUTH, 'Content-Type': 'application/json'}};
  const r = await fetch(path, opt);
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
// Show a PNG from `url` in #view; at most one request in flight, the newest wish wins.
const loader = { inflight: false, next: null, shown: 0, url: null, onshown: null };
function showImage(url) {
  loader.next = url;
  if (!loader.inflight) pump();
}
async function pump() {
  if (loader.next === null) { document.body.dataset.busy = '0'; $('busy').textContent = ''; return; }
  const url = loader.next; loader.next = null; loader.inflight = true;
  document.body.dataset.busy = '1'; $('busy').textContent = 'rendering…';
  const t0 = performance.now();
  try {
    const r = await fetch(url, {headers: AUTH});
    if (!r.ok) { const j = await r.json(); throw new Error(j.error || r.statusText); }
    const blob = await r.blob();
    const obj = URL.createObjectURL(blob);
    await new Promise((ok) => { $('view').onload = ok; $('view').src = obj; });
    if (loader.url) URL.revokeObjectURL(loader.url);
    loader.url = obj; loader.shown += 1;
    document.body.dataset.frames = String(loader.shown);
    document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
    if (loader.onshown) loader.onshown(performance.now() - t0);
  } catch (e) { setStatus(e.message, true); }
  loader.inflight = false;
  pump();
}
"""

VIEWER_PAGE = (
    r"""<!doctype html>
<html><head><meta charset="utf-8"><title>vhap view</title>"""
    + _STYLE
    + r"""</head>
<body data-frames="0" data-busy="0" class="fit">
<div id="side">
  <h1>vhap view</h1>
  <div id="runinfo" class="muted"></div>
  <h2>Frame</h2>
  <input type="range" id="frame" min="0" max="0" value="0">
  <div class="row"><span id="frameLabel"></span></div>
  <div class="row">
    <button id="first" title="first frame (Home)">«</button><button id="prev" title="previous frame (←)">‹</button>
    <button id="play" title="play / pause (space)" style="flex:2">play</button>
    <button id="next" title="next frame (→)">›</button><button id="last" title="last frame (End)">»</button>
  </div>
  <label>playback fps <input type="number" id="fps" min="0.5" max="60" step="0.5" value="10"></label>
  <label><input type="checkbox" id="loop" checked> loop</label>
  <h2>View</h2>
  <label>camera <select id="camera"></select></label>
  <label>render mode <select id="mode"></select></label>
  <label>background <select id="bg"><option value="image">input image</option><option value="white">white</option>
    <option value="black">black</option></select></label>
  <label>mesh opacity <input type="range" id="opacity" min="0" max="1" step="0.05" value="0.7"></label>
  <label><input type="checkbox" id="landmarks" checked> landmarks</label>
  <div class="legend muted"><span style="background:#00e600"></span>detected<span style="background:#ff2828">
    </span>model</div>
  <h2>Orbit</h2>
  <div class="muted">drag the picture to turn the head around, wheel to zoom</div>
  <div class="row"><span id="orbitLabel" class="muted">tracked camera view</span></div>
  <div class="row"><button id="resetView" title="back to the tracked camera (V)">tracked view</button>
    <button id="spin" title="turn the head around this frame (T)">turntable ▶</button></div>
  <label>turntable frames <input type="number" id="ttFrames" min="8" max="360" step="1" value="36"></label>
  <button id="exportTT" title="one turn of this frame as mp4, saved to the run folder">export turntable video</button>
  <h2>Metrics (this frame)</h2>
  <table id="metrics"></table>
  <h2>Metrics (run)</h2>
  <table id="totals"></table>
  <h2>Screenshot</h2>
  <div class="row"><button id="download">download PNG</button><button id="save">save to run folder</button></div>
  <a id="dl" style="display:none"></a>
  <div id="status"></div>
</div>
<div id="main"><img id="view" alt="render"><div id="busy"></div></div>
<script>
"""
    + _COMMON_JS
    + r"""
let info = null, playing = false, timer = null;
// values are shown in % and dB: two decimals
function fmt(v) { if (v === null || v === undefined) return 'n/a';
  const a = Math.abs(v); return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(3) : v.toFixed(2); }
function fillTable(id, obj) {
  const rows = Object.entries(obj).filter(([k, v]) => typeof v === 'number' || v === null);
  $(id).innerHTML = rows.length ? rows.map(([k, v]) => `<tr><td>${k}</td><td class="v">${fmt(v)}</td></tr>`).join('')
                                : '<tr><td class="muted">none (no metrics.json)</td></tr>';
}
let spinning = false, drag = null;
const orbit = {yaw: 0, pitch: 0, zoom: 1};  // free view around the head (0, 0, 1: the tracked camera)
function params() {
  return {t: +$('frame').value, c: +$('camera').value, mode: $('mode').value, bg: $('bg').value,
          opacity: +$('opacity').value, landmarks: $('landmarks').checked ? 1 : 0,
          yaw: +orbit.yaw.toFixed(2), pitch: +orbit.pitch.toFixed(2), zoom: +orbit.zoom.toFixed(3)};
}
function setOrbit(yaw, pitch, zoom) {
  orbit.yaw = ((yaw % 360) + 360) % 360; orbit.pitch = Math.max(-89, Math.min(89, pitch));
  orbit.zoom = Math.max(0.125, Math.min(8, zoom));
  const free = orbit.yaw !== 0 || orbit.pitch !== 0 || orbit.zoom !== 1;
  $('orbitLabel').textContent = free ? `yaw ${orbit.yaw.toFixed(0)}°, pitch ${orbit.pitch.toFixed(0)}°, ` +
    `zoom ${orbit.zoom.toFixed(2)}×` : 'tracked camera view';
  document.body.dataset.yaw = String(orbit.yaw); document.body.dataset.pitch = String(orbit.pitch);
  document.body.dataset.zoom = String(orbit.zoom);
  showImage(frameUrl());
}
function stopSpin() { spinning = false; $('spin').textContent = 'turntable ▶'; if (!playing) loader.onshown = null; }
function spin() {  // client-side turntable: 10° per picture, as fast as the server renders
  stop(); spinning = true; $('spin').textContent = 'stop turntable';
  loader.onshown = () => { if (spinning) setOrbit(orbit.yaw + 10, orbit.pitch, orbit.zoom); };
  setOrbit(orbit.yaw + 10, orbit.pitch, orbit.zoom);
}
function frameUrl() { const p = params(); return '/api/frame.png?' + new URLSearchParams(p).toString(); }
let metricsAsked = 0;  // answers can come back out of order: only the latest question's answer is shown
async function update() {
  const t = +$('frame').value;
  $('frameLabel').textContent = `timestep ${info.timestep_ids[t]}  (${t + 1} / ${info.num_timesteps})`;
  showImage(frameUrl());
  const asked = ++metricsAsked;
  try { const m = await api('/api/metrics?t=' + t); if (asked === metricsAsked) fillTable('metrics', m.metrics); }
  catch (e) { if (asked === metricsAsked) setStatus(e.message, true); }
}
function step(d) {
  const n = info.num_timesteps; let t = +$('frame').value + d;
  if (t >= n) { if ($('loop').checked) t = 0; else { t = n - 1; stop(); } }
  if (t < 0) t = $('loop').checked ? n - 1 : 0;
  $('frame').value = t; update();
}
function stop() { playing = false; $('play').textContent = 'play'; if (!spinning) loader.onshown = null; }
function play() {
  stopSpin(); playing = true; $('play').textContent = 'pause';
  // advance when the previous picture is on screen, at most at the chosen fps
  loader.onshown = (ms) => { if (!playing) return;
    const wait = Math.max(0, 1000 / Math.max(0.5, +$('fps').value) - ms);
    clearTimeout(timer); timer = setTimeout(() => { if (playing) step(1); }, wait); };
  step(1);
}
async function init() {
  info = await api('/api/info');
  $('frame').max = info.num_timesteps - 1;
  $('camera').innerHTML = info.camera_ids.map((c, i) =>
    `<option value="${i}">${c === '' ? 'camera ' + i : c}</option>`).join('');
  $('camera').disabled = info.num_cameras < 2;
  $('mode').innerHTML = info.modes.map((m) => `<option>${m}</option>`).join('');
  $('runinfo').innerHTML = `${info.run}<br>${info.num_timesteps} timesteps × ${info.num_cameras} camera(s), ` +
     `${info.image_size[1]}×${info.image_size[0]} (shown ${info.render_size[1]}×${info.render_size[0]})<br>` +
     `head model: ${info.head_model}${info.done ? '' : ' — <b>run not finished</b>'}` +
     (info.has_detected_landmarks ? '' : '<br>no detected landmarks found') +
     (info.gate_failures === null ? '' : info.gate_failures.length === 0 ? '<br>quality gates: pass'
       : '<br><b style="color:#b00020">quality gates: FAIL</b> — ' + info.gate_failures.join('; '));
  fillTable('totals', info.totals);
  for (const id of ['frame', 'opacity']) $(id).addEventListener('input', update);
  for (const id of ['camera', 'mode', 'bg', 'landmarks']) $(id).addEventListener('change', update);
  $('prev').onclick = () => step(-1); $('next').onclick = () => step(1);
  $('first').onclick = () => { $('frame').value = 0; update(); };
  $('last').onclick = () => { $('frame').value = info.num_timesteps - 1; update(); };
  $('play').onclick = () => playing ? stop() : play();
  $('download').onclick = () => { if (!loader.url) return; const p = params();
    $('dl').href = loader.url; $('dl').download = `vhap_${info.timestep_ids[p.t]}_cam${p.c}_${p.mode}.png`;
    $('dl').click(); };
  $('save').onclick = async () => { try { const r = await api('/api/screenshot', params());
    setStatus('saved ' + r.path); document.body.dataset.saved = r.path; } catch (e) { setStatus(e.message, true); } };
  const view = $('view');
  view.addEventListener('mousedown', (e) => { drag = {x: e.clientX, y: e.clientY, yaw: orbit.yaw,
    pitch: orbit.pitch}; stopSpin(); e.preventDefault(); });
  window.addEventListener('mousemove', (e) => { if (!drag) return;
    setOrbit(drag.yaw - (e.clientX - drag.x) * 0.4, drag.pitch + (e.clientY - drag.y) * 0.4, orbit.zoom); });
  window.addEventListener('mouseup', () => { drag = null; });
  view.addEventListener('wheel', (e) => { e.preventDefault();
    setOrbit(orbit.yaw, orbit.pitch, orbit.zoom * Math.exp(-e.deltaY * 0.0015)); }, {passive: false});
  $('resetView').onclick = () => { stopSpin(); setOrbit(0, 0, 1); };
  $('spin').onclick = () => spinning ? stopSpin() : spin();
  $('exportTT').onclick = async () => {
    setStatus('rendering the turntable…');
    try { const r = await api('/api/turntable', {...params(), frames: +$('ttFrames').value, fps: 12});
      setStatus(`saved ${r.path} (${r.frames} frames)`); document.body.dataset.saved = r.path; }
    catch (e) { setStatus(e.message, true); } };
  document.addEventListener('keydown', (e) => {
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName)) return;  // their own keys win
    if (e.key === 'ArrowRight') { step(1); e.preventDefault(); }
    else if (e.key === 'ArrowLeft') { step(-1); e.preventDefault(); }
    else if (e.key === 'Home') $('first').click(); else if (e.key === 'End') $('last').click();
    else if (e.key === ' ') { playing ? stop() : play(); e.preventDefault(); }
    else if (e.key === 'v' || e.key === 'V') $('resetView').click();
    else if (e.key === 't' || e.key === 'T') $('spin').click();
  });
  update();
}
init().catch((e) => setStatus(e.message, true));
</script>
</body></html>
"""
)

REGIONS_PAGE = (
    r"""<!doctype html>
<html><head><meta charset="utf-8"><title>vhap regions</title>"""
    + _STYLE
    + r"""</head>
<body data-frames="0" data-busy="0">
<div id="side">
  <h1>vhap regions</h1>
  <div id="modelinfo" class="muted"></div>
  <h2>Regions shown</h2>
  <input type="text" id="filter" placeholder="filter…">
  <div id="regions" style="max-height:34vh; overflow-y:auto; margin-top:4px"></div>
  <div class="row"><button id="none">hide all</button></div>
  <h2>Edited vertex set <span style="color:#ff00d9">■</span></h2>
  <label>name <input type="text" id="editName"></label>
  <div id="editCount" class="muted"></div>
  <div class="row">
    <label><input type="radio" name="tool" value="orbit" checked> orbit</label>
    <label><input type="radio" name="tool" value="add"> add</label>
    <label><input type="radio" name="tool" value="remove"> remove</label>
  </div>
  <label>brush radius <span id="radiusLabel"></span>
    <input type="range" id="radius" min="1" max="40" step="1" value="8"></label>
  <div class="row"><select id="loadName"></select><button id="load">edit a copy</button></div>
  <div class="row"><button id="clear">clear set</button><button id="reset">reset camera</button></div>
  <h2>Pose</h2>
  <label>jaw open <input type="range" id="jaw" min="-0.2" max="0.8" step="0.02" value="0"></label>
  <div id="exprSliders"></div>
  <button id="neutral">neutral pose</button>
  <h2>Save</h2>
  <label>region file <input type="text" id="path" placeholder="my_regions.json"></label>
  <button id="save">save region file</button>
  <p class="muted">Drag with <b>orbit</b> to turn the head, wheel to zoom; drag with <b>add</b>/<b>remove</b> to paint.
  Keys: O / A / R pick the tool.</p>
  <div id="status"></div>
</div>
<div id="main"><img id="view" alt="head"><div id="busy"></div></div>
<script>
"""
    + _COMMON_JS
    + r"""
let st = null, drag = null, pendingOrbit = null, orbitInflight = false, strokes = [], brushInflight = false;
const tool = () => document.querySelector('input[name=tool]:checked').value;
function refresh() { showImage('/api/view.png?n=' + Date.now()); }
function applyState(s) {
  st = s;
  $('editCount').textContent = `${s.edit_count} vertices selected (of ${s.num_verts})`;
  if (s.regions_file && !$('path').value) $('path').value = s.regions_file;
  document.body.dataset.editCount = String(s.edit_count);
}
function buildList() {
  const f = $('filter').value.toLowerCase();
  $('regions').innerHTML = st.regions.filter((n) => n.includes(f)).map((n) =>
    `<label><input type="checkbox" id="region-${n}" data-name="${n}" ${st.shown.includes(n) ? 'checked' : ''}> ${n}` +
    (st.user_regions.includes(n) ? ' <span class="muted">(file)</span>' : '') + '</label>').join('');
  for (const cb of $('regions').querySelectorAll('input')) cb.addEventListener('change', async () => {
    const names = st.shown.filter((n) => n !== cb.dataset.name);
    if (cb.checked) names.push(cb.dataset.name);
    try { applyState(await api('/api/show', {names})); refresh(); } catch (e) { setStatus(e.message, true); }
  });
  $('loadName').innerHTML = st.regions.map((n) => `<option>${n}</option>`).join('');
}
function toPixel(e) {
  const img = $('view'), r = img.getBoundingClientRect();
  return [(e.clientX - r.left) / r.width * img.naturalWidth, (e.clientY - r.top) / r.height * img.naturalHeight];
}
async function sendOrbit() {
  if (orbitInflight || !pendingOrbit) return;
  const body = pendingOrbit; pendingOrbit = null; orbitInflight = true;
  try { applyState(await api('/api/orbit', body)); refresh(); } catch (e) { setStatus(e.message, true); }
  orbitInflight = false; sendOrbit();
}
function queueOrbit(dy, dp, zoom) {
  if (!pendingOrbit) pendingOrbit = {d_yaw: 0, d_pitch: 0, zoom: 1};
  pendingOrbit.d_yaw += dy; pendingOrbit.d_pitch += dp; pendingOrbit.zoom *= zoom; sendOrbit();
}
// Mouse-move events can be far apart: fill the gap so that a stroke paints a continuous band.
let lastPoint = null;
function addStrokePoint(p) {
  if (lastPoint) {
    const d = Math.hypot(p[0] - lastPoint[0], p[1] - lastPoint[1]);
    if (d < 3) return;
    const n = Math.floor(d / 4);
    for (let i = 1; i < n; i++) {
      strokes.push([lastPoint[0] + (p[0] - lastPoint[0]) * i / n, lastPoint[1] + (p[1] - lastPoint[1]) * i / n]);
    }
  }
  strokes.push(p); lastPoint = p;
}
async function sendBrush() {
  if (brushInflight || strokes.length === 0) return;
  const points = strokes; strokes = []; brushInflight = true;
  try {
    const s = await api('/api/brush', {points, radius: +$('radius').value / 1000, add: tool() === 'add'});
    applyState(s); refresh();
  } catch (e) { setStatus(e.message, true); }
  brushInflight = false; sendBrush();
}
function init2() {
  const img = $('view');
  img.addEventListener('mousedown', (e) => { e.preventDefault(); drag = {x: e.clientX, y: e.clientY};
    if (tool() !== 'orbit') { lastPoint = null; addStrokePoint(toPixel(e)); sendBrush(); } });
  window.addEventListener('mouseup', () => { drag = null; });
  img.addEventListener('mousemove', (e) => {
    if (!drag) return;
    if (tool() === 'orbit') { queueOrbit(-(e.clientX - drag.x) * 0.3, (e.clientY - drag.y) * 0.3, 1);
      drag = {x: e.clientX, y: e.clientY}; }
    else { addStrokePoint(toPixel(e)); sendBrush(); }
  });
  img.addEventListener('wheel', (e) => { e.preventDefault(); queueOrbit(0, 0, Math.pow(1.1, Math.sign(e.deltaY))); },
                       {passive: false});
  $('filter').addEventListener('input', buildList);
  $('none').onclick = async () => { applyState(await api('/api/show', {names: []})); buildList(); refresh(); };
  $('radius').addEventListener('input', () => { $('radiusLabel').textContent = $('radius').value + ' mm'; });
  $('radiusLabel').textContent = $('radius').value + ' mm';
  $('editName').addEventListener('change', async () => applyState(await api('/api/edit', {name: $('editName').value})));
  $('load').onclick = async () => { applyState(await api('/api/edit', {load: $('loadName').value}));
    $('editName').value = st.edit_name; refresh(); };
  $('clear').onclick = async () => { applyState(await api('/api/edit', {clear: true})); refresh(); };
  $('reset').onclick = async () => { applyState(await api('/api/orbit', {reset: true})); refresh(); };
  $('save').onclick = async () => {
    try { const s = await api('/api/save', {path: $('path').value, name: $('editName').value});
      applyState(s); buildList(); setStatus('saved ' + s.saved); document.body.dataset.saved = s.saved; }
    catch (e) { setStatus(e.message, true); } };
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT' && e.target.type === 'text') return;
    const k = {o: 'orbit', a: 'add', r: 'remove'}[e.key.toLowerCase()];
    if (k) document.querySelector(`input[name=tool][value=${k}]`).checked = true;
  });
}
let poseInflight = false, posePending = false;
async function sendPose() {
  if (poseInflight) { posePending = true; return; }
  poseInflight = true; posePending = false;
  const expr = [...document.querySelectorAll('.expr')].map((e) => +e.value);
  try { applyState(await api('/api/pose', {jaw_open: +$('jaw').value, expr})); refresh(); }
  catch (e) { setStatus(e.message, true); }
  poseInflight = false; if (posePending) sendPose();
}
function buildPose() {
  $('exprSliders').innerHTML = st.expr.map((v, i) =>
    `<label>expression ${i + 1} <input type="range" class="expr" min="-3" max="3" step="0.1" value="${v}"></label>`
  ).join('');
  for (const el of [$('jaw'), ...document.querySelectorAll('.expr')]) el.addEventListener('input', sendPose);
  $('neutral').onclick = () => { $('jaw').value = 0; for (const e of document.querySelectorAll('.expr')) e.value = 0;
    sendPose(); };
}
async function init() {
  applyState(await api('/api/state'));
  buildPose();
  $('editName').value = st.edit_name;
  $('modelinfo').textContent = `head model: ${st.head_model} — ${st.num_verts} vertices, ${st.regions.length} regions`;
  buildList(); init2(); refresh();
}
init().catch((e) => setStatus(e.message, true));
</script>
</body></html>
"""
)
