// netc's model explorer: the page's whole behaviour, with no library and no network.
// The data (backends/render/explore.py) holds per level and model: items (nodes, blocks,
// outputs), the block tree, the edges, and one graphviz layout per block body. build() puts
// the layouts of the open blocks together; draw() makes the SVG.
"use strict";
const DATA = JSON.parse(document.getElementById("netc-data").textContent);
const SVGNS = "http://www.w3.org/2000/svg";
const FILL = {conv: "#cfe2f3", dense: "#d9ead3", norm: "#fff2cc", activation: "#fce5cd", pool: "#d0e0e3",
  shape: "#eeeeee", recurrent: "#ead1dc", attention: "#d9d2e9", math: "#ffffff", block: "#c9d6e3", io: "#37474f"};
const CLUSTER_FILL = ["#f5f7f9", "#eaeef2", "#dfe5eb", "#d4dce4"];
const PAD = 12, HEAD = 30, GAP = 60, MAX_START = 24;
const $ = (id) => document.getElementById(id);
const state = {level: "0", view: 0, open: new Set(), pinned: null, query: "", t: {x: 0, y: 0, k: 1}};
let placed = {}; // "model|key" -> {x, y, w, h} (the drawn box of an item, centre and size)

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function level() { return DATA.levels[state.level]; }
function view() { return DATA.views[state.view]; }
function model(name) { return level().models[name]; }
function isBlock(it) { return it && (it.kind === "block" || it.kind === "stack"); }
function openKey(m, key) { return m + "|" + key; }
function isOpen(m, key) { return state.open.has(openKey(m, key)); }

// -- layout: one graphviz layout per block body, put together for what is open -------------------
function build(M, c) {
  const pos = M.layouts[c] || {};
  const items = Object.entries(pos).map(([k, [x, y, w, h]]) => ({k, x, y, w, h}));
  const subs = {};
  const opened = items.filter((it) => isBlock(M.items[it.k]) && isOpen(M.name, it.k)).sort((a, b) => b.y - a.y);
  for (const it of opened) {
    const sub = build(M, it.k);
    subs[it.k] = sub;
    const w1 = Math.max(sub.w + 2 * PAD, headWidth(M.items[it.k])), h1 = sub.h + PAD + HEAD;
    const dW = Math.max(w1 - it.w, 0), dH = h1 - it.h, top = it.y - it.h / 2, bottom = it.y + it.h / 2;
    for (const o of items) {
      if (o === it) continue;
      if (o.y - o.h / 2 >= bottom - 0.5) o.y += dH;  // below: moves down
      else if (o.y + o.h / 2 > top) o.x += (o.x >= it.x ? 1 : -1) * dW / 2;  // beside: moves aside
    }
    it.y = top + h1 / 2; it.w = w1; it.h = h1;
  }
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const it of items) {
    x0 = Math.min(x0, it.x - it.w / 2); y0 = Math.min(y0, it.y - it.h / 2);
    x1 = Math.max(x1, it.x + it.w / 2); y1 = Math.max(y1, it.y + it.h / 2);
  }
  if (!items.length) { x0 = y0 = 0; x1 = y1 = 20; }
  for (const it of items) { it.x -= x0; it.y -= y0; }
  return {w: x1 - x0, h: y1 - y0, items, subs};
}
function headWidth(it) { return 7 * (it.path.length + it.title.length) + 40; }

// The drawn box standing for an item: itself, or the outermost folded block around it.
function shownAs(M, key) {
  let rep = key, k = key;
  while (k) {
    const p = M.items[k].parent || "";
    if (p && !isOpen(M.name, p)) rep = p;
    k = p;
  }
  return rep;
}

// -- drawing ---------------------------------------------------------------------------------------
function draw() {
  const vp = $("vp");
  vp.textContent = "";
  placed = {};
  const clusters = el("g", {class: "clusters"}, vp), edges = el("g", {class: "edges"}, vp);
  const boxes = el("g", {class: "boxes"}, vp);
  let ox = 0;
  const v = view();
  v.models.forEach((name, i) => {
    const M = model(name), lay = build(M, "");
    const title = (v.roles[i] ? v.roles[i] + ": " : "") + name;
    el("text", {x: ox, y: -12, class: "model-title"}, boxes).textContent = title + "  ·  " + M.title;
    place(M, lay, ox, 0, 0, clusters, boxes);
    drawEdges(M, edges);
    ox += Math.max(lay.w, 7 * (title.length + M.title.length)) + GAP;
  });
  v.handoffs.forEach(([out, inp, shape]) => {
    const a = placed[v.models[0] + "|o:" + out.split(".")[1]], b = placed[v.models[1] + "|n:" + inp];
    if (a && b) edge(edges, a, b, "hand-off " + shape, "edge hand", {from: v.models[0] + " " + out, to: v.models[1] + " " + inp, type: shape});
  });
  mark();
  applyTransform();
}

