// pglab's SQL editor: CodeMirror 6 (static/js/codemirror.js, bundled from npm
// by `npm run build`) when the bundle loaded, else a textarea over a
// highlighted <pre> with a line-number gutter and a note saying what is
// missing. Both have the console's keys and the same API.
//   const ed = pglab.Editor(parent, {onRun, onRunPart, onCancel, onSearch, history});
//   ed.value / ed.setValue(text) / ed.focus() / ed.setHistory([...newest first])
// Keys: Ctrl/Cmd+Enter runs all; Shift+Enter runs the selection or the
// statement under the cursor; Up/Down at the first/last line walk history;
// Ctrl+R searches history; Escape cancels; Tab indents.
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

  // Statement ranges [start, end) like the server's splitter (quotes, dollar
  // quotes, comments, parentheses), for "run the statement under the cursor".
  pglab.statementRanges = function (text) {
    const ranges = [];
    let start = 0, depth = 0, i = 0;
    const n = text.length;
    while (i < n) {
      const c = text[i], d = text[i + 1];
      if (c === "-" && d === "-") { while (i < n && text[i] !== "\n") i++; continue; }
      if (c === "/" && d === "*") {
        let level = 0;
        while (i < n) {
          if (text[i] === "/" && text[i + 1] === "*") { level++; i += 2; }
          else if (text[i] === "*" && text[i + 1] === "/") { level--; i += 2; if (!level) break; }
          else i++;
        }
        continue;
      }
      if (c === "'" || c === '"') {
        const bs = c === "'" && i > 0 && /[eE]/.test(text[i - 1]);
        i++;
        while (i < n) {
          if (bs && text[i] === "\\") { i += 2; continue; }
          if (text[i] === c) { if (text[i + 1] === c) { i += 2; continue; } i++; break; }
          i++;
        }
        continue;
      }
      if (c === "$") {
        const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 64));
        if (m && !(i > 0 && /[A-Za-z0-9_$]/.test(text[i - 1]))) {
          const close = text.indexOf(m[0], i + m[0].length);
          i = close < 0 ? n : close + m[0].length;
          continue;
        }
      }
      if (c === "(") depth++;
      else if (c === ")") depth = Math.max(0, depth - 1);
      else if (c === ";" && depth === 0) { ranges.push([start, i + 1]); start = i + 1; }
      else if (c === "\\" && /(^|\n)[ \t]*$/.test(text.slice(Math.max(0, i - 80), i))) {
        let e = text.indexOf("\n", i); if (e < 0) e = n;
        if (text.slice(start, i).trim()) ranges.push([start, i]);
        ranges.push([i, e]); start = e; i = e; continue;
      }
      i++;
    }
    if (text.slice(start).trim()) ranges.push([start, n]);
    return ranges.filter(([a, b]) => text.slice(a, b).replace(/;$/, "").trim());
  };

  // The learner's schema for completion, shared by every editor of the page:
  // fetched on page load and after each run that may change it.
  const editors = [];
  let schemaInfo = null;
  const SCHEMA_CHANGING = /^\s*(create|alter|drop|truncate|comment|grant|revoke|import|\\i|\\ir)\b/im;
  pglab.refreshSchema = async function () {
    if (!window.pglabCM || !pglab.api) return;
    try {
      schemaInfo = await pglab.api("GET", "/api/sandbox/schema");
      for (const ed of editors) ed.setSchema(schemaInfo);
    } catch (_) { /* completion keeps the schema it had */ }
  };
  pglab.mayChangeSchema = (sql) => SCHEMA_CHANGING.test(sql || "");
  document.addEventListener("pglab:sql-done", (e) => {
    if (!e.detail || e.detail.schemaChanged !== false) pglab.refreshSchema();
  });
  document.addEventListener("pglab:schema-changed", () => pglab.refreshSchema());

  function statementAt(text, from, to) {
    if (from !== to) return text.slice(from, to);
    const ranges = pglab.statementRanges(text);
    let pick = null;
    for (const r of ranges) {
      if (from >= r[0] && from <= r[1]) { pick = r; break; }
      if (r[1] <= from) pick = r;
    }
    return pick ? text.slice(pick[0], pick[1]) : text;
  }

  function codeMirrorEditor(parent, opts) {
    const root = document.createElement("div");
    root.className = "sqled sqled-cm";
    parent.appendChild(root);
    let history = opts.history || [];
    let hIndex = -1;
    let draft = "";
    let cm = null;
    function currentStatement() {
      const s = cm.selection();
      return statementAt(cm.value, s.from, s.to);
    }
    function walkHistory(step) {
      if (!history.length) return false;
      if (hIndex === -1) draft = cm.value;
      const next = hIndex + step;
      if (next < -1 || next >= history.length) return false;
      hIndex = next;
      cm.setValue(hIndex === -1 ? draft : history[hIndex]);
      return true;
    }
    let walking = false;
    cm = window.pglabCM.create(root, {
      placeholder: opts.placeholder || "select 1;",
      onRun: (text) => opts.onRun && opts.onRun(text),
      onRunPart: () => opts.onRunPart && opts.onRunPart(currentStatement()),
      onCancel: () => opts.onCancel && opts.onCancel(),
      onSearch: () => opts.onSearch && opts.onSearch(),
      onHistory: (step) => { walking = true; try { return walkHistory(step); } finally { walking = false; } },
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
      currentStatement,
      setSchema: (info) => cm.setSchema(info),
      // offset: 0-based character offset in the editor's text, or null.
      markError: (offset) => cm.markCaret(offset),
    };
    editors.push(api);
    if (schemaInfo) api.setSchema(schemaInfo);
    else if (editors.length === 1) pglab.refreshSchema();
    return api;
  }

  pglab.Editor = function (parent, opts) {
    opts = opts || {};
    if (window.pglabCM) return codeMirrorEditor(parent, opts);
    if (!document.querySelector(".sqled-missing")) {
      const note = document.createElement("p");
      note.className = "sqled-missing muted";
      note.textContent = "The CodeMirror editor bundle (static/js/codemirror.js) is missing, so this is a plain editor " +
        "without completion: run `npm ci && npm run build` in pglab's folder (scripts/test.sh and the build do it).";
      parent.appendChild(note);
    }
    const root = document.createElement("div");
    root.className = "sqled";
    root.innerHTML =
      '<div class="sqled-gutter" aria-hidden="true"></div>' +
      '<div class="sqled-body"><pre class="sqled-hl" aria-hidden="true"></pre>' +
      '<textarea class="sqled-input" spellcheck="false" autocapitalize="off" autocomplete="off" ' +
      'autocorrect="off" aria-label="SQL editor" placeholder="' + esc(opts.placeholder || "select 1;") + '"></textarea></div>';
    parent.appendChild(root);
    const gutter = root.querySelector(".sqled-gutter");
    const hl = root.querySelector(".sqled-hl");
    const ta = root.querySelector(".sqled-input");
    let history = opts.history || [];
    let hIndex = -1;
    let draft = "";

    function render() {
      const text = ta.value;
      // A trailing newline needs a character after it to take up a line.
      hl.innerHTML = pglab.highlightSql(text) + "\n ";
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
    function currentStatement() {
      if (ta.selectionStart !== ta.selectionEnd) return ta.value.slice(ta.selectionStart, ta.selectionEnd);
      const pos = ta.selectionStart;
      const ranges = pglab.statementRanges(ta.value);
      let pick = null;
      for (const r of ranges) {
        if (pos >= r[0] && pos <= r[1]) { pick = r; break; }
        if (r[1] <= pos) pick = r;
      }
      return pick ? ta.value.slice(pick[0], pick[1]) : ta.value;
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
      if (e.key === "Enter" && mod) { e.preventDefault(); opts.onRun && opts.onRun(ta.value); return; }
      if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); opts.onRunPart && opts.onRunPart(currentStatement()); return; }
      if (e.key === "Escape") { opts.onCancel && opts.onCancel(); return; }
      if ((e.key === "r" || e.key === "R") && e.ctrlKey) { e.preventDefault(); opts.onSearch && opts.onSearch(); return; }
      if (e.key === "Tab" && !mod && !e.shiftKey) {
        e.preventDefault();
        const s = ta.selectionStart;
        ta.setRangeText("  ", s, ta.selectionEnd, "end");
        render();
        return;
      }
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
      currentStatement,
      setSchema() {},
      markError(offset) {
        if (offset === null || offset < 0 || offset >= ta.value.length) return;
        ta.focus();
        ta.setSelectionRange(offset, offset + 1);
      },
    };
    render();
    return api;
  };
})();
