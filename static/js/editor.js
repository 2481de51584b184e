// pglab's editor (the console's panes, the lessons' docked pane, the compose
// file): CodeMirror 6 (static/js/codemirror.js, bundled from npm by
// `npm run build`) when the bundle loaded, else a textarea over a
// highlighted <pre> with a line-number gutter and a note saying what is
// missing. Both have the console's keys and the same API.
//   const ed = pglab.Editor(parent, {language: "sql" | "yaml", label, placeholder, session,
//                                    onRun(text), onRunPart({from, to, text}), onCancel, onSearch});
// `session` (default T1) is the console session whose schema completes.
//   ed.value / ed.setValue(text) / ed.focus() / ed.selection() / ed.setHistory([...newest first])
//   ed.markError(offset, length) / ed.markLine(n)
// Keys: Ctrl/Cmd+Enter runs all; Shift+Enter hands the selection (or the
// cursor) to onRunPart, which asks the server's splitter for the statement
// under the cursor; Up/Down at the first/last line walk history; Ctrl+R
// searches history; Escape cancels; Tab indents. With CodeMirror also:
// completion from the learner's schema, Ctrl+F search and replace, Ctrl+/
// comment toggle, bracket matching, the page's light and dark themes.
(function () {
  const pglab = (window.pglab = window.pglab || {});

  const KEYWORDS = new Set((
    "abort add all alter analyze and any array as asc begin between by cascade case cast check " +
    "checkpoint cluster collate column comment commit concurrently constraint copy create cross " +
    "current_date current_timestamp current_user database deallocate declare default deferrable " +
    "delete desc distinct do drop else end except exists explain false fetch filter for foreign " +
    "from full function grant group having if ilike in index inner insert intersect interval into " +
    "is isolation join key language lateral left level like limit listen lock materialized not " +
    "notify null nulls offset on only or order outer over partition policy prepare primary " +
    "procedure read recursive references refresh release rename repeatable replace reset returning " +
    "returns revoke right role rollback row rows savepoint schema select sequence serializable " +
    "session set share show similar some start table temp temporary then to transaction trigger " +
    "true truncate type union unique unlogged update using vacuum values verbose view when where " +
    "window with work analyse buffers format costs timing committed uncommitted nowait skip locked " +
    "extension no action restrict enable disable atomic generated always identity stored"
  ).split(" "));

  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // One regex pass: comments, strings, dollar quotes, identifiers, numbers.
  const TOKEN = /(--[^\n]*)|(\/\*[\s\S]*?(?:\*\/|$))|((?:[eE])?'(?:[^'\\]|''|\\[\s\S])*(?:'|$))|(\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?(?:\$\5\$|$))|("(?:[^"]|"")*(?:"|$))|(^[ \t]*\\[^\n]*)|(\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_$]*)/gm;

  pglab.highlightSql = function (text) {
    let out = "";
    let last = 0;
    TOKEN.lastIndex = 0;
    let m;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m[0] === "") { TOKEN.lastIndex++; continue; }
      out += esc(text.slice(last, m.index));
      const t = esc(m[0]);
      if (m[1] || m[2]) out += '<span class="tok-comment">' + t + "</span>";
      else if (m[3] || m[4]) out += '<span class="tok-string">' + t + "</span>";
      else if (m[6]) out += '<span class="tok-ident">' + t + "</span>";
      else if (m[7]) out += '<span class="tok-meta">' + t + "</span>";
      else if (m[8]) out += '<span class="tok-number">' + t + "</span>";
      else if (m[9] && KEYWORDS.has(m[9].toLowerCase())) out += '<span class="tok-keyword">' + t + "</span>";
      else out += t;
      last = m.index + m[0].length;
    }
    return out + esc(text.slice(last));
  };

  // The learner's schema for completion, as each console session sees it
  // (its database follows \c): fetched on page load and after each run that
  // may change it, once per session that has an editor.
  const editors = [];
  const schemaInfo = new Map();
  // Words of statements that may change the schema (a DO block or CALL may
  // run DDL, a ROLLBACK undo it, \i run a lab file, \c switch databases),
  // anywhere in the script.
  const SCHEMA_CHANGING = /(^|[^a-z0-9_])(create|alter|drop|truncate|comment|grant|revoke|import|do|call|into|rollback|abort|restore|\\i|\\ir|\\include|\\c|\\connect)([^a-z0-9_]|$)/i;
  pglab.refreshSchema = async function (only) {
    if (!window.pglabCM || !pglab.api) return;
    const sessions = new Set(only ? [only] : editors.map((ed) => ed.session));
    await Promise.all([...sessions].map(async (session) => {
      try {
        const info = await pglab.api("GET", "/api/sandbox/schema?session=" + encodeURIComponent(session));
        schemaInfo.set(session, info);
        // Completion from the learner's schema works from here on.
        if (!performance.getEntriesByName("pglab-schema-ready").length) performance.mark("pglab-schema-ready");
        for (const ed of editors) if (ed.session === session) ed.setSchema(info);
      } catch (_) { /* completion keeps the schema it had */ }
    }));
  };
  pglab.mayChangeSchema = (sql) => SCHEMA_CHANGING.test(sql || "");
  document.addEventListener("pglab:sql-done", (e) => {
    if (!e.detail || e.detail.schemaChanged !== false) pglab.refreshSchema();
  });
  document.addEventListener("pglab:schema-changed", () => pglab.refreshSchema());
  // A sandbox that (re)starts, is reset or restored: read its schema again.
  let sandboxState = null;
  document.addEventListener("pglab:sandbox-state", (e) => {
    const now = e.detail && e.detail.state;
    if (now === "running" && sandboxState !== null && sandboxState !== "running") pglab.refreshSchema();
    sandboxState = now || null;
  });

  function codeMirrorEditor(parent, opts) {
    const root = document.createElement("div");
    root.className = "sqled sqled-cm";
    parent.appendChild(root);
    let history = opts.history || [];
    let hIndex = -1;
    let draft = "";
    let walking = false;
    let cm = null;
    // Up walks to older entries (the cursor then at the start, so Up again
    // goes on), Down to newer ones and back to the draft (cursor at the end).
    function walkHistory(step) {
      if (!history.length) return false;
      if (hIndex === -1) draft = cm.value;
      const next = hIndex + step;
      if (next < -1 || next >= history.length) return false;
      hIndex = next;
      walking = true;
      try { cm.setValue(hIndex === -1 ? draft : history[hIndex], step > 0); } finally { walking = false; }
      return true;
    }
    cm = window.pglabCM.create(root, {
      language: opts.language || "sql",
      placeholder: opts.placeholder === undefined ? "select 1;" : opts.placeholder,
      label: opts.label,
      onRun: opts.onRun ? (text) => opts.onRun(text) : null,
      onRunPart: opts.onRunPart ? () => opts.onRunPart(cm.selection()) : null,
      onCancel: opts.onCancel || null,
      onSearch: opts.onSearch || null,
      onHistory: opts.onRun ? walkHistory : null,
      onChange: () => { if (!walking) hIndex = -1; },
    });
    const api = {
      root,
      view: cm.view,
      textarea: null,
      get value() { return cm.value; },
      setValue(text) { cm.setValue(text); },
      focus() { cm.focus(); },
      setHistory(list) { history = list; hIndex = -1; },
      pushHistory(sql) { if (history[0] !== sql) history.unshift(sql); hIndex = -1; },
      selection: () => cm.selection(),
      setSchema: (info) => cm.setSchema(info),
      // offset: 0-based UTF-16 offset in the editor's text, or null.
      markError: (offset, length) => cm.markCaret(offset, length),
      markLine: (number) => cm.markLine(number),
    };
    if ((opts.language || "sql") === "sql") {
      api.session = opts.session || "T1";
      editors.push(api);
      if (schemaInfo.has(api.session)) api.setSchema(schemaInfo.get(api.session));
      else pglab.refreshSchema(api.session);
    }
    return api;
  }

  pglab.Editor = function (parent, opts) {
    opts = opts || {};
    if (window.pglabCM) return codeMirrorEditor(parent, opts);
    if (!document.querySelector(".sqled-missing")) {
      const note = document.createElement("p");
      note.className = "sqled-missing muted";
      note.textContent = "The editor bundle (static/js/codemirror.js) is missing, so this is a plain editor without " +
        "completion, search and bracket matching: run `npm ci && npm run build` in pglab's folder " +
        "(the build and scripts/test.sh do it).";
      parent.appendChild(note);
    }
    const root = document.createElement("div");
    root.className = "sqled";
    root.innerHTML =
      '<div class="sqled-gutter" aria-hidden="true"></div>' +
      '<div class="sqled-body"><pre class="sqled-hl" aria-hidden="true"></pre>' +
      '<textarea class="sqled-input" spellcheck="false" autocapitalize="off" autocomplete="off" ' +
      'autocorrect="off" aria-label="' + esc(opts.label || "SQL editor") + '" placeholder="' +
      esc(opts.placeholder === undefined ? "select 1;" : opts.placeholder) + '"></textarea></div>';
    parent.appendChild(root);
    const gutter = root.querySelector(".sqled-gutter");
    const hl = root.querySelector(".sqled-hl");
    const ta = root.querySelector(".sqled-input");
    const sqlMode = (opts.language || "sql") === "sql";
    let history = opts.history || [];
    let hIndex = -1;
    let draft = "";

    function render() {
      const text = ta.value;
      // A trailing newline needs a character after it to take up a line.
      hl.innerHTML = (sqlMode ? pglab.highlightSql(text) : esc(text)) + "\n ";
      const lines = text.split("\n").length;
      if (gutter.childElementCount !== lines) {
        let g = "";
        for (let i = 1; i <= lines; i++) g += "<div>" + i + "</div>";
        gutter.innerHTML = g;
      }
      const rows = Math.min(Math.max(lines, opts.minLines || 4), opts.maxLines || 24);
      root.style.setProperty("--sqled-rows", rows);
      syncScroll();
    }
    function syncScroll() {
      hl.scrollTop = ta.scrollTop;
      hl.scrollLeft = ta.scrollLeft;
      gutter.scrollTop = ta.scrollTop;
    }
    function selection() {
      return { from: ta.selectionStart, to: ta.selectionEnd, text: ta.value.slice(ta.selectionStart, ta.selectionEnd) };
    }
    function walkHistory(step) {
      if (!history.length) return false;
      if (hIndex === -1) draft = ta.value;
      const next = hIndex + step;
      if (next < -1 || next >= history.length) return false;
      hIndex = next;
      api.setValue(hIndex === -1 ? draft : history[hIndex]);
      return true;
    }

    ta.addEventListener("input", () => { hIndex = -1; render(); });
    ta.addEventListener("scroll", syncScroll);
    ta.addEventListener("keydown", (e) => {
      const mod = e.ctrlKey || e.metaKey;
      if (e.key === "Enter" && mod && opts.onRun) { e.preventDefault(); opts.onRun(ta.value); return; }
      if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); opts.onRunPart && opts.onRunPart(selection()); return; }
      if (e.key === "Escape") { opts.onCancel && opts.onCancel(); return; }
      if ((e.key === "r" || e.key === "R") && e.ctrlKey) { e.preventDefault(); opts.onSearch && opts.onSearch(); return; }
      if (e.key === "Tab" && !mod && !e.shiftKey) {
        e.preventDefault();
        const s = ta.selectionStart;
        ta.setRangeText("  ", s, ta.selectionEnd, "end");
        render();
        return;
      }
      if (!opts.onRun) return;
      if (e.key === "ArrowUp" && !e.shiftKey && !mod && ta.selectionStart === ta.selectionEnd &&
          ta.value.lastIndexOf("\n", ta.selectionStart - 1) === -1) {
        if (walkHistory(1)) { e.preventDefault(); ta.setSelectionRange(0, 0); }
        return;
      }
      if (e.key === "ArrowDown" && !e.shiftKey && !mod && ta.selectionStart === ta.selectionEnd &&
          ta.value.indexOf("\n", ta.selectionStart) === -1) {
        if (walkHistory(-1)) e.preventDefault();
      }
    });

    const api = {
      root,
      textarea: ta,
      get value() { return ta.value; },
      setValue(text) { ta.value = text; render(); ta.setSelectionRange(text.length, text.length); },
      focus() { ta.focus(); },
      setHistory(list) { history = list; hIndex = -1; },
      pushHistory(sql) { if (history[0] !== sql) history.unshift(sql); hIndex = -1; },
      selection,
      setSchema() {},
      markError(offset, length) {
        if (offset === null || offset === undefined || offset < 0 || offset >= ta.value.length) return;
        ta.focus();
        ta.setSelectionRange(offset, offset + Math.max(1, length || 1));
      },
      markLine(number) {
        const lines = ta.value.split("\n");
        if (!number || number > lines.length) return;
        const from = lines.slice(0, number - 1).reduce((n, l) => n + l.length + 1, 0);
        ta.focus();
        ta.setSelectionRange(from, from + lines[number - 1].length);
      },
    };
    render();
    return api;
  };
})();