function place(M, lay, ox, oy, depth, clusters, boxes) {
  for (const it of lay.items) {
    const x = ox + it.x, y = oy + it.y, item = M.items[it.k];
    placed[M.name + "|" + it.k] = {x, y, w: it.w, h: it.h};
    if (lay.subs[it.k]) {
      const g = el("g", {class: "cluster " + item.kind, "data-key": it.k, "data-model": M.name}, clusters);
      el("rect", {x: x - it.w / 2, y: y - it.h / 2, width: it.w, height: it.h, rx: 6,
        fill: CLUSTER_FILL[Math.min(depth, CLUSTER_FILL.length - 1)]}, g);
      const head = el("g", {class: "head"}, g);
      const t = el("text", {x: x - it.w / 2 + 8, y: y - it.h / 2 + 14}, head);
      el("tspan", {"font-weight": "bold"}, t).textContent = "− " + item.path + ":";
      el("tspan", {dx: 4}, t).textContent = item.title + (item.lines[0][1] ? " (" + item.lines[0][1] + ")" : "");
      el("tspan", {x: x - it.w / 2 + 20, dy: 12, fill: "#555", "font-size": 9}, t).textContent = item.lines[1][0];
      head.addEventListener("click", (e) => { e.stopPropagation(); toggle(M.name, it.k); });
      hover(head, () => details(M, it.k));
      const sub = lay.subs[it.k];
      place(M, sub, x - sub.w / 2, y - it.h / 2 + HEAD, depth + 1, clusters, boxes);
    } else {
      drawBox(M, it.k, item, x, y, it.w, it.h, boxes);
    }
  }
}

function drawBox(M, key, item, x, y, w, h, parent) {
  const io = item.kind === "input" || item.kind === "output";
  const fam = io ? "io" : isBlock(item) ? "block" : item.family;
  const g = el("g", {class: "box " + (io ? "io" : item.kind) + " " + fam, "data-key": key, "data-model": M.name,
    "data-path": item.path}, parent);
  if (item.kind === "stack") {
    for (const d of [6, 3]) el("rect", {x: x - w / 2 + d, y: y - h / 2 - d, width: w, height: h, rx: 4, fill: FILL.block, stroke: "#5f6b73", "stroke-width": .8}, g);
  }
  el("rect", {class: "body", x: x - w / 2, y: y - h / 2, width: w, height: h, rx: 4, fill: FILL[fam] || "#fff"}, g);
  const lines = item.lines.filter((l) => l.length && l[0]);
  const heights = lines.map((l, i) => (i ? 9 : 11) * 1.15 + (i ? 3 : 0));
  let ty = y - heights.reduce((a, b) => a + b, 0) / 2;
  lines.forEach((l, i) => {
    ty += heights[i];
    const t = el("text", {x, y: ty - (i ? 2.5 : 3), "text-anchor": "middle", class: i ? "note" : "line"}, g);
    if (i) { t.textContent = l[0]; return; }
    el("tspan", {"font-weight": "bold"}, t).textContent = l[0];
    if (l[1]) el("tspan", {dx: 4}, t).textContent = l[1];
  });
  if (isBlock(item)) el("text", {x: x + w / 2 - 9, y: y - h / 2 + 11, class: "badge"}, g).textContent = "+";
  if (changed(M, key)) el("text", {x: x - w / 2 + 3, y: y - h / 2 + 8, class: "tag"}, g).textContent = "-O" + state.level;
  placed[M.name + "|" + key] = {x, y, w, h};
  g.addEventListener("click", (e) => {
    e.stopPropagation();
    if (isBlock(item)) toggle(M.name, key); else pin(M, key);
  });
  hover(g, () => details(M, key));
}

function drawEdges(M, parent) {
  const seen = new Set();
  for (const [s, d, shape] of M.edges) {
    const a = shownAs(M, s), b = shownAs(M, d), id = a + ">" + b;
    if (a === b || seen.has(id)) continue;
    seen.add(id);
    edge(parent, placed[M.name + "|" + a], placed[M.name + "|" + b], shape, "edge",
      {from: M.items[a].path, to: M.items[b].path, type: shape});
  }
}

