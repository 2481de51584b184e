// The sandbox panel: fills every <div data-sandbox-panel> with the signed-in
// learner's PostgreSQL sandbox: state, version, uptime, size, and buttons
// start / stop / restart / reset (reset asks first). While a start runs, the
// server's progress events (SSE, /api/sandbox/events) appear as a list of
// steps with their times. Other scripts can listen to
// `pglab:sandbox-state` (detail: the /api/sandbox object).
// A full classroom: a start waits in line; the server's `in line` progress
// events ("the classroom is full: you are number N in line") show in a
// live note above the steps, kept up to date, and Stop becomes "Leave the
// line" (POST /api/sandbox/stop ends the wait).
// Below the buttons, two folds: "Server log" (the learner's PostgreSQL log,
// live from /api/sandbox/log/events, with a level filter and a search) and
// "Inspect" (docker inspect of the learner's container, with a jq filter
// box run by the server: POST /api/sandbox/inspect/jq).
(function () {
  "use strict";
  const panels = [];
  const LABELS = {
    absent: "not created yet",
    starting: "starting",
    running: "running",
    stopped: "stopped",
    failed: "failed",
    queued: "waiting for a place",
  };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bytes(n) {
    if (n == null) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function duration(s) {
    if (s == null) return "—";
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  class Panel {
    constructor(root) {
      this.root = root;
      this.busy = false;
      root.classList.add("sandbox-panel");
      root.replaceChildren();
      const head = el("div", { class: "sandbox-head" });
      head.append(el("span", { class: "sandbox-title" }, "Your PostgreSQL sandbox"));
      this.badge = el("span", { class: "sandbox-badge", "data-state": "absent" }, "…");
      head.append(this.badge);
      this.facts = el("dl", { class: "sandbox-facts" });
      this.buttons = el("div", { class: "sandbox-buttons" });
      for (const [action, label] of [["start", "Start"], ["stop", "Stop"], ["restart", "Restart"], ["reset", "Reset…"]]) {
        const b = el("button", { type: "button", class: "btn", "data-action": action }, label);
        b.addEventListener("click", () => this.act(action));
        this.buttons.append(b);
      }
      // The learner's own compose file for this server (templates/compose.html).
      this.buttons.append(el("a", { class: "btn", href: "/sandbox/compose", "data-compose-link": "" }, "Compose file…"));
      this.detail = el("p", { class: "sandbox-detail", hidden: "" });
      this.queueNote = el("p", { class: "sandbox-queue", role: "status", "aria-live": "polite", "data-sandbox-queue": "", hidden: "" });
      this.progress = el("ol", { class: "sandbox-progress", "aria-live": "polite", hidden: "" });
      root.append(head, this.facts, this.buttons, this.detail, this.queueNote, this.progress);
      root.append(this.logFold(), this.inspectFold());
    }

    // The server log: opened on demand, live while open.
    logFold() {
      const fold = el("details", { class: "sandbox-fold sandbox-log" });
      fold.append(el("summary", {}, "Server log"));
      const bar = el("div", { class: "sandbox-fold-bar" });
      this.logLevel = el("select", { "aria-label": "Level", "data-log-level": "" });
      for (const [v, label] of [["all", "all levels"], ["warning", "warnings and errors"], ["error", "errors only"]]) {
        this.logLevel.append(el("option", { value: v }, label));
      }
      this.logSearch = el("input", { type: "search", placeholder: "search", "aria-label": "Search the log", "data-log-search": "" });
      bar.append(this.logLevel, this.logSearch);
      this.logOut = el("pre", { class: "sandbox-log-lines", "data-log-lines": "", "aria-live": "polite" });
      fold.append(bar, this.logOut);
      this.logLines = [];
      const redraw = () => this.drawLog();
      this.logLevel.addEventListener("change", redraw);
      this.logSearch.addEventListener("input", redraw);
      fold.addEventListener("toggle", () => {
        if (fold.open && !this.logSource && window.EventSource) {
          this.logSource = new EventSource("/api/sandbox/log/events");
          this.logSource.addEventListener("line", (m) => {
            this.logLines.push(JSON.parse(m.data));
            if (this.logLines.length > 5000) this.logLines.splice(0, this.logLines.length - 5000);
            this.drawLogSoon();
          });
          window.addEventListener("pagehide", () => this.logSource && this.logSource.close());
        } else if (!fold.open && this.logSource) {
          this.logSource.close();
          this.logSource = null;
          this.logLines = [];
        }
      });
      return fold;
    }

    drawLogSoon() {
      if (this.logTimer) return;
      this.logTimer = setTimeout(() => { this.logTimer = null; this.drawLog(); }, 50);
    }

    drawLog() {
      const level = this.logLevel.value;
      const wanted = level === "error" ? ["error", "fatal", "panic"]
        : level === "warning" ? ["warning", "error", "fatal", "panic"] : null;
      const needle = this.logSearch.value.toLowerCase();
      const shown = this.logLines.filter((l) =>
        (!wanted || wanted.includes(l.level)) && (!needle || l.text.toLowerCase().includes(needle)));
      const stick = this.logOut.scrollTop + this.logOut.clientHeight >= this.logOut.scrollHeight - 4;
      this.logOut.replaceChildren(...shown.slice(-2000).map((l) =>
        el("span", { class: "log-line", "data-level": l.level }, l.text + "\n")));
      if (stick) this.logOut.scrollTop = this.logOut.scrollHeight;
    }

    // docker inspect with a jq filter, run by the server.
    inspectFold() {
      const fold = el("details", { class: "sandbox-fold sandbox-inspect" });
      fold.append(el("summary", {}, "Inspect (docker inspect)"));
      const form = el("form", { class: "sandbox-fold-bar" });
      const filter = el("input", { type: "text", placeholder: ".[0].Mounts", "aria-label": "jq filter", "data-jq-filter": "", spellcheck: "false" });
      form.append(filter, el("button", { type: "submit", class: "btn btn-sm" }, "Run jq"));
      const out = el("pre", { class: "sandbox-inspect-out", "data-inspect-out": "" });
      fold.append(form, out);
      const show = async () => {
        out.classList.remove("error");
        try {
          const f = filter.value.trim();
          if (!f) {
            out.textContent = JSON.stringify(await pglab.api("GET", "/api/sandbox/inspect"), null, 2);
          } else {
            const r = await pglab.api("POST", "/api/sandbox/inspect/jq", { filter: f });
            out.textContent = r.outputs.map((v) => JSON.stringify(v, null, 2)).join("\n");
          }
        } catch (e) {
          out.classList.add("error");
          out.textContent = e.message;
        }
      };
      form.addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
      fold.addEventListener("toggle", () => { if (fold.open) show(); });
      return fold;
    }

    // In line (or not) for a place, with the sentence the server gave.
    setQueued(message) {
      this.queued = !!message;
      this.queueNote.hidden = !message;
      this.queueNote.textContent = message || "";
      if (message) {
        this.badge.dataset.state = "queued";
        this.badge.textContent = LABELS.queued;
      }
      this.updateButtons();
    }

    render(s) {
      this.status = s;
      this.queued = s.state === "queued";
      this.badge.dataset.state = s.state;
      this.badge.textContent = LABELS[s.state] || s.state;
      this.facts.replaceChildren();
      for (const [k, v] of [
        ["Backend", s.backend],
        ["PostgreSQL", s.pg_version || "—"],
        ["Uptime", duration(s.uptime_s)],
        ["Size on disk", bytes(s.size_bytes)],
      ]) {
        this.facts.append(el("dt", {}, k), el("dd", {}, v));
      }
      this.detail.hidden = !s.detail || this.queued;
      this.detail.textContent = s.detail || "";
      this.setQueued(this.queued ? s.detail : null);
    }

    updateButtons() {
      const state = this.status ? this.status.state : "absent";
      for (const b of this.buttons.querySelectorAll("button")) {
        const a = b.dataset.action;
        let enabled = !this.busy;
        if (a === "start") enabled = enabled && state !== "running";
        if (a === "stop") enabled = (enabled && (state === "running" || state === "starting")) || !!this.queued;
        if (a === "stop") b.textContent = this.queued ? "Leave the line" : "Stop";
        if (a === "restart") enabled = enabled && state !== "absent";
        if (a === "reset") enabled = enabled && state !== "absent";
        b.disabled = !enabled;
      }
    }

    error(message) {
      this.detail.hidden = false;
      this.detail.textContent = message;
      this.detail.classList.add("error");
    }

    // One progress event from the server.
    step(ev) {
      // The line moves whoever started (this panel, the console, a tab).
      if (ev.step === "in line") { this.setQueued(ev.message); return; }
      if (this.queued) this.setQueued(null);
      if (this.progress.hidden) return; // not one of our own operations
      const li = el("li", { class: ev.error ? "failed" : ev.done ? "done" : "" });
      li.append(el("span", { class: "sandbox-step" }, ev.error ? ev.error : ev.message));
      li.append(el("span", { class: "sandbox-ms" }, (ev.elapsed_ms / 1000).toFixed(2) + " s"));
      const last = this.progress.lastElementChild;
      if (last) last.classList.add("done");
      this.progress.append(li);
    }

    async act(action) {
      if (action === "reset" && !window.confirm(
        "Reset your sandbox? Every table and row in it is thrown away and a fresh, empty database is created.")) {
        return;
      }
      // The pressed button is disabled while the action runs (and Start
      // stays disabled once running): keep the keyboard's focus in the panel.
      const hadFocus = this.buttons.contains(document.activeElement);
      this.busy = true;
      this.updateButtons();
      this.detail.hidden = true;
      this.detail.classList.remove("error");
      this.progress.replaceChildren();
      this.progress.hidden = action === "stop";
      if (action !== "stop") {
        this.badge.dataset.state = "starting";
        this.badge.textContent = action === "reset" ? "resetting" : action === "restart" ? "restarting" : "starting";
      }
      try {
        const s = await pglab.api("POST", "/api/sandbox/" + action);
        broadcast(s);
      } catch (e) {
        this.error(e.message);
        refresh();
      } finally {
        this.busy = false;
        this.updateButtons();
        if (hadFocus && !this.root.contains(document.activeElement)) {
          const next = this.buttons.querySelector("button:not([disabled])") || this.buttons.querySelector("a");
          if (next) next.focus();
        }
      }
    }
  }

  function broadcast(s) {
    for (const p of panels) p.render(s);
    document.dispatchEvent(new CustomEvent("pglab:sandbox-state", { detail: s }));
  }

  async function refresh() {
    try {
      broadcast(await pglab.api("GET", "/api/sandbox"));
    } catch (e) {
      for (const p of panels) p.error(e.message);
    }
  }

  function listen() {
    if (!window.EventSource) return;
    const es = new EventSource("/api/sandbox/events");
    es.addEventListener("status", (m) => broadcast(JSON.parse(m.data)));
    es.addEventListener("progress", (m) => {
      const ev = JSON.parse(m.data);
      for (const p of panels) p.step(ev);
      // A start that waited in line ends on its own (ready, failed, left):
      // the panel shows where things stand then.
      if (ev.done && !panels.some((p) => p.busy)) refresh();
    });
    window.addEventListener("pagehide", () => es.close());
  }

  function init() {
    for (const root of document.querySelectorAll("[data-sandbox-panel]")) panels.push(new Panel(root));
    if (panels.length === 0) return;
    refresh();
    listen();
    // The console starts the sandbox on a first run: show it at once.
    document.addEventListener("pglab:sql-done", () => { if (!panels.some((p) => p.busy)) refresh(); });
    // Uptime and size move on; refresh now and then while visible.
    setInterval(() => { if (!document.hidden && !panels.some((p) => p.busy)) refresh(); }, 30000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
