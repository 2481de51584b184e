// The sandbox terminal and backups: fills every <div data-terminal-pane>.
//
// - "Open terminal" loads xterm.js (served from node_modules under
//   /static/vendor/) and connects to /api/sandbox/terminal over a WebSocket:
//   binary frames are terminal bytes both ways, text frames JSON control
//   ({"type":"resize"} from here; "banner", "watchers" (who is watching,
//   shown above the screen) and "closed" from the server).
//   The terminal fits its box and follows window resizes; when the server
//   closes it, the status line says why and offers to reconnect.
// - "Backup": make a pg_dump of labdb, download it, restore it into a new
//   database (the answer shows each table's rows next to labdb's).
// - With data-watch="<learner id>" (instructors): the learner's terminal
//   output, read-only, from /api/instructor/learners/<id>/terminal.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  let vendor = null;
  // Loads xterm.js, its fit add-on and CSS once; rejects with what to run.
  function loadVendor() {
    if (vendor) return vendor;
    const script = (src) => new Promise((resolve, reject) => {
      const s = el("script", { src });
      s.onload = resolve;
      s.onerror = () => reject(new Error(
        "the terminal emulator (xterm.js) is not installed on the server: run `npm ci` in pglab's folder and restart it"));
      document.head.append(s);
    });
    document.head.append(el("link", { rel: "stylesheet", href: "/static/vendor/xterm.css" }));
    vendor = script("/static/vendor/xterm.js").then(() => script("/static/vendor/addon-fit.js"));
    vendor.catch(() => { vendor = null; });
    return vendor;
  }

  class Pane {
    constructor(root) {
      this.root = root;
      this.ws = null;
      this.watch = root.dataset.watch || null;
      root.classList.add("terminal-pane");
      root.replaceChildren();
      const bar = el("div", { class: "terminal-bar" });
      this.openBtn = el("button", { type: "button", class: "btn", "data-terminal-open": "" }, "Open terminal");
      this.openBtn.addEventListener("click", () => this.open());
      this.closeBtn = el("button", { type: "button", class: "btn", "data-terminal-close": "", hidden: "" }, "Close");
      this.closeBtn.addEventListener("click", () => this.close());
      this.backupBtn = el("button", { type: "button", class: "btn", "data-backup-toggle": "" }, "Backup…");
      this.backupBtn.addEventListener("click", () => this.toggleBackups());
      if (this.watch) {
        this.openBtn.textContent = "Watch";
        this.backupBtn.hidden = true;
      }
      bar.append(el("strong", {}, "Terminal"), this.openBtn, this.closeBtn, this.backupBtn);
      this.status = el("p", { class: "terminal-status", "data-terminal-status": "", "aria-live": "polite" });
      // Who watches this terminal (instructors, read-only): the learner is told.
      this.watchers = el("p", { class: "terminal-watchers", "data-terminal-watchers": "", "aria-live": "polite", hidden: "" });
      this.screen = el("div", { class: "terminal-screen", role: "group", "aria-label": "Terminal screen",
        "aria-describedby": "terminal-keys", hidden: "" });
      this.hint = el("p", { class: "kbd-hint", id: "terminal-keys", hidden: "" },
        "Tab completes in the shell: press Escape then Tab to leave the terminal.");
      pglab.leaveOnEscapeTab(this.screen);
      this.backups = el("div", { class: "terminal-backups", hidden: "" });
      root.append(bar, this.status, this.watchers, this.hint, this.screen, this.backups);
      window.addEventListener("resize", () => this.fit());
      // The terminal's own page is there to type in: open at once.
      if (root.hasAttribute("data-full")) this.open();
    }

    say(text, isError) {
      this.status.textContent = text;
      this.status.classList.toggle("error", !!isError);
    }

    fit() {
      if (!this.term || this.screen.hidden) return;
      try { this.fitter.fit(); } catch (_) { /* not laid out yet */ }
    }

    async open() {
      if (this.ws) return;
      this.openBtn.disabled = true;
      this.say("connecting…");
      try {
        await loadVendor();
      } catch (e) {
        this.say(e.message, true);
        this.openBtn.disabled = false;
        return;
      }
      this.screen.hidden = false;
      this.hint.hidden = !!this.watch;
      if (!this.term) {
        this.term = new window.Terminal({
          convertEol: false, cursorBlink: !this.watch, disableStdin: !!this.watch, fontSize: 13, scrollback: 2000,
        });
        this.fitter = new window.FitAddon.FitAddon();
        this.term.loadAddon(this.fitter);
        this.term.open(this.screen);
        this.term.onData((d) => this.send(new TextEncoder().encode(d)));
        this.term.onBinary((d) => this.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
        this.term.onResize(({ cols, rows }) => this.control({ type: "resize", cols, rows }));
      } else {
        this.term.reset();
      }
      this.fit();
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const path = this.watch
        ? "/api/instructor/learners/" + encodeURIComponent(this.watch) + "/terminal"
        : "/api/sandbox/terminal?cols=" + this.term.cols + "&rows=" + this.term.rows;
      const url = scheme + "//" + location.host + path;
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.closedMessage = null;
      ws.onopen = () => {
        this.say(this.watch ? "connected" : "connected (starting your sandbox if needed)");
        this.closeBtn.hidden = false;
        this.term.focus();
      };
      ws.onmessage = (m) => {
        if (typeof m.data === "string") {
          let msg = {};
          try { msg = JSON.parse(m.data); } catch (_) { return; }
          if (msg.type === "banner") this.say(msg.message);
          if (msg.type === "closed") this.closedMessage = msg.message;
          if (msg.type === "watchers") {
            this.watchers.textContent = msg.message;
            this.watchers.hidden = !(msg.names && msg.names.length);
          }
        } else {
          this.term.write(new Uint8Array(m.data));
        }
      };
      ws.onclose = (ev) => {
        this.ws = null;
        this.watchers.hidden = true;
        this.openBtn.disabled = false;
        this.openBtn.textContent = "Reconnect";
        this.closeBtn.hidden = true;
        this.say(this.closedMessage || ("terminal closed" + (ev.code === 1006 ? ": the connection was refused or lost" : "") + " — reconnect"), !this.closedMessage);
      };
    }

    send(bytes) {
      if (this.watch) return;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
    }

    control(msg) {
      if (this.watch) return;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
    }

    close() {
      if (this.ws) this.ws.close(1000, "closed by the learner");
    }

    async toggleBackups() {
      this.backups.hidden = !this.backups.hidden;
      if (!this.backups.hidden) await this.listDumps();
    }

    async listDumps() {
      this.backups.replaceChildren();
      const make = el("button", { type: "button", class: "btn", "data-dump-make": "" }, "Make a dump of labdb");
      make.addEventListener("click", () => this.makeDump(make));
      this.backupNote = el("p", { class: "terminal-note", "data-dump-note": "", "aria-live": "polite" });
      const list = el("ul", { class: "terminal-dumps" });
      this.backups.append(make, this.backupNote, list);
      let data;
      try {
        data = await pglab.api("GET", "/api/sandbox/dumps");
      } catch (e) {
        this.backupNote.textContent = e.message;
        return;
      }
      if (data.dumps.length === 0) list.append(el("li", {}, "No dumps yet."));
      for (const d of data.dumps) {
        const li = el("li", { "data-dump": d.id });
        const when = new Date(d.created_at * 1000).toLocaleString();
        li.append(el("span", {}, when + " · " + bytes(d.size_bytes) + " "));
        li.append(el("a", { href: "/api/sandbox/dumps/" + d.id, download: "labdb-" + d.id + ".dump" }, "Download"));
        const restore = el("button", { type: "button", class: "btn btn-sm", "data-dump-restore": d.id }, "Restore…");
        restore.addEventListener("click", () => this.restore(d.id, restore));
        const del = el("button", { type: "button", class: "btn btn-sm" }, "Delete");
        del.addEventListener("click", async () => {
          try { await pglab.api("DELETE", "/api/sandbox/dumps/" + d.id); } catch (e) { this.backupNote.textContent = e.message; return; }
          this.listDumps();
        });
        li.append(" ", restore, " ", del);
        list.append(li);
      }
    }

    async makeDump(button) {
      button.disabled = true;
      this.backupNote.textContent = "pg_dump --format=custom labdb …";
      try {
        const d = await pglab.api("POST", "/api/sandbox/dumps");
        await this.listDumps();
        this.backupNote.textContent = "Dump made: " + bytes(d.size_bytes) + " in " + (d.duration_ms / 1000).toFixed(1) + " s.";
      } catch (e) {
        this.backupNote.textContent = e.message;
        button.disabled = false;
      }
    }

    async restore(id, button) {
      const name = window.prompt("Restore into which new database?", "labdb_restore");
      if (!name) return;
      button.disabled = true;
      this.backupNote.textContent = "restoring into " + name + " …";
      let answer;
      try {
        answer = await pglab.api("POST", "/api/sandbox/dumps/" + id + "/restore", { database: name });
      } catch (e) {
        if (e.status === 409 && /exists/.test(e.message) &&
            window.confirm(e.message + "\n\nDrop " + name + " and restore into a fresh one?")) {
          try {
            answer = await pglab.api("POST", "/api/sandbox/dumps/" + id + "/restore", { database: name, replace: true });
          } catch (e2) { this.backupNote.textContent = e2.message; button.disabled = false; return; }
        } else { this.backupNote.textContent = e.message; button.disabled = false; return; }
      }
      button.disabled = false;
      document.dispatchEvent(new CustomEvent("pglab:schema-changed"));
      this.backupNote.replaceChildren(el("span", {}, "Restored into " + answer.database + (answer.counts_match_labdb ? ": every table has labdb's row count." : ": some counts differ from labdb.")));
      const table = el("table", { class: "terminal-counts" });
      table.append(el("tr", {}, ""));
      table.firstChild.append(el("th", {}, "table"), el("th", {}, answer.database), el("th", {}, "labdb"));
      for (const t of answer.tables) {
        const tr = el("tr", { class: t.labdb_rows === t.rows ? "" : "differs" });
        tr.append(el("td", {}, t.table), el("td", {}, String(t.rows)), el("td", {}, t.labdb_rows == null ? "—" : String(t.labdb_rows)));
        table.append(tr);
      }
      this.backupNote.append(table);
    }
  }

  function init() {
    for (const root of document.querySelectorAll("[data-terminal-pane]")) new Pane(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