function edge(parent, a, b, label, cls, info) {
  if (!a || !b) return;
  const x1 = a.x, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y - b.h / 2;
  const dy = Math.max(18, Math.abs(y2 - y1) / 2);
  const d = `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`;
  const g = el("g", {class: cls, "data-from": info.from, "data-to": info.to}, parent);
  el("path", {class: "line", d, "marker-end": cls.includes("hand") ? "url(#arrow-hand)" : "url(#arrow)"}, g);
  el("path", {class: "hit", d}, g);
  if (cls.includes("hand")) el("text", {x: (x1 + x2) / 2 + 6, y: (y1 + y2) / 2, fill: "#c62828"}, g).textContent = label;
  const text = () => `<h3>edge</h3>` + rows([["from", `<code>${esc(info.from)}</code>`], ["to", `<code>${esc(info.to)}</code>`],
    ["type", esc(info.type)]]);
  hover(g, text);
  g.addEventListener("click", (e) => { e.stopPropagation(); $("details").innerHTML = text(); });
}

// -- details ---------------------------------------------------------------------------------------
function rows(pairs) { return "<table>" + pairs.filter((p) => p[1] !== "" && p[1] != null).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join("") + "</table>"; }
function source(src) {
  if (!src) return "";
  const [file, line, col] = src, text = (DATA.files[file] || [])[line - 1] || "";
  return `<div class="where">${esc(file)}:${line}:${col}</div><pre class="src">${esc(text.trim())}</pre>`;
}
function details(M, key) {
  const it = M.items[key];
  if (isBlock(it)) {
    const args = Object.entries(it.args || {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(", ");
    return `<h3>${esc(it.title)}</h3>` + rows([["scope", `<code>${esc(it.path)}</code>`],
      ["kind", it.kind === "stack" ? `${it.count} copies of ${esc(it.block)}` : it.index != null ? esc(it.lines[0][1]) : "block"],
      ["arguments", args], ["output", esc(it.outputs[0])], ["params", it.params.toLocaleString("en")], ["MACs", esc(it.macs)],
      ["weights of", it.shares ? esc(it.shares) : ""]]) + source(it.src);
  }
  if (it.kind === "output") return `<h3>output ${esc(it.title)}</h3>` + rows([["type", esc(it.outputs[0])]]);
  const ins = it.inputs.map(([n, t]) => `${esc(n)}: ${esc(t)}`).join("<br>");
  const ws = it.weights.map(([n, s, c]) => `${esc(n)} ${esc(s)} (${c.toLocaleString("en")})`).join("<br>");
  const attrs = Object.entries(it.attrs).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(", ");
  return `<h3>${esc(it.op)}</h3>` + rows([["name", `<code>${esc(it.path)}</code>`], ["attributes", attrs],
    ["inputs", ins], ["output", it.outputs.map(esc).join("<br>")], ["params", it.params ? it.params.toLocaleString("en") : ""],
    ["weights", ws], ["MACs", esc(it.macs)], ["changed", changed(M, key) ? "by the -O" + state.level + " passes" : ""]]) + source(it.src);
}
function hover(g, html) {
  const tip = $("tip");
  g.addEventListener("mouseenter", () => { tip.innerHTML = html(); tip.hidden = false; });
  g.addEventListener("mousemove", (e) => {
    tip.style.left = Math.min(e.clientX + 14, innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = Math.min(e.clientY + 14, innerHeight - tip.offsetHeight - 4) + "px";
  });
  g.addEventListener("mouseleave", () => { tip.hidden = true; });
}
function pin(M, key) {
  state.pinned = M.name + "|" + key;
  $("details").innerHTML = details(M, key);
  mark();
}

// A node the passes changed: at -O2, one that -O0 has not, or not with the same op.
function changed(M, key) {
  if (state.level === "0" || !key.startsWith("n:")) return false;
  const base = DATA.levels["0"].models[M.name], it = M.items[key], old = base && base.items[key];
  return !old || old.op !== it.op || JSON.stringify(old.attrs) !== JSON.stringify(it.attrs) ||
    old.lines[0].join(" ") !== it.lines[0].join(" ");
}

// -- open and fold ---------------------------------------------------------------------------------
function toggle(m, key) {
  const k = openKey(m, key);
  if (state.open.has(k)) {
    for (const o of [...state.open]) if (o === k || o.startsWith(m + "|" + key + ".")) state.open.delete(o);
  } else state.open.add(k);
  const before = placed[k];  // keep the block's top left corner where it is on the screen
  draw();
  const after = placed[k];
  if (before && after) {
    state.t.x += (before.x - before.w / 2 - (after.x - after.w / 2)) * state.t.k;
    state.t.y += (before.y - before.h / 2 - (after.y - after.h / 2)) * state.t.k;
    applyTransform();
  }
  save();
}
function startOpen() {  // open plain blocks, outermost first, while the picture stays small
  for (const name of view().models) {
    const M = model(name);
    let count = M.children[""].length;
    const queue = M.children[""].filter((k) => M.items[k].kind === "block");
    while (queue.length) {
      const k = queue.shift(), more = M.children[k].length - 1;
      if (count + more > MAX_START) continue;
      state.open.add(openKey(name, k));
      count += more;
      queue.push(...M.children[k].filter((c) => M.items[c].kind === "block"));
    }
  }
}
function reveal(m, key) {
  const M = model(m);
  for (let p = M.items[key].parent; p; p = M.items[p].parent) state.open.add(openKey(m, p));
  draw();
  const b = placed[m + "|" + key];
  if (b) centre(b.x, b.y);
  save();
}

// -- search ----------------------------------------------------------------------------------------
function matches() {
  const q = state.query.trim().toLowerCase(), out = [];
  if (!q) return out;
  for (const name of view().models) {
    const M = model(name);
    for (const [k, it] of Object.entries(M.items)) {
      if ((it.kind === "node" || it.kind === "input") && (it.path.toLowerCase().includes(q) || it.op.toLowerCase().includes(q))) out.push([name, k]);
    }
  }
  return out;
}
function search() {
  const hits = matches(), box = $("results");
  $("count").textContent = state.query.trim() ? `${hits.length} match${hits.length === 1 ? "" : "es"}` : "";
  box.hidden = !state.query.trim();
  box.innerHTML = `<h3>${hits.length} match${hits.length === 1 ? "" : "es"}</h3><ol>` +
    hits.map(([m, k]) => `<li data-model="${esc(m)}" data-key="${esc(k)}">${esc(model(m).items[k].path)} <small>${esc(model(m).items[k].op)}</small></li>`).join("") + "</ol>";
  box.querySelectorAll("li").forEach((li) => li.addEventListener("click", () => {
    reveal(li.dataset.model, li.dataset.key);
    pin(model(li.dataset.model), li.dataset.key);
  }));
  mark();
}
function mark() {
  const hits = new Set(matches().map(([m, k]) => m + "|" + k)), inside = new Set();
  for (const h of hits) {
    const [m, k] = h.split("|");
    inside.add(m + "|" + shownAs(model(m), k));
  }
  document.querySelectorAll("g.box").forEach((g) => {
    const id = g.dataset.model + "|" + g.dataset.key;
    g.classList.toggle("hit", hits.has(id));
    g.classList.toggle("hit-inside", !hits.has(id) && inside.has(id));
    g.classList.toggle("changed", changed(model(g.dataset.model), g.dataset.key));
    g.classList.toggle("pinned", id === state.pinned);
  });
}

// -- levels, views, passes ---------------------------------------------------------------------------
function showPasses() {
  const box = $("passes"), L = level();
  box.hidden = state.level === "0";
  if (box.hidden) return;
  let out = `<h3>what the -O${state.level} passes changed</h3>`;
  for (const name of view().models) {
    const base = DATA.levels["0"].models[name], M = model(name);
    const gone = Object.keys(base.items).filter((k) => k.startsWith("n:") && !M.items[k]).length;
    const fused = Object.keys(M.items).filter((k) => changed(M, k)).length;
    out += `<p><b>${esc(name)}</b>: ${fused} node(s) new or changed (outlined), ${gone} removed</p><ul>`;
    for (const p of (L.passes[name] || []).filter((p) => p.rewrites.length)) {
      out += `<li><details><summary>${esc(p.pass)} (-O${p.level}): ${p.rewrites.length} rewrite(s)</summary><small>${esc(p.purpose)}</small><ul>` +
        p.rewrites.map((r) => `<li>${esc(r.what)}${r.where ? " <small>" + esc(r.where) + "</small>" : ""}</li>`).join("") + "</ul></details></li>";
    }
    out += "</ul>";
  }
  box.innerHTML = out;
}
function setLevel(lv) {
  if (!DATA.levels[lv]) return;
  state.level = lv;
  document.querySelectorAll("#levels button").forEach((b) => b.classList.toggle("on", b.dataset.level === lv));
  showPasses();
  draw();
  search();
  save();
}
function summary() {
  const v = view();
  $("summary").innerHTML = `<h3>${esc(v.name)}</h3><p>${esc(DATA.spec)}</p>` +
    v.models.map((m, i) => `<p>${v.roles[i] ? esc(v.roles[i]) + ": " : ""}<b>${esc(m)}</b> · ${esc(model(m).title)}</p>`).join("");
}

// -- pan and zoom --------------------------------------------------------------------------------------
function applyTransform() { $("vp").setAttribute("transform", `translate(${state.t.x},${state.t.y}) scale(${state.t.k})`); }
function fit() {
  const b = $("vp").getBBox(), r = $("canvas").getBoundingClientRect();
  const k = Math.min(2, Math.max(0.05, Math.min((r.width - 40) / (b.width || 1), (r.height - 40) / (b.height || 1))));
  state.t = {k, x: (r.width - b.width * k) / 2 - b.x * k, y: 20 - b.y * k};
  applyTransform();
}
function centre(x, y) {
  const r = $("canvas").getBoundingClientRect();
  state.t.x = r.width / 2 - x * state.t.k; state.t.y = r.height / 2 - y * state.t.k;
  applyTransform();
}
function zoom(f, cx, cy) {
  const r = $("canvas").getBoundingClientRect();
  cx = cx == null ? r.width / 2 : cx; cy = cy == null ? r.height / 2 : cy;
  const k = Math.min(8, Math.max(0.02, state.t.k * f)), s = k / state.t.k;
  state.t = {k, x: cx - (cx - state.t.x) * s, y: cy - (cy - state.t.y) * s};
  applyTransform();
}
function panAndZoom() {
  const svg = $("canvas");
  let drag = null;
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});
  svg.addEventListener("mousedown", (e) => { drag = {x: e.clientX - state.t.x, y: e.clientY - state.t.y}; svg.classList.add("dragging"); });
  addEventListener("mousemove", (e) => { if (drag) { state.t.x = e.clientX - drag.x; state.t.y = e.clientY - drag.y; applyTransform(); } });
  addEventListener("mouseup", () => { if (drag) { drag = null; svg.classList.remove("dragging"); save(); } });
}

// -- state across reloads (netc view) -------------------------------------------------------------------
function save() {
  try { sessionStorage.setItem("netc-explorer", JSON.stringify({level: state.level, view: state.view, open: [...state.open], t: state.t})); } catch (e) { /* storage off */ }
}
function restore() {
  try {
    const s = JSON.parse(sessionStorage.getItem("netc-explorer") || "null");
    if (!s || !DATA.live) return false;
    state.view = s.view < DATA.views.length ? s.view : 0;
    state.level = DATA.levels[s.level] ? s.level : "0";
    state.open = new Set(s.open); state.t = s.t;
    return true;
  } catch (e) { return false; }
}
function live() {  // netc view: DATA.live is the version of the files this page was built from
  setInterval(() => {
    fetch("/version", {cache: "no-store"}).then((r) => r.text()).then((v) => {
      if (v !== DATA.live) { save(); location.reload(); }
    }).catch(() => {});
  }, 250);
}

function main() {
  if (DATA.live) live();
  if (DATA.error !== null) {
    $("error").hidden = false;
    $("error").textContent = DATA.error;
    document.querySelector("main").hidden = true;
    return;
  }
  const sel = $("view");
  DATA.views.forEach((v, i) => { const o = document.createElement("option"); o.value = i; o.textContent = v.name + (v.models.length > 1 ? " (pair)" : ""); sel.appendChild(o); });
  $("O2").hidden = !DATA.levels["2"];
  const restored = restore();
  if (!restored) startOpen();
  sel.value = state.view;
  sel.addEventListener("change", () => { state.view = +sel.value; startOpen(); summary(); showPasses(); draw(); search(); fit(); save(); });
  document.querySelectorAll("#levels button").forEach((b) => b.addEventListener("click", () => setLevel(b.dataset.level)));
  $("search").addEventListener("input", (e) => { state.query = e.target.value; search(); });
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("fit").addEventListener("click", fit);
  $("expand-all").addEventListener("click", () => {
    for (const m of view().models) for (const [k, it] of Object.entries(model(m).items)) if (isBlock(it)) state.open.add(openKey(m, k));
    draw(); fit(); save();
  });
  $("collapse-all").addEventListener("click", () => { state.open.clear(); draw(); fit(); save(); });
  panAndZoom();
  summary();
  setLevel(state.level);
  if (!restored) fit();
  document.body.dataset.ready = "1";
}
main();
