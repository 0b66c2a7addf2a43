// eas view: builds the token text and the trajectory of each trace from its JSON block.
// Model text is only ever inserted with textContent. State for tests: window.easView.
(function () {
  "use strict";
  const startMs = performance.now();
  const SVGNS = "http://www.w3.org/2000/svg";
  const meta = JSON.parse(document.getElementById("eas-meta").textContent);
  const tip = document.getElementById("eas-tip");
  const views = {};
  const state = { ready: false, startMs: startMs, builtMs: null, layoutMs: null, paintMs: null, fcpMs: null, lastHover: null, built: [] };
  const M = { l: 36, r: 8, t: 8, b: 16 }; // plot margins (px)
  const HEIGHT = 150;
  const CHUNK = 200; // tokens per layout block, at least (a block ends after a newline)

  function bin(h) {
    const b = Math.floor((h / meta.vmax) * meta.bins);
    return b < 0 ? 0 : b >= meta.bins ? meta.bins - 1 : b;
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // A strided row (--probe-stride) has H only at its probed positions d.probed.
  function notProbed(d, t) {
    if (!d.probed) return false;
    if (!d._probed) d._probed = new Set(d.probed);
    return !d._probed.has(t);
  }

  function buildText(v) {
    const d = v.d;
    const frag = document.createDocumentFragment();
    const n = d.tok.length;
    const spans = new Array(n);
    // Tokens go into blocks that end at a newline, so the browser lays out only the
    // blocks on screen (content-visibility) and the text looks the same as one block.
    let chunk = null;
    let size = 0;
    for (let k = 0; k < n; k++) {
      if (chunk === null || (size >= CHUNK && d.tok[k - 1].endsWith("\n"))) {
        chunk = frag.appendChild(document.createElement("div"));
        chunk.className = "chunk";
        size = 0;
      }
      size++;
      const s = document.createElement("span");
      s.textContent = d.tok[k];
      let cls = k < d.H.length ? (d.H[k] === null ? (notProbed(d, k + 1) ? "np" : "na") : "c" + bin(d.H[k])) : "nh";
      if (d.T !== null && k === d.T - 1) cls += " xT";
      if (d.ans && k >= d.ans[0] && k < d.ans[1]) cls += " ans";
      s.className = cls;
      s._t = k + 1;
      spans[k] = s;
      chunk.appendChild(s);
    }
    if (d.tail) (chunk || frag).appendChild(document.createTextNode(d.tail));
    v.text.appendChild(frag);
    v.spans = spans;
    // One listener per trace, not per token (event delegation).
    v.text.addEventListener("mouseover", (e) => {
      if (e.target._t) hover(v.i, e.target._t, { el: e.target });
    });
    v.text.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  function buildCurve(v) {
    const d = v.d;
    const n = d.H.length;
    const W = Math.max(200, v.curve.clientWidth || 1000);
    const pw = W - M.l - M.r;
    const ph = HEIGHT - M.t - M.b;
    const last = Math.max(1, (d.T || n + 1) - 1);
    v.x = (t) => M.l + ((t - 1) / last) * pw;
    v.y = (h) => M.t + ph - (h / meta.hmax) * ph;
    v.n = n;
    v.last = last;
    v.W = W;
    const svg = el("svg", { viewBox: "0 0 " + W + " " + HEIGHT, role: "img", "aria-label": "entropy trajectory" });
    el("line", { class: "axis", x1: M.l, y1: M.t + ph, x2: W - M.r, y2: M.t + ph }, svg);
    el("line", { class: "axis", x1: M.l, y1: M.t, x2: M.l, y2: M.t + ph }, svg);
    for (const f of [0, 0.5, 1]) {
      const lab = el("text", { x: M.l - 4, y: v.y(f * meta.hmax) + 3, "text-anchor": "end" }, svg);
      lab.textContent = (f * meta.hmax).toFixed(f ? 1 : 0);
    }
    const bits = el("text", { x: 2, y: M.t + ph * 0.3 }, svg);
    bits.textContent = "bits";
    for (const [t, anchor] of [[1, "start"], [Math.round((last + 1) / 2), "middle"], [last + 1, "end"]]) {
      const lab = el("text", { x: v.x(t), y: HEIGHT - 3, "text-anchor": anchor }, svg);
      lab.textContent = t === last + 1 && d.T ? "T=" + t : "t=" + t;
    }
    // Points: one per probe, or the per-column maximum when there are more probes than pixels.
    let pts = [];
    if (n > 2 * pw) {
      const cols = new Array(Math.ceil(pw) + 1).fill(null);
      for (let k = 0; k < n; k++) {
        const h = d.H[k];
        if (h === null) continue;
        const c = Math.round(v.x(k + 1) - M.l);
        if (cols[c] === null || h > cols[c]) cols[c] = h;
      }
      pts = cols.map((h, c) => [M.l + c, h]);
    } else {
      pts = d.H.map((h, k) => [v.x(k + 1), h]);
    }
    let area = "";
    let line = "";
    let run = [];
    const base = (M.t + ph).toFixed(1);
    const flush = () => {
      if (!run.length) return;
      const xy = run.map((p) => p[0].toFixed(1) + "," + v.y(p[1]).toFixed(1));
      line += "M" + xy.join("L");
      area += "M" + run[0][0].toFixed(1) + "," + base + "L" + xy.join("L") + "L" + run[run.length - 1][0].toFixed(1) + "," + base + "Z";
      run = [];
    };
    for (const p of pts) {
      if (p[1] !== null) run.push(p);
      else if (!d.probed) flush(); // a strided row joins its probed points across the positions not probed
    }
    flush();
    el("path", { class: "area", d: area }, svg);
    el("path", { class: "line", d: line }, svg);
    if (d.probed && d.probed.length <= pw / 3) {
      for (const t of d.probed) {
        const h = d.H[t - 1];
        if (h !== null) el("circle", { class: "probe", r: 2, cx: v.x(t).toFixed(1), cy: v.y(h).toFixed(1) }, svg);
      }
    }
    if (d.T) el("line", { class: "xt", x1: v.x(d.T), y1: M.t, x2: v.x(d.T), y2: M.t + ph }, svg);
    v.vl = el("line", { class: "vl", x1: 0, y1: M.t, x2: 0, y2: M.t + ph, visibility: "hidden" }, svg);
    v.mk = el("circle", { class: "mk", r: 3.5, cx: 0, cy: 0, visibility: "hidden" }, svg);
    const tAt = (e) => {
      const r = svg.getBoundingClientRect();
      const px = ((e.clientX - r.left) * W) / r.width;
      const t = Math.round(((px - M.l) / pw) * last) + 1;
      return Math.min(Math.max(1, t), Math.max(1, v.spans.length ? Math.min(n, v.spans.length) : n));
    };
    svg.addEventListener("mousemove", (e) => hover(v.i, tAt(e), { x: e.clientX, y: e.clientY }));
    svg.addEventListener("mouseleave", () => { tip.hidden = true; });
    svg.addEventListener("click", (e) => select(v.i, tAt(e)));
    v.curve.appendChild(svg);
  }

  function build(i) {
    if (views[i]) return views[i];
    const sec = document.getElementById("trace-" + i);
    const v = { i: i, sec: sec, d: JSON.parse(document.getElementById("eas-d" + i).textContent) };
    v.text = sec.querySelector(".text");
    v.curve = sec.querySelector(".curve");
    v.spans = [];
    views[i] = v;
    if (v.d.H.length) buildCurve(v); // first: measuring its width must not lay out the text
    buildText(v);
    state.built.push(i);
    return v;
  }

  function fmt(h) {
    return h === null || h === undefined ? "n/a" : h.toFixed(3);
  }

  function hover(i, t, where) {
    const v = build(i);
    const k = t - 1;
    const s = v.spans[k];
    if (v.cur) v.cur.classList.remove("hl");
    if (s) s.classList.add("hl");
    v.cur = s;
    const h = k < v.d.H.length ? v.d.H[k] : undefined;
    const lines = ["t = " + t];
    if (h === undefined) lines.push(v.d.T && t === v.d.T ? "x_T: last token of the final answer, no probe" : "no probe (after x_T)");
    else if (h === null && notProbed(v.d, t)) lines.push("not probed (" + v.d.what + ")");
    else lines.push("H_" + t + " = " + fmt(h) + " bits" + (v.d.kind === "amortised" ? " (predicted)" : ""));
    const tok = s ? s.textContent : "";
    lines.push("token " + JSON.stringify(tok));
    if (v.d.opt && h !== undefined && !(h === null && notProbed(v.d, t))) {
      lines.push(Object.keys(v.d.opt).map((o) => o + " " + fmt(v.d.opt[o][k])).join("  "));
    }
    if (v.mk) {
      const vis = h === undefined || h === null ? "hidden" : "visible";
      v.mk.setAttribute("visibility", vis);
      v.vl.setAttribute("visibility", "visible");
      const x = v.x(t).toFixed(1);
      v.vl.setAttribute("x1", x);
      v.vl.setAttribute("x2", x);
      v.mk.setAttribute("cx", x);
      if (vis === "visible") v.mk.setAttribute("cy", v.y(h).toFixed(1));
    }
    tip.textContent = lines.join("\n");
    tip.hidden = false;
    place(where && where.x !== undefined ? where : s);
    state.lastHover = { trace: i, t: t, H: h === undefined ? null : h, token: tok };
    publish();
    return state.lastHover;
  }

  // The tooltip goes below a token, or beside the mouse ({x, y}), kept inside the window.
  function place(at) {
    let x = 8;
    let y = 8;
    if (at && at.x !== undefined) {
      x = at.x + 14;
      y = at.y + 14;
    } else if (at) {
      const r = at.getBoundingClientRect();
      x = r.left;
      y = r.bottom + 6;
    }
    tip.style.left = Math.max(0, Math.min(x, window.innerWidth - tip.offsetWidth - 4)) + "px";
    tip.style.top = Math.max(0, Math.min(y, window.innerHeight - tip.offsetHeight - 4)) + "px";
  }

  function select(i, t) {
    const v = build(i);
    const s = v.spans[t - 1];
    if (s) s.scrollIntoView({ block: "center" });
    const out = hover(i, t);
    // Blocks scrolled into view get their real height only now: place the tooltip again.
    if (s) requestAnimationFrame(() => { s.scrollIntoView({ block: "center" }); place(s); });
    return out;
  }

  function publish() {
    const out = Object.assign({}, state, { pwned: typeof window.pwned });
    document.getElementById("eas-state").textContent = JSON.stringify(out);
    document.body.dataset.easReady = state.ready ? "1" : "0";
  }

  function findTrace(id) {
    for (const h of document.querySelectorAll("h2.tid")) {
      if (h.textContent === id) return +h.closest("section").dataset.i;
    }
    return null;
  }

  function fromHash() {
    const args = {};
    for (const part of location.hash.slice(1).split("&")) {
      const eq = part.indexOf("=");
      if (eq > 0) args[part.slice(0, eq)] = decodeURIComponent(part.slice(eq + 1));
    }
    let i = args.id !== undefined ? findTrace(args.id) : args.trace !== undefined ? +args.trace : null;
    if (i === null && args.hover !== undefined) {
      const first = document.querySelector("section.trace");
      i = first ? +first.dataset.i : null;
    }
    if (i === null || !document.getElementById("trace-" + i)) return;
    const item = document.querySelector('details.item[data-i="' + i + '"]');
    if (item) item.open = true;
    build(i);
    if (args.hover !== undefined) select(i, parseInt(args.hover, 10));
    else document.getElementById("trace-" + i).scrollIntoView();
  }

  for (const item of document.querySelectorAll("details.item")) {
    item.addEventListener("toggle", () => { if (item.open) build(+item.dataset.i); });
  }
  if (meta.layout !== "list") {
    for (const sec of document.querySelectorAll("section.trace")) build(+sec.dataset.i);
  }
  state.builtMs = performance.now();
  void document.body.offsetHeight; // force style and layout of the new nodes
  state.layoutMs = performance.now();
  state.ready = true;
  fromHash();
  window.addEventListener("hashchange", fromHash);
  window.addEventListener("load", () => setTimeout(publish, 0)); // once images etc. have settled
  window.easView = { state: state, hover: hover, select: select, build: build };
  publish();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    state.paintMs = performance.now();
    publish();
  }));
  if (window.PerformanceObserver) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.name === "first-contentful-paint") state.fcpMs = e.startTime;
      publish();
    }).observe({ type: "paint", buffered: true });
  }
})();
