// The SQL console panes: fills every <div data-console data-sessions="T1 T2">
// (the lesson pages' docked pane, and the full page /console with data-full).
// Each pane is one named session with its own connection on the server; a run
// that takes longer than a moment is polled (GET /api/runs/{id}), showing live
// whether it waits for a lock held by another session.
(function () {
  const pglab = (window.pglab = window.pglab || {});
  const panes = [];

  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
  const ESC_RE = /[&<>"]/g;
  function esc(s) {
    s = String(s);
    ESC_RE.lastIndex = 0;
    return ESC_RE.test(s) ? s.replace(ESC_RE, (c) => ESC[c]) : s;
  }
  const TX_LABEL = { idle: "idle", in_transaction: "in transaction", failed: "failed transaction" };

  // The statement line with a caret under a 1-based character position, as
  // psql prints it under an error or a warning.
  function renderCaret(st, position) {
    const chars = Array.from(st.sql);
    const before = chars.slice(0, position - 1).join("");
    const lineNo = before.split("\n").length;
    const lineStart = before.lastIndexOf("\n") + 1;
    const lines = st.sql.split("\n");
    const line = lines[lineNo - 1] || "";
    const col = Array.from(before.slice(lineStart)).length;
    const prefix = "LINE " + (st.line + lineNo - 1) + ": ";
    return '<pre class="con-caret">' + esc(prefix + line) + "\n" + " ".repeat(prefix.length + col) + "^</pre>";
  }

  function detailAndHint(m) {
    let out = "";
    if (m.detail) out += "<div><strong>DETAIL:</strong>  " + esc(m.detail) + "</div>";
    if (m.hint) out += "<div><strong>HINT:</strong>  " + esc(m.hint) + "</div>";
    return out;
  }

  // psql's error block: severity, message, the statement line with a caret
  // under the position, DETAIL and HINT.
  function renderError(st) {
    const e = st.error;
    let out = '<div class="con-error"><div><strong>' + esc(e.severity || "ERROR") + ":</strong>  " + esc(e.message) +
      (e.sqlstate ? ' <span class="con-sqlstate">SQLSTATE ' + esc(e.sqlstate) + "</span>" : "") + "</div>";
    if (e.position) out += renderCaret(st, e.position);
    return out + detailAndHint(e) + "</div>";
  }

  // A NOTICE or WARNING as psql prints it: no CONTEXT (psql shows it for
  // errors only).
  function renderNotice(n, st) {
    let out = '<div class="con-notice"><div>' + esc(n.severity) + ":  " + esc(n.message) + "</div>";
    if (n.position) out += renderCaret(st, n.position);
    return out + detailAndHint(n) + "</div>";
  }

  // NULL shows as the session's `\pset null` string when set, else as ∅.
  function cell(v, nullDisplay) {
    if (v !== null) return "<td>" + esc(v) + "</td>";
    return '<td class="con-null" title="NULL">' + (nullDisplay ? esc(nullDisplay) : "∅") + "</td>";
  }

  // A meta-command's table as psql prints it: title, table, footers (and
  // psql's "(N rows)" where it prints one), then the further tables of the
  // same command (`\d lab.*`).
  function renderMeta(st, expanded) {
    if (st.unexpanded) expanded = false;
    let out = '<div class="con-title">' + esc(st.title) + "</div>" + renderTable(st, expanded);
    const foot = (st.footers || []).slice();
    if (st.count_footer && !foot.length && (!expanded || !st.rows.length)) foot.push(rowCount(st.total_rows));
    if (foot.length) out += '<pre class="con-text">' + esc(foot.join("\n")) + "</pre>";
    for (const m of st.more || []) out += m.title ? renderMeta(m, expanded) : "";
    return out;
  }

  // The whole table as one string: 1,000 rows x 20 columns stays fast.
  function renderTable(st, expanded, label) {
    const cols = st.columns;
    if (!cols.length) return "";
    const parts = [];
    if (expanded) {
      parts.push('<div class="con-expanded">');
      st.rows.forEach((row, i) => {
        parts.push('<table class="con-table"><caption>-[ RECORD ' + (i + 1) + " ]-</caption>");
        cols.forEach((c, j) => parts.push('<tr><th scope="row">' + esc(c.name) + "</th>" + cell(row[j], st.null_display) + "</tr>"));
        parts.push("</table>");
      });
      parts.push("</div>");
      return parts.join("");
    }
    // A named region the keyboard can scroll; header cells a reader follows.
    const name = "Rows of " + (label || st.title || st.sql || "the result").replace(/\s+/g, " ").slice(0, 80);
    parts.push('<div class="con-table-wrap" tabindex="0" role="region" aria-label="' + esc(name) + '"><table class="con-table"><thead><tr>');
    for (const c of cols) parts.push('<th scope="col" title="' + esc(c.type) + '">' + esc(c.name) + '<span class="con-type">' + esc(c.type) + "</span></th>");
    parts.push("</tr></thead><tbody>");
    for (const row of st.rows) {
      parts.push("<tr>");
      for (let j = 0; j < row.length; j++) parts.push(cell(row[j], st.null_display));
      parts.push("</tr>");
    }
    parts.push("</tbody></table></div>");
    return parts.join("");
  }

  // One line for the live region: each statement's error, or its command tag
  // and row count (the last three statements of a long script).
  function summary(res) {
    const said = res.statements.map((st) => {
      if (st.error) return (st.error.severity || "ERROR") + ": " + st.error.message;
      const rows = st.columns.length && !st.title ? ", " + rowCount(st.total_rows).slice(1, -1) : "";
      return (st.command_tag || st.title || st.kind) + rows;
    });
    const shown = said.length > 3 ? ["" + said.length + " statements", ...said.slice(-3)] : said;
    return shown.join("; ") || "nothing to run";
  }

  function rowCount(n) { return "(" + n + (n === 1 ? " row)" : " rows)"); }

  function renderStatement(st, i, res) {
    const parts = ['<section class="con-stmt' + (st.error ? " con-failed" : "") + '" data-index="' + i + '">'];
    parts.push('<div class="con-stmt-head"><code class="con-stmt-sql">' + esc(st.sql.length > 160 ? st.sql.slice(0, 160) + "…" : st.sql) + "</code>");
    if (st.columns.length) {
      parts.push('<span class="con-copy"><button type="button" data-copy="csv">CSV</button><button type="button" data-copy="md">Markdown</button></span>');
    }
    parts.push("</div>");
    if (st.messages) {
      // Under \set VERBOSITY or SHOW_CONTEXT: psql's own text of them.
      parts.push('<pre class="con-text con-messages' + (st.error ? " con-error" : "") + '">' + esc(st.messages) + "</pre>");
    } else {
      for (const n of st.notices || []) parts.push(renderNotice(n, st));
      if (st.error) parts.push(renderError(st));
    }
    if (st.text && !st.columns.length) parts.push('<pre class="con-text">' + esc(st.text) + "</pre>");
    // What psql writes on standard error without failing (\warn, an \if it cannot read).
    if (st.stderr) parts.push('<pre class="con-text con-stderr">' + esc(st.stderr) + "</pre>");
    // Under \t, \a or \pset options: psql's own text, as the server printed it.
    if (st.printed !== undefined && st.printed !== null) parts.push('<pre class="con-text con-printed">' + esc(st.printed) + "</pre>");
    else if (st.title) parts.push(renderMeta(st, res.expanded));
    else parts.push(renderTable(st, res.expanded));
    if (st.plan_html) parts.push('<div class="con-plan">' + st.plan_html + "</div>");
    const foot = [];
    if (st.columns.length && !st.error && !st.title && st.printed == null) {
      foot.push(st.truncated ? "showing " + st.rows.length.toLocaleString("en") + " of " + st.total_rows.toLocaleString("en") + " rows"
        : rowCount(st.total_rows));
    }
    if (st.values_truncated) foot.push("long values cut");
    // "Show all": the server kept the whole result (GET .../rows).
    if (st.full_kept && res.run_id) foot.push('<button type="button" class="con-show-all" data-show-all>Show all</button>');
    if (st.command_tag && st.kind !== "meta" && st.printed == null) foot.push('<span class="con-tag">' + esc(st.command_tag) + "</span>");
    if (st.kind !== "meta") foot.push((res.timing ? "Time: " : "") + st.elapsed_ms.toFixed(3) + " ms");
    if (foot.length) parts.push('<div class="con-foot">' + foot.join(' <span class="con-sep">·</span> ') + "</div>");
    // psql prints a statement's notifications after its result.
    for (const n of st.notifications || []) parts.push('<div class="con-notify">' + esc(n) + "</div>");
    if (st.notifications_dropped) parts.push('<div class="con-notify con-notify-dropped">… and ' + st.notifications_dropped.toLocaleString("en") + " more notifications not shown</div>");
    parts.push("</section>");
    return parts.join("");
  }

  function toCsv(st) {
    const q = (v) => (v === null ? "" : /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v);
    return [st.columns.map((c) => q(c.name)).join(",")].concat(st.rows.map((r) => r.map(q).join(","))).join("\n") + "\n";
  }
  function toMarkdown(st) {
    const q = (v) => (v === null ? "NULL" : v.replace(/\|/g, "\\|").replace(/\n/g, "<br>"));
    const head = "| " + st.columns.map((c) => q(c.name)).join(" | ") + " |";
    const sep = "| " + st.columns.map(() => "---").join(" | ") + " |";
    return [head, sep].concat(st.rows.map((r) => "| " + r.map(q).join(" | ") + " |")).join("\n") + "\n";
  }
  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (_) {
      const ta = document.createElement("textarea");
      ta.value = text; document.body.appendChild(ta); ta.select();
      document.execCommand("copy"); ta.remove(); button.textContent = "Copied";
    }
    setTimeout(() => { button.textContent = button.dataset.copy === "csv" ? "CSV" : "Markdown"; }, 1200);
  }

  function Pane(host, name, closable) {
    const el = document.createElement("div");
    el.className = "con-pane";
    el.innerHTML =
      '<div class="con-bar"><strong class="con-name">' + esc(name) + '</strong>' +
      '<span class="con-db" title="Current database (\\c DBNAME changes it)" hidden><span class="sr-only">database </span><span aria-hidden="true">db </span><span class="con-db-name"></span></span>' +
      '<span class="con-badge" data-tx="idle">idle</span><span class="con-status"></span>' +
      '<span class="con-actions">' +
      '<button type="button" class="con-run" title="Run all (Ctrl+Enter)">Run</button>' +
      '<button type="button" class="con-run-part" title="Run selection or statement under the cursor (Shift+Enter)">Run statement</button>' +
      '<button type="button" class="con-cancel" title="Cancel (Esc)" disabled>Cancel</button>' +
      '<button type="button" class="con-hist" title="Search history (Ctrl+R)">History</button>' +
      '<select class="con-timeout" title="Statement timeout for this pane\'s runs" aria-label="Statement timeout">' +
      '<option value="">timeout 30 s</option><option value="60">60 s</option><option value="120">120 s</option><option value="300">300 s</option></select>' +
      (closable ? '<button type="button" class="con-close" title="Close this session" aria-label="Close session ' + esc(name) + '">×</button>' : "") +
      "</span></div>" +
      '<div class="con-search" hidden><input type="search" placeholder="Search your history…" aria-label="Search your history"><ul></ul></div>' +
      '<div class="con-editor" role="group" aria-label="SQL editor ' + esc(name) + '" aria-describedby="con-keys-' + esc(name) + '"></div>' +
      '<p class="kbd-hint" id="con-keys-' + esc(name) + '">Tab indents here: press Escape then Tab to leave the editor (Shift+Tab goes back at once).</p>' +
      '<div class="con-results" role="region" aria-label="Results ' + esc(name) + '"></div>' +
      // What a screen reader hears after each run: tag, row count or error.
      '<div class="sr-only con-announce" role="status" aria-live="polite" data-announce></div>';
    host.appendChild(el);
    const badge = el.querySelector(".con-badge");
    const status = el.querySelector(".con-status");
    const results = el.querySelector(".con-results");
    const announce = el.querySelector("[data-announce]");
    const cancelBtn = el.querySelector(".con-cancel");
    const search = el.querySelector(".con-search");
    const searchInput = search.querySelector("input");
    const searchList = search.querySelector("ul");
    let last = null;
    let busy = false;

    const pane = { name, el, run, setTx, setDb, editor: null, closed: false };
    const editor = pglab.Editor(el.querySelector(".con-editor"), {
      placeholder: "-- " + name + ": type SQL, Ctrl+Enter to run",
      label: "SQL editor " + name,
      session: name,
      onRun: (sql) => run(sql, null),
      onRunPart: runPart,
      onCancel: cancel,
      onSearch: openSearch,
    });
    pane.editor = editor;
    pglab.leaveOnEscapeTab(el.querySelector(".con-editor"));

    function setTx(tx) {
      badge.dataset.tx = tx;
      badge.textContent = TX_LABEL[tx] || tx;
    }
    function setDb(db) {
      if (!db) return;
      el.querySelector(".con-db-name").textContent = db;
      el.querySelector(".con-db").hidden = false;
    }
    function setBusy(on, text) {
      busy = on;
      el.classList.toggle("con-busy", on);
      cancelBtn.disabled = !on;
      status.textContent = text || "";
    }
    function render(res) {
      last = res;
      setTx(res.transaction);
      setDb(res.database);
      const parts = res.statements.map((st, i) => renderStatement(st, i, res));
      if (res.failed_statement !== null && res.failed_statement !== undefined) {
        const st = res.statements[res.failed_statement];
        parts.push('<div class="con-stopped">Statement ' + (res.failed_statement + 1) + " (line " + st.line + ") failed" +
          (res.skipped ? "; the " + res.skipped + " statement" + (res.skipped > 1 ? "s" : "") + " after it did not run" : "") + ".</div>");
      }
      if (res.quit) parts.push('<div class="con-stopped">\\q: the script ends here' + (res.skipped ? "; the " + res.skipped + " statement" + (res.skipped > 1 ? "s" : "") + " after it did not run" : "") + ".</div>");
      if (res.transaction === "failed") parts.push('<div class="con-stopped">The transaction failed: commands are ignored until ROLLBACK.</div>');
      results.innerHTML = parts.join("");
      announce.textContent = name + ": " + summary(res);
    }
    // Shift+Enter and "Run statement": the selection, or the statement under
    // the cursor as the server's splitter cuts it (POST /api/sql/statement).
    async function runPart(sel) {
      if (busy) return;
      if (sel.from !== sel.to) { run(sel.text, null, null, sel.from); return; }
      const text = editor.value;
      if (!text.trim()) return;
      try {
        const found = await pglab.api("POST", "/api/sql/statement", { sql: text, cursor: sel.from });
        if (found.statement) run(found.statement.text, null, null, found.statement.from);
      } catch (e) {
        results.innerHTML = '<div class="con-error">' + esc(e.message) + "</div>";
        announce.textContent = name + ": error: " + e.message;
      }
    }
    // base: where `sql` starts in the editor's text (UTF-16 units), when known.
    async function run(sql, exercise, timeout, base) {
      if (!sql.trim() || busy) return;
      editor.pushHistory(sql.trim());
      setBusy(true, "running…");
      document.dispatchEvent(new CustomEvent("pglab:sql-start", { detail: { session: name } }));
      const started = performance.now();
      try {
        const chosen = +el.querySelector(".con-timeout").value || null;
        let res = await pglab.api("POST", "/api/sql", { session: name, sql, exercise: exercise || null, timeout_s: timeout || chosen });
        while (res.status === "running") {
          const p = res.progress || {};
          const secs = ((performance.now() - started) / 1000).toFixed(1);
          if (p.watch) {
            // \watch: its latest result, live, until the learner stops it.
            setBusy(true, "\\watch: run " + p.watch.runs + " · " + secs + " s · Esc or Cancel stops it");
            const live = { run_id: null, statements: [p.watch.latest], expanded: !!p.watch.latest.expanded, timing: false };
            results.innerHTML = '<div class="con-watch-live" aria-live="off">' + renderStatement(p.watch.latest, 0, live) + "</div>";
          } else {
            setBusy(true, (p.waiting ? p.waiting.message : "running statement " + ((p.statement_index || 0) + 1) + " of " + (p.statements || 1)) + " · " + secs + " s");
          }
          res = await pglab.api("GET", "/api/runs/" + encodeURIComponent(res.run_id) + "?wait_ms=1500");
        }
        render(res);
        markError(res, sql, base);
        // Progress badges, the editor's schema, notifications and other listeners refresh after a run.
        const schemaChanged = !pglab.mayChangeSchema || pglab.mayChangeSchema(sql);
        document.dispatchEvent(new CustomEvent("pglab:sql-done", { detail: { session: name, exercise: exercise || null, schemaChanged, listening: !!res.listening } }));
      } catch (e) {
        results.innerHTML = '<div class="con-error">' + esc(e.message) + "</div>";
        announce.textContent = name + ": error: " + e.message;
      } finally {
        setBusy(false);
      }
    }
    // The failed statement's error position, marked in the editor: the run's
    // script is found in the editor's text, the statement by its line in it.
    function markError(res, sql, base) {
      if (!editor.markError) return;
      const st = res.failed_statement !== null && res.failed_statement !== undefined ? res.statements[res.failed_statement] : null;
      if (!st || !st.error || !st.error.position) { editor.markError(null); return; }
      const text = editor.value;
      if (base === undefined || base === null || text.slice(base, base + sql.length) !== sql) base = text.indexOf(sql);
      if (base < 0) return;
      let lineStart = base;
      for (let i = 1; i < st.line && lineStart >= 0; i++) lineStart = text.indexOf("\n", lineStart) + 1;
      const at = text.indexOf(st.sql, Math.max(base, lineStart - 1));
      if (at < 0) return;
      editor.markError(at + Array.from(st.sql).slice(0, st.error.position - 1).join("").length);
    }
    async function cancel() {
      if (!busy) return;
      status.textContent = "cancelling…";
      try { await pglab.api("POST", "/api/sessions/" + encodeURIComponent(name) + "/cancel"); } catch (_) { /* shown by the run */ }
    }
    let searchTimer = null;
    async function fillSearch() {
      const q = searchInput.value;
      try {
        const h = await pglab.api("GET", "/api/history?limit=30&q=" + encodeURIComponent(q));
        searchList.innerHTML = h.entries.map((e, i) => '<li data-i="' + i + '"><code>' + esc(e.sql.slice(0, 300)) + "</code></li>").join("") ||
          '<li class="muted">no match</li>';
        searchList._entries = h.entries;
      } catch (e) { searchList.innerHTML = '<li class="muted">' + esc(e.message) + "</li>"; }
    }
    function openSearch() {
      search.hidden = !search.hidden;
      if (!search.hidden) { searchInput.focus(); fillSearch(); }
    }
    searchInput.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(fillSearch, 150); });
    searchInput.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { search.hidden = true; editor.focus(); }
      if (e.key === "Enter") { const first = searchList.querySelector("li[data-i]"); if (first) first.click(); }
    });
    searchList.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-i]");
      if (!li) return;
      editor.setValue(searchList._entries[+li.dataset.i].sql);
      search.hidden = true;
      editor.focus();
    });
    el.querySelector(".con-run").addEventListener("click", () => run(editor.value, null));
    el.querySelector(".con-run-part").addEventListener("click", () => runPart(editor.selection()));
    cancelBtn.addEventListener("click", cancel);
    el.querySelector(".con-hist").addEventListener("click", openSearch);
    const closeBtn = el.querySelector(".con-close");
    if (closeBtn) closeBtn.addEventListener("click", () => { closeSession(name); pane.closed = true; el.remove(); });
    // The whole of a cut result, a page at a time, with its progress; then
    // the statement is drawn again with every row, values uncut.
    async function showAll(b) {
      const section = b.closest(".con-stmt");
      const i = +section.dataset.index;
      const st = last.statements[i];
      const base = "/api/runs/" + encodeURIComponent(last.run_id) + "/statements/" + i + "/rows?limit=5000&offset=";
      const rows = [];
      b.disabled = true;
      try {
        let offset = 0;
        for (;;) {
          b.textContent = "Loading " + rows.length.toLocaleString("en") + " of " + st.total_rows.toLocaleString("en") + " rows…";
          const page = await pglab.api("GET", base + offset);
          for (const r of page.rows) rows.push(r);
          if (page.next_offset === null || page.next_offset === undefined) break;
          offset = page.next_offset;
        }
      } catch (e) {
        b.disabled = false;
        b.textContent = "Show all";
        b.insertAdjacentHTML("afterend", ' <span class="con-show-all-error" role="alert">' + esc(e.message) + "</span>");
        return;
      }
      Object.assign(st, { rows, truncated: false, values_truncated: false, full_kept: false });
      const tmp = document.createElement("div");
      tmp.innerHTML = renderStatement(st, i, last);
      section.replaceWith(tmp.firstElementChild);
      announce.textContent = name + ": showing all " + rows.length.toLocaleString("en") + " rows";
    }
    results.addEventListener("click", (e) => {
      const all = e.target.closest("button[data-show-all]");
      if (all && last) { showAll(all); return; }
      const b = e.target.closest("button[data-copy]");
      if (!b || !last) return;
      const st = last.statements[+b.closest(".con-stmt").dataset.index];
      copyText(b.dataset.copy === "csv" ? toCsv(st) : toMarkdown(st), b);
    });
    if (pglab.notifications) pglab.notifications.attach(pane);
    panes.push(pane);
    return pane;
  }

  function closeSession(name, onUnload) {
    const url = "/api/sessions/" + encodeURIComponent(name) + "/close";
    if (onUnload) {
      // keepalive lets the request outlive the page and, unlike sendBeacon,
      // carries the CSRF header.
      try {
        fetch(url, { method: "POST", keepalive: true, credentials: "same-origin", headers: { "X-CSRF-Token": pglab.csrfToken() } });
      } catch (_) {
        if (navigator.sendBeacon) navigator.sendBeacon(url);
      }
      return;
    }
    pglab.api("POST", url).catch(() => {});
  }

  async function loadHistory() {
    try {
      const h = await pglab.api("GET", "/api/history?limit=200");
      const list = h.entries.map((e) => e.sql);
      for (const p of panes) p.editor.setHistory(list.slice());
    } catch (_) { /* history is a convenience */ }
  }

  async function refreshSessions() {
    try {
      const s = await pglab.api("GET", "/api/sessions");
      for (const info of s.sessions) {
        const p = panes.find((x) => x.name === info.name && !x.closed);
        if (p) { p.setTx(info.transaction); p.setDb(info.database); }
      }
    } catch (_) { /* offline for a moment */ }
  }

  function mount(host) {
    const names = (host.dataset.sessions || "T1").split(/[\s,]+/).filter(Boolean);
    const full = host.hasAttribute("data-full");
    host.classList.add("con-host");
    const grid = document.createElement("div");
    grid.className = "con-grid" + (full ? " con-full" : "");
    host.appendChild(grid);
    names.forEach((n) => Pane(grid, n, false));
    if (full) {
      const add = document.createElement("button");
      add.type = "button";
      add.className = "con-add";
      add.textContent = "+ session";
      add.title = "Open another session (its own connection)";
      add.addEventListener("click", () => {
        let i = 1;
        while (panes.some((p) => p.name === "T" + i && !p.closed)) i++;
        Pane(grid, "T" + i, true).editor.focus();
      });
      host.appendChild(add);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-console]").forEach(mount);
    if (!panes.length) return;
    // The editors take input from here on (benches/editor.rs measures it).
    performance.mark("pglab-console-ready");
    loadHistory();
    refreshSessions();
    // Listing the sessions keeps them alive on the server while the page lives.
    setInterval(refreshSessions, 60000);
    window.addEventListener("pagehide", () => {
      for (const p of panes) if (!p.closed) closeSession(p.name, true);
    });
  });

  // A lesson's Run button: put the block in the first pane's editor and run it.
  document.addEventListener("pglab:run-sql", (e) => {
    const d = e.detail || {};
    const pane = panes.find((p) => !p.closed);
    if (!pane || !d.sql) return;
    pane.editor.setValue(d.sql);
    pane.el.scrollIntoView({ block: "nearest", behavior: pglab.scrollBehavior() });
    pane.run(d.sql, d.exercise || null);
  });

  pglab.console = { panes, renderStatement, toCsv, toMarkdown };
})();
