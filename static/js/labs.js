// The "Labs" area under the sandbox panel (every <div data-labs-panel>):
// section 14's server-side labs, each in a collapsible block.
// - Production traffic (14.D.1): a switch, a live latency chart (SVG) polled
//   every second from /api/labs/traffic while the block is open.
// - Connection leak (14.D.3): Leak / Release; PostgreSQL's refusal is also
//   written into the console (T1) where the lesson says to look.
// - Volume demo (14.D.4): the same row in the sandbox and in a throw-away
//   server, then re-create both and count again.
// - Monitor (part E step 9): /api/labs/stats every 3 s while open, with
//   sparklines of the last samples.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const SAMPLES = 40;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function button(label, action) {
    return el("button", { type: "button", class: "btn btn-sm", "data-lab-action": action }, label);
  }
  function fmtMs(ms) {
    return ms == null ? "—" : ms < 10 ? ms.toFixed(2) + " ms" : ms.toFixed(0) + " ms";
  }

  // An SVG polyline of `values` scaled to width x height (0 at the bottom).
  function lineChart(values, width, height, cls) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", cls);
    svg.setAttribute("preserveAspectRatio", "none");
    if (values.length < 2) return svg;
    const max = Math.max(...values, 1e-9);
    const step = width / (values.length - 1);
    const pts = values.map((v, i) => (i * step).toFixed(1) + "," + (height - (v / max) * (height - 2) - 1).toFixed(1));
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "currentColor");
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    return svg;
  }

  // A block that polls `fn` every `ms` while it is open and the page visible.
  function poller(details, ms, fn) {
    let timer = null;
    const tick = async () => {
      timer = null;
      if (!details.open || document.hidden) return;
      try { await fn(); } catch (_) { /* shown by fn */ }
      if (details.open && !timer) timer = setTimeout(tick, ms);
    };
    details.addEventListener("toggle", () => { if (details.open && !timer) tick(); });
    document.addEventListener("visibilitychange", () => { if (!document.hidden && details.open && !timer) tick(); });
    return () => { if (!timer) tick(); };
  }

  function block(root, title, id) {
    const d = el("details", { class: "lab-block", "data-lab": id });
    d.append(el("summary", {}, title));
    const body = el("div", { class: "lab-body" });
    const msg = el("p", { class: "lab-msg", "aria-live": "polite" });
    d.append(body, msg);
    root.append(d);
    return { d, body, msg };
  }
  function say(msg, text, isError) {
    msg.textContent = text || "";
    msg.classList.toggle("error", !!isError);
  }
  async function act(btns, msg, busyText, fn) {
    for (const b of btns) b.disabled = true;
    say(msg, busyText);
    try { await fn(); } catch (e) { say(msg, e.message, true); } finally { for (const b of btns) b.disabled = false; }
  }

  // Writes a psql-like error into the console's first pane.
  function toConsole(label, errorText, sqlstate) {
    const results = document.querySelector("[data-console] .con-results");
    if (!results || !window.pglab.console) return;
    const m = /^([A-Z]+):\s+([\s\S]*)$/.exec(errorText) || [null, "ERROR", errorText];
    const st = { sql: label, columns: [], rows: [], notices: [], kind: "sql", elapsed_ms: 0, total_rows: 0,
      error: { severity: m[1], message: m[2], sqlstate: sqlstate || null } };
    results.insertAdjacentHTML("afterbegin", window.pglab.console.renderStatement(st, 0, { expanded: false }));
  }

  function traffic(root) {
    const { d, body, msg } = block(root, "Production traffic (14.D.1)", "traffic");
    const toggle = el("button", { type: "button", class: "btn btn-sm", "data-lab-action": "traffic", "aria-pressed": "false" }, "Start traffic");
    const facts = el("p", { class: "lab-facts" }, "Not running.");
    const chart = el("div", { class: "lab-chart", "data-lab-chart": "" });
    body.append(toggle, facts, chart);
    let points = [];
    let last = 0;
    let running = false;
    function draw(s) {
      running = s.running;
      toggle.textContent = running ? "Stop traffic" : "Start traffic";
      toggle.setAttribute("aria-pressed", String(running));
      for (const p of s.points) if (p.seq > last) points.push(p);
      if (s.points.length) last = s.points[s.points.length - 1].seq;
      points = points.slice(-120);
      const ms = points.map((p) => p.ms);
      const recent = ms.slice(-10).sort((a, b) => a - b);
      const median = recent.length ? recent[Math.floor(recent.length / 2)] : null;
      facts.textContent = (running ? "Running" : "Stopped") + " · " + s.queries + " queries · " + s.errors + " errors · recent median " +
        fmtMs(median) + (s.ends_in_s != null ? " · stops by itself in " + s.ends_in_s + " s" : "");
      chart.replaceChildren(lineChart(ms, 300, 80, "lab-line"));
      if (ms.length) chart.append(el("span", { class: "lab-chart-max" }, "max " + fmtMs(Math.max(...ms))));
      chart.dataset.points = String(ms.length);
      if (s.stopped_reason && !running) say(msg, s.stopped_reason, !!s.last_error && s.stopped_reason.includes("fail"));
      else if (s.last_error) say(msg, "last error: " + s.last_error, true);
    }
    const poll = poller(d, 1000, async () => draw(await pglab.api("GET", "/api/labs/traffic?since=" + last)));
    toggle.addEventListener("click", () => act([toggle], msg, running ? "stopping…" : "starting…", async () => {
      if (!running) { points = []; last = 0; }
      draw(await pglab.api("POST", running ? "/api/labs/traffic/stop" : "/api/labs/traffic/start"));
      if (running) say(msg, "");
      poll();
    }));
  }

  function leak(root) {
    const { d, body, msg } = block(root, "Connection leak (14.D.3)", "leak");
    const leakBtn = button("Leak connections", "leak");
    const releaseBtn = button("Release them", "release");
    const facts = el("p", { class: "lab-facts" }, "pglab holds no leaked connections.");
    const err = el("pre", { class: "lab-error", hidden: "" });
    body.append(leakBtn, releaseBtn, facts, err);
    async function status() {
      const s = await pglab.api("GET", "/api/labs/connections");
      facts.textContent = s.held ? "pglab holds " + s.held + " leaked connections (" + s.alive + " still alive)" +
        (s.release_in_s != null ? ", released by itself in " + s.release_in_s + " s" : "") : "pglab holds no leaked connections.";
    }
    poller(d, 5000, status);
    leakBtn.addEventListener("click", () => act([leakBtn, releaseBtn], msg, "opening connections as taskflow_app…", async () => {
      const r = await pglab.api("POST", "/api/labs/connections/leak");
      say(msg, "Opened " + r.opened + " (max_connections " + r.max_connections + ", " + r.superuser_reserved_connections +
        " reserved for superusers). PostgreSQL's answer to the next one:");
      err.hidden = !r.error;
      err.textContent = r.error || "";
      if (r.error) toConsole("-- pglab connects as taskflow_app (the leaking application)", r.error, r.sqlstate);
      await status();
    }));
    releaseBtn.addEventListener("click", () => act([leakBtn, releaseBtn], msg, "closing…", async () => {
      const r = await pglab.api("POST", "/api/labs/connections/release");
      say(msg, "Released " + r.released + " connections.");
      err.hidden = true;
      await status();
    }));
  }

  function volume(root) {
    const { d, body, msg } = block(root, "Volume demo (14.D.4)", "volume");
    const grid = el("div", { class: "lab-sides" });
    const cells = {};
    for (const [key, label] of [["sandbox", "Your sandbox (volume)"], ["ephemeral", "Throw-away (no volume)"]]) {
      const box = el("div", { class: "lab-side", "data-side": key });
      box.append(el("strong", {}, label));
      cells[key] = el("p", { class: "lab-rows" }, "—");
      box.append(cells[key]);
      grid.append(box);
    }
    const write = button("Write a row in both", "write");
    const recreate = button("Re-create both", "recreate");
    const remove = button("Remove throw-away", "remove");
    body.append(grid, write, recreate, remove);
    const btns = [write, recreate, remove];
    function show(r) {
      for (const key of ["sandbox", "ephemeral"]) {
        const s = r[key];
        cells[key].textContent = !s ? "not created yet" : s.error ? s.error :
          (s.rows == null ? "no restart_proof table" : s.rows + " rows in restart_proof") +
          (s.server_started ? " · server started " + s.server_started.slice(11, 19) : "");
      }
    }
    d.addEventListener("toggle", async () => { if (d.open) try { show(await pglab.api("GET", "/api/labs/volume-demo")); } catch (e) { say(msg, e.message, true); } });
    write.addEventListener("click", () => act(btns, msg, "writing (the throw-away server starts on first use)…", async () => {
      show(await pglab.api("POST", "/api/labs/volume-demo/write"));
      say(msg, "One more row in each.");
    }));
    recreate.addEventListener("click", () => act(btns, msg, "re-creating the throw-away server and restarting yours…", async () => {
      const r = await pglab.api("POST", "/api/labs/volume-demo/recreate");
      show(r);
      say(msg, "Done in " + (r.elapsed_ms / 1000).toFixed(1) + " s.");
      document.dispatchEvent(new CustomEvent("pglab:sql-done", { detail: {} }));
    }));
    remove.addEventListener("click", () => act(btns, msg, "removing…", async () => {
      await pglab.api("POST", "/api/labs/volume-demo/remove");
      show(await pglab.api("GET", "/api/labs/volume-demo"));
      say(msg, "Removed.");
    }));
  }

  function monitor(root) {
    const { d, body, msg } = block(root, "Monitor (part E step 9)", "monitor");
    const head = el("div", { class: "lab-metrics" });
    const tables = el("table", { class: "lab-table" });
    const indexes = el("table", { class: "lab-table" });
    body.append(head, tables, indexes);
    const history = [];
    function spark(values) { return lineChart(values, 80, 18, "lab-spark"); }
    function series(fn) { return history.map(fn).filter((v) => v != null); }
    // Per-sample increase of a cumulative counter of one table.
    function deltas(name, field) {
      const out = [];
      for (let i = 1; i < history.length; i++) {
        const a = history[i - 1].tables.find((t) => t.table === name);
        const b = history[i].tables.find((t) => t.table === name);
        if (a && b) out.push(Math.max(0, b[field] - a[field]));
      }
      return out;
    }
    function row(tr, cells) {
      for (const c of cells) {
        const td = el("td");
        if (c instanceof Node) td.append(c); else td.textContent = c;
        tr.append(td);
      }
      return tr;
    }
    function ago(t) { return t == null ? "never" : Math.max(0, Math.round(Date.now() / 1000 - t)) + " s ago"; }
    function draw(s) {
      history.push(s);
      if (history.length > SAMPLES) history.shift();
      head.replaceChildren();
      for (const [label, value, values] of [
        ["cache hit", s.cache_hit_pct == null ? "n/a" : s.cache_hit_pct + " %", series((x) => x.cache_hit_pct)],
        ["active", String(s.connections.active), series((x) => x.connections.active)],
        ["connections", s.connections.total + " / " + s.connections.max_connections, series((x) => x.connections.total)],
        ["idle in tx", String(s.connections.idle_in_transaction), series((x) => x.connections.idle_in_transaction)],
      ]) {
        const m = el("div", { class: "lab-metric" });
        m.append(el("span", {}, label), el("strong", {}, value), spark(values));
        head.append(m);
      }
      tables.replaceChildren(row(el("tr"), ["table", "seq scans", "idx scans", "live", "dead", "last autovacuum", "last analyze"]));
      for (const t of s.tables) {
        tables.append(row(el("tr"), [t.table, spark(deltas(t.table, "seq_scan")), spark(deltas(t.table, "idx_scan")),
          String(t.n_live_tup), String(t.n_dead_tup), ago(t.last_autovacuum || t.last_vacuum), ago(t.last_autoanalyze || t.last_analyze)]));
        tables.lastChild.children[1].prepend(String(t.seq_scan) + " ");
        tables.lastChild.children[2].prepend(String(t.idx_scan) + " ");
      }
      indexes.replaceChildren(row(el("tr"), ["index", "table", "scans"]));
      for (const i of s.indexes) indexes.append(row(el("tr"), [i.index, i.table, String(i.idx_scan)]));
      d.dataset.samples = String(history.length);
      say(msg, "");
    }
    poller(d, 3000, async () => {
      try { draw(await pglab.api("GET", "/api/labs/stats")); } catch (e) { say(msg, e.message, true); }
    });
  }

  function init() {
    for (const root of document.querySelectorAll("[data-labs-panel]")) {
      root.classList.add("labs-panel");
      root.replaceChildren(el("div", { class: "labs-title" }, "Labs"));
      traffic(root);
      leak(root);
      volume(root);
      monitor(root);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
