// dragedit's web editor: plain JavaScript against the HTTP API (see the README), no build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const MAX_W = 900, MAX_H = 700;

const S = {
  sid: null, meta: null, face: null, view: null,
  photo: null, result: null, showBefore: false,
  pairs: [], pending: null, mode: "points",
  mask: null, maskUsed: false, painting: false, region: null,
  from: null, current: null, history: [], job: null, events: null,
};

// ---- small helpers ---------------------------------------------------------------------------------------
function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${src}`));
    img.src = src;
  });
}

const round1 = (v) => Math.round(v * 10) / 10;

// ---- the view: photo pixels <-> canvas pixels ------------------------------------------------------------
function fitView(region) {
  const [x0, y0, x1, y1] = region;
  const scale = Math.min(MAX_W / (x1 - x0), MAX_H / (y1 - y0), 4);
  canvas.width = Math.round((x1 - x0) * scale);
  canvas.height = Math.round((y1 - y0) * scale);
  S.view = { x0, y0, scale };
}

function faceRegion(box) {
  const [bx0, by0, bx1, by1] = box;
  const pad = 0.8 * Math.max(bx1 - bx0, by1 - by0);
  return [Math.max(0, bx0 - pad), Math.max(0, by0 - pad),
          Math.min(S.meta.width, bx1 + pad), Math.min(S.meta.height, by1 + pad)];
}

const toCanvas = (x, y) => [(x - S.view.x0) * S.view.scale, (y - S.view.y0) * S.view.scale];

function toPhoto(event) {
  const r = canvas.getBoundingClientRect();
  const cx = (event.clientX - r.left) * canvas.width / r.width;
  const cy = (event.clientY - r.top) * canvas.height / r.height;
  return [S.view.x0 + cx / S.view.scale, S.view.y0 + cy / S.view.scale];
}

// ---- drawing ---------------------------------------------------------------------------------------------
function arrow(x1, y1, x2, y2, color) {
  const [a, b] = [toCanvas(x1, y1), toCanvas(x2, y2)];
  ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2.5;
  ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  const ang = Math.atan2(b[1] - a[1], b[0] - a[0]);
  ctx.beginPath(); ctx.moveTo(b[0], b[1]);
  ctx.lineTo(b[0] - 10 * Math.cos(ang - 0.45), b[1] - 10 * Math.sin(ang - 0.45));
  ctx.lineTo(b[0] - 10 * Math.cos(ang + 0.45), b[1] - 10 * Math.sin(ang + 0.45));
  ctx.closePath(); ctx.fill();
  dot(x1, y1, "#ff4d4d", 5);
}

function dot(x, y, color, r = 4) {
  const [cx, cy] = toCanvas(x, y);
  ctx.fillStyle = color; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.arc(cx, cy, r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
}

function draw() {
  if (!S.view) return;
  const base = S.result && !S.showBefore ? S.result : S.photo;
  const { x0, y0, scale } = S.view;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (base) ctx.drawImage(base, x0, y0, canvas.width / scale, canvas.height / scale, 0, 0, canvas.width, canvas.height);
  if (S.maskUsed) {
    ctx.save(); ctx.globalAlpha = 0.3; ctx.globalCompositeOperation = "screen";
    ctx.drawImage(S.mask, x0, y0, canvas.width / scale, canvas.height / scale, 0, 0, canvas.width, canvas.height);
    ctx.restore();
  }
  if (S.face === null && S.meta) {
    S.meta.faces.forEach((f, i) => {
      const [a, b] = [toCanvas(f.box[0], f.box[1]), toCanvas(f.box[2], f.box[3])];
      ctx.strokeStyle = "#ffc400"; ctx.lineWidth = 2; ctx.strokeRect(a[0], a[1], b[0] - a[0], b[1] - a[1]);
      ctx.fillStyle = "#ffc400"; ctx.font = "bold 16px system-ui"; ctx.fillText(`face ${i}`, a[0] + 3, a[1] - 5);
    });
  }
  S.pairs.forEach((p) => arrow(p[0], p[1], p[2], p[3], "#ff4d4d"));
  if (S.pending) dot(S.pending[0], S.pending[1], "#ff4d4d", 6);
  if (S.job && S.job.stage === "drag") (S.job.points || []).forEach((p) => dot(p[0], p[1], "#4dff88", 5));
}

// ---- opening a photo -------------------------------------------------------------------------------------
async function openFile(file) {
  if (!file) return;
  setStatus(`uploading ${file.name}…`);
  const form = new FormData();
  form.append("photo", file);
  try {
    const created = await api("/api/sessions", { method: "POST", body: form });
    history.replaceState(null, "", `?session=${created.id}`);
    await openSession(created.id);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function openSession(sid) {
  const info = await api(`/api/sessions/${sid}`);
  Object.assign(S, { sid, meta: info, pairs: [], pending: null, result: null, showBefore: false,
                     from: null, current: null, job: info.job });
  S.clip = info.kind === "clip";  // a clip: the points go on its keyframe, the edit is carried to every frame
  S.photo = await loadImage(`/api/sessions/${sid}/${S.clip ? "keyframe" : "photo"}`);
  S.mask = document.createElement("canvas");
  S.mask.width = info.width; S.mask.height = info.height;
  const m = S.mask.getContext("2d"); m.fillStyle = "#000"; m.fillRect(0, 0, info.width, info.height);
  S.maskUsed = false;
  $("drop").hidden = true; canvas.hidden = false;
  $("faces-panel").hidden = info.faces.length < 2;
  renderFaces();
  const face = info.face !== null && info.face !== undefined ? info.face : (info.faces.length === 1 ? 0 : null);
  if (face !== null) chooseFace(face); else { fitView([0, 0, info.width, info.height]); draw(); }
  setStatus((S.clip ? `clip of ${info.frames} frames, points on its keyframe (${info.keyframe_seconds.toFixed(2)} s): ` : "")
            + (info.faces.length ? `${info.width}×${info.height}, ${info.faces.length} face(s)` : "no face found"));
  $("clip-panel").hidden = true;
  if (S.clip) { await showClip(); }
  await showHistory(info.history);
  if (info.history.length) await showEdit(info.history[info.history.length - 1].edit);
  if (info.job && (info.job.status === "queued" || info.job.status === "running")) listen();
  renderPresets().catch((e) => setStatus(e.message, true));
}

function renderFaces() {
  const box = $("faces");
  box.innerHTML = "";
  S.meta.faces.forEach((f, i) => {
    const b = document.createElement("button");
    b.textContent = `Face ${i}`; b.className = "face" + (S.face === i ? " on" : "");
    b.onclick = () => chooseFace(i);
    box.appendChild(b);
  });
}

function chooseFace(i) {
  S.face = i;
  fitView(faceRegion(S.meta.faces[i].box));
  $("tools").hidden = false;
  renderFaces(); updateButtons(); draw();
}

// ---- points and the mask ---------------------------------------------------------------------------------
canvas.addEventListener("mousedown", (e) => {
  if (!S.meta) return;
  const [x, y] = toPhoto(e);
  if (S.face === null) {
    const i = S.meta.faces.findIndex((f) => x >= f.box[0] && x <= f.box[2] && y >= f.box[1] && y <= f.box[3]);
    if (i >= 0) chooseFace(i);
    return;
  }
  if (S.mode === "mask") { S.painting = true; paint(x, y); return; }
  if (!S.pending) S.pending = [x, y];
  else { S.pairs.push([round1(S.pending[0]), round1(S.pending[1]), round1(x), round1(y)]); S.pending = null; }
  renderPairs(); draw();
});
canvas.addEventListener("mousemove", (e) => { if (S.painting) paint(...toPhoto(e)); });
window.addEventListener("mouseup", () => { S.painting = false; });

function paint(x, y) {
  const m = S.mask.getContext("2d");
  m.fillStyle = "#fff";
  m.beginPath(); m.arc(x, y, $("brush").value / S.view.scale, 0, 2 * Math.PI); m.fill();
  S.maskUsed = true; draw();
}

function setMode(mode) {
  S.mode = mode;
  $("mode-points").classList.toggle("on", mode === "points");
  $("mode-mask").classList.toggle("on", mode === "mask");
  $("point-hint").textContent = mode === "points" ? "Click a handle, then its target." : "Paint the region that may move.";
}

function renderPairs() {
  const list = $("pairs");
  list.innerHTML = "";
  S.pairs.forEach((p, i) => {
    const li = document.createElement("li");
    li.textContent = `(${p[0]}, ${p[1]}) → (${p[2]}, ${p[3]})`;
    const rm = document.createElement("button");
    rm.textContent = "×"; rm.title = "Remove this pair";
    rm.onclick = () => { S.pairs.splice(i, 1); renderPairs(); draw(); };
    li.appendChild(rm); list.appendChild(li);
  });
  if (S.pending) {
    const li = document.createElement("li");
    li.textContent = `(${round1(S.pending[0])}, ${round1(S.pending[1])}) → click the target`;
    list.appendChild(li);
  }
  updateButtons();
}

// ---- presets: buttons that place the arrows (which can still be removed or added to) ------------------------
async function renderPresets() {
  const box = $("presets");
  if (box.childElementCount) return;
  const { presets } = await api("/api/presets");
  presets.forEach((p) => {
    const b = document.createElement("button");
    b.textContent = p.name.replace("_", " "); b.title = p.description; b.dataset.preset = p.name;
    b.onclick = () => applyPreset(p.name);
    box.appendChild(b);
  });
}

async function applyPreset(name) {
  if (S.face === null) { setStatus("choose a face first", true); return; }
  const strength = Number($("strength").value);
  try {
    const res = await api(`/api/sessions/${S.sid}/presets/${name}?strength=${strength}&face=${S.face}`);
    S.pairs = res.drags; S.pending = null; S.region = res.mask_region;
    setStatus(`${name}: ${res.drags.length} arrows placed (strength ${res.strength}); move them or run`);
    renderPairs(); draw();
  } catch (e) {
    setStatus(e.message, true);
  }
}

function updateButtons() {
  const busy = S.job && (S.job.status === "queued" || S.job.status === "running");
  $("run").disabled = busy || !S.pairs.length || S.face === null;
  $("toggle-before").disabled = !S.result;
  const cur = S.history.find((h) => h.edit === S.current);
  $("undo").disabled = busy || !cur;
  $("from-label").textContent = S.from === "pivot" ? "from the pivot" :
    (S.from ? `from edit ${S.from}` : (S.current ? `from edit ${S.current}` : "from the pivot"));
}

// ---- running an edit -------------------------------------------------------------------------------------
async function run() {
  const body = { drags: S.pairs, face: S.face };
  if (S.maskUsed) body.mask = S.mask.toDataURL("image/png");
  else if (S.region) body.mask_region = S.region;  // a preset's face region, unless a mask was painted
  const from = S.from || S.current;
  if (from) body.from = from;
  try {
    const res = await api(`/api/sessions/${S.sid}/edits`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    setStatus(`edit ${res.edit} started`);
    S.job = { status: "queued", edit: res.edit };
    updateButtons(); listen();
  } catch (e) {
    setStatus(e.message, true);
  }
}

function listen() {
  if (S.events) S.events.close();
  $("progress-panel").hidden = false;
  const es = new EventSource(`/api/sessions/${S.sid}/events`);
  S.events = es;
  es.onmessage = async (msg) => {
    const job = JSON.parse(msg.data);
    S.job = job;
    const step = job.total ? `${job.step}/${job.total}` : (job.step ? `${job.step}` : "");
    $("progress-text").textContent = `${job.status}${job.stage ? ": " + job.stage : ""} ${step}`;
    $("progress").value = job.total ? job.step / job.total : 0;
    if (job.preview) { $("live").src = job.preview; $("live").hidden = false; }
    draw(); updateButtons();
    if (job.status === "done" || job.status === "failed") {
      es.close(); S.events = null;
      $("live").hidden = true;
      $("progress-text").textContent = job.status !== "done" ? `failed: ${job.error}` :
        (S.clip ? `edit ${job.edit} done (${job.total} frames)` : `edit ${job.edit} done (${job.step} drag steps)`);
      if (job.status === "failed") { setStatus(job.error, true); return; }
      S.pairs = []; S.pending = null; S.from = null; S.region = null; renderPairs();
      if (S.clip) { draw(); await showClip(); setStatus(`edit ${job.edit} done: every frame`); return; }
      const info = await api(`/api/sessions/${S.sid}`);
      await showHistory(info.history);
      await showEdit(job.edit);
      setStatus(`edit ${job.edit} done`);
    }
  };
  es.onerror = () => { if (S.events === es && S.job && S.job.status !== "done") setStatus("connection lost; retrying…"); };
}

// ---- a clip's edit: the whole clip, to play and download -----------------------------------------------------
async function showClip() {
  const url = `/api/sessions/${S.sid}/clip`;
  if (!(await api(`/api/sessions/${S.sid}`)).edited_clip) return;  // no edit yet
  const stamp = `?v=${Date.now()}`;
  $("clip-video").src = url + stamp;
  $("clip-download").href = url + stamp;
  $("clip-panel").hidden = false;
}

// ---- history ---------------------------------------------------------------------------------------------
async function showHistory(entries) {
  S.history = entries;
  $("history-panel").hidden = !entries.length;
  const list = $("history");
  list.innerHTML = "";
  entries.forEach((h) => {
    const li = document.createElement("li");
    li.dataset.edit = h.edit;
    li.className = h.edit === S.current ? "current" : "";
    const from = h.from === "pivot" ? "pivot" : `edit ${parseInt(h.from.split("/")[1], 10)}`;
    li.append(`Edit ${h.edit} (from ${from}): ${h.drags.length} drag(s), ${h.steps} steps, ${h.stopped_by}`);
    const view = document.createElement("button");
    view.textContent = "view"; view.onclick = () => showEdit(h.edit);
    const cont = document.createElement("button");
    cont.textContent = "continue from here"; cont.onclick = () => { S.from = h.edit; showEdit(h.edit); };
    const dl = document.createElement("a");
    dl.href = `/api/sessions/${S.sid}/edits/${h.edit}/photo`; dl.download = `edit-${h.edit}.png`;
    dl.textContent = "download"; dl.className = "button"; dl.style.marginLeft = "6px";
    li.append(view, cont, dl);
    list.appendChild(li);
  });
  updateButtons();
}

async function showEdit(n) {
  S.result = await loadImage(`/api/sessions/${S.sid}/edits/${n}/photo?v=${Date.now()}`);
  S.current = n; S.showBefore = false;
  $("toggle-before").textContent = "Show before";
  document.querySelectorAll("#history li").forEach((li) => li.classList.toggle("current", +li.dataset.edit === n));
  updateButtons(); draw();
}

function undo() {
  const cur = S.history.find((h) => h.edit === S.current);
  if (!cur) return;
  if (cur.from === "pivot") { S.result = null; S.current = null; S.from = "pivot"; updateButtons(); draw(); return; }
  const parent = parseInt(cur.from.split("/")[1], 10);
  S.from = parent; showEdit(parent);
}

// ---- wiring ----------------------------------------------------------------------------------------------
$("file").addEventListener("change", (e) => openFile(e.target.files[0]));
$("mode-points").onclick = () => setMode("points");
$("mode-mask").onclick = () => setMode("mask");
$("clear-mask").onclick = () => {
  const m = S.mask.getContext("2d"); m.fillStyle = "#000"; m.fillRect(0, 0, S.mask.width, S.mask.height);
  S.maskUsed = false; draw();
};
$("run").onclick = run;
$("undo").onclick = undo;
$("from-pivot").onclick = () => { S.from = "pivot"; S.result = null; S.current = null; updateButtons(); draw(); };
$("toggle-before").onclick = () => {
  S.showBefore = !S.showBefore;
  $("toggle-before").textContent = S.showBefore ? "Show after" : "Show before";
  draw();
};
for (const ev of ["dragover", "dragenter"]) document.addEventListener(ev, (e) => { e.preventDefault(); $("drop").classList.add("over"); });
document.addEventListener("dragleave", () => $("drop").classList.remove("over"));
document.addEventListener("drop", (e) => { e.preventDefault(); $("drop").classList.remove("over"); openFile(e.dataTransfer.files[0]); });

const initial = new URLSearchParams(location.search).get("session");
if (initial) openSession(initial).catch((e) => setStatus(e.message, true));
