// The source of pglab's CodeMirror 6 bundle (static/js/codemirror.js, built by
// `npm run build` with esbuild from the npm packages in package-lock.json;
// never committed). It exposes window.pglabCM.create(parent, opts), which
// static/js/editor.js wraps in pglab's own editor API (the console's panes,
// the docked pane of lessons, the compose file editor).
//   opts: {language: "sql" | "yaml", doc, placeholder, label,
//          onRun(text), onRunPart(), onCancel(), onSearch(), onHistory(step) → bool, onChange()}
import { EditorState, Compartment, Prec, StateEffect, StateField } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  drawSelection, placeholder as placeholderExt, Decoration,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab, toggleComment } from "@codemirror/commands";
import { searchKeymap, highlightSelectionMatches, search } from "@codemirror/search";
import {
  autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap, completionStatus,
} from "@codemirror/autocomplete";
import {
  bracketMatching, syntaxHighlighting, HighlightStyle, indentOnInput, StreamLanguage,
} from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { sql, PostgreSQL } from "@codemirror/lang-sql";

// psql's meta-commands, offered after a backslash at the start of a line.
const META = [
  ["\\d", "describe a relation, or list relations"], ["\\dt", "list tables"], ["\\dv", "list views"],
  ["\\di", "list indexes"], ["\\ds", "list sequences"], ["\\df", "list functions"], ["\\dn", "list schemas"],
  ["\\du", "list roles"], ["\\dx", "list extensions"], ["\\l", "list databases"], ["\\x", "toggle expanded output"],
  ["\\timing", "toggle timing"], ["\\i", "run a lab file"], ["\\conninfo", "connection info"], ["\\set", "set a variable"],
  ["\\echo", "print text"], ["\\h", "SQL command help"], ["\\?", "meta-command help"], ["\\dp", "list privileges"],
  ["\\d+", "describe with details"], ["\\dt+", "list tables with sizes"], ["\\sf", "show a function's source"],
  ["\\c", "connect to another database"], ["\\pset", "set a printing option"],
];

// Token colours are the page's own classes (static/css/console.css), so the
// light and dark themes keep their checked contrast in the editor too.
const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.operatorKeyword, t.modifier, t.bool, t.null], class: "tok-keyword" },
  { tag: [t.string, t.special(t.string)], class: "tok-string" },
  { tag: [t.lineComment, t.blockComment, t.comment], class: "tok-comment" },
  { tag: [t.number, t.integer, t.float], class: "tok-number" },
  { tag: [t.processingInstruction, t.meta], class: "tok-meta" },
  { tag: [t.propertyName, t.definition(t.propertyName)], class: "tok-keyword" },
  { tag: t.special(t.name), class: "tok-ident" },
  { tag: t.typeName, class: "tok-number" },
]);

// A small YAML mode for the compose file: comments, keys, strings, numbers.
const yaml = StreamLanguage.define({
  name: "yaml",
  token(stream) {
    if (stream.eatSpace()) return null;
    if (stream.match(/^#.*/)) return "comment";
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/) || stream.match(/^'(?:[^']|'')*'?/)) return "string";
    if (stream.sol() || /^\s*(-\s+)?$/.test(stream.string.slice(0, stream.pos))) {
      if (stream.match(/^-(?=\s|$)/)) return null;
      if (stream.match(/^[^\s:#][^:#]*?(?=:(\s|$))/)) return "propertyName";
    }
    if (stream.match(/^-?\d+(\.\d+)?\b/)) return "number";
    if (stream.match(/^(true|false|null|yes|no)\b/)) return "keyword";
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: "#" } },
});

const caretEffect = StateEffect.define();
const caretMark = Decoration.mark({ class: "cm-pglab-caret" });
const caretLine = Decoration.line({ class: "cm-pglab-caret-line" });
// The error mark: a character (`{from}`) or a whole line (`{line}`), cleared
// by the next edit.
const caretField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (!e.is(caretEffect)) continue;
      if (e.value === null) deco = Decoration.none;
      else if (e.value.line) deco = Decoration.set([caretLine.range(tr.state.doc.line(e.value.line).from)]);
      else deco = Decoration.set([caretMark.range(e.value.from, e.value.from + e.value.length)]);
    }
    if (tr.docChanged && !tr.effects.some((e) => e.is(caretEffect))) deco = Decoration.none;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

function create(parent, opts) {
  const language = new Compartment();
  const theme = new Compartment();
  const isSql = (opts.language || "sql") === "sql";
  let schema = { schema: {}, default_schema: "public", functions: [], lab_files: [] };

  // Backslash commands, lab files after \i, and functions beside lang-sql's own.
  function pglabSource(ctx) {
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    let m = /^\s*\\(?:i|ir|include)\s+(\S*)$/.exec(before);
    if (m) {
      return {
        from: ctx.pos - m[1].length,
        options: (schema.lab_files || []).map((f) => ({ label: f, type: "text", detail: "lab file" })),
        validFor: /^\S*$/,
      };
    }
    m = /^\s*(\\[A-Za-z?+]*)$/.exec(before);
    if (m) {
      return { from: ctx.pos - m[1].length, options: META.map(([label, detail]) => ({ label, detail, type: "keyword" })), validFor: /^\\[A-Za-z?+]*$/ };
    }
    const w = ctx.matchBefore(/[A-Za-z_][A-Za-z0-9_]*$/);
    if (!w || /\.\s*$/.test(before.slice(0, before.length - w.text.length))) return null;
    if (!(schema.functions || []).length) return null;
    return { from: w.from, options: schema.functions, validFor: /^[A-Za-z0-9_]*$/ };
  }
  function languageExt() {
    if (!isSql) return yaml;
    const cfg = { dialect: PostgreSQL, schema: schema.schema, defaultSchema: schema.default_schema || "public", upperCaseKeywords: false };
    return [sql(cfg), PostgreSQL.language.data.of({ autocomplete: pglabSource })];
  }
  function darkTheme() {
    const d = document.documentElement.dataset.theme;
    if (d === "dark" || d === "light") return d === "dark";
    return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  }
  // CodeMirror's dark flag (its own defaults for dark backgrounds), and the
  // theme on the editor's element for styles and tests.
  function themeExt() {
    const dark = darkTheme();
    return [EditorView.theme({}, { dark }), EditorView.editorAttributes.of({ "data-theme": dark ? "dark" : "light" })];
  }
  const firstLine = (view) => {
    const s = view.state.selection.main;
    return s.empty && view.state.doc.lineAt(s.head).number === 1;
  };
  const lastLine = (view) => {
    const s = view.state.selection.main;
    return s.empty && view.state.doc.lineAt(s.head).number === view.state.doc.lines;
  };
  const run = (v) => { if (opts.onRun) opts.onRun(v.state.doc.toString()); return !!opts.onRun; };
  const consoleKeys = Prec.highest(keymap.of([
    { key: "Mod-Enter", run },
    { key: "Ctrl-Enter", run },
    { key: "Shift-Enter", run: () => { if (opts.onRunPart) opts.onRunPart(); return !!opts.onRunPart; } },
    // Cancel the run, and let the key go on (closing a panel or the
    // completion list, arming "Escape then Tab leaves the editor").
    { key: "Escape", run: (v) => { if (!completionStatus(v.state) && opts.onCancel) opts.onCancel(); return false; } },
    { key: "Ctrl-r", run: () => { if (opts.onSearch) opts.onSearch(); return !!opts.onSearch; } },
    { key: "ArrowUp", run: (v) => firstLine(v) && !completionStatus(v.state) && !!opts.onHistory && opts.onHistory(1) },
    { key: "ArrowDown", run: (v) => lastLine(v) && !completionStatus(v.state) && !!opts.onHistory && opts.onHistory(-1) },
    { key: "Mod-/", run: toggleComment },
  ]));
  const state = EditorState.create({
    doc: opts.doc || "",
    extensions: [
      consoleKeys,
      lineNumbers(), highlightActiveLineGutter(), history(), drawSelection(), indentOnInput(),
      syntaxHighlighting(highlight), bracketMatching(), closeBrackets(),
      isSql ? autocompletion({ activateOnTyping: true }) : [],
      highlightActiveLine(), highlightSelectionMatches(), search({ top: true }),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...completionKeymap, indentWithTab]),
      language.of(languageExt()), theme.of(themeExt()), caretField,
      placeholderExt(opts.placeholder || ""),
      // tabindex: the editable content counts as the scroller's focusable
      // content for checkers (axe's scrollable-region-focusable) too.
      EditorView.contentAttributes.of({ "aria-label": opts.label || "SQL editor", tabindex: "0" }),
      EditorView.updateListener.of((u) => { if (u.docChanged && opts.onChange) opts.onChange(u); }),
    ],
  });
  const view = new EditorView({ state, parent });
  // The page's theme switch (theme.js sets data-theme) and the system's.
  const retheme = () => view.dispatch({ effects: theme.reconfigure(themeExt()) });
  new MutationObserver(retheme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) {
    const mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) mq.addEventListener("change", retheme);
  }

  return {
    view,
    get value() { return view.state.doc.toString(); },
    // atStart: the cursor at the start (walking history up), else at the end.
    setValue(text, atStart) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: text },
        selection: { anchor: atStart ? 0 : text.length },
        scrollIntoView: true,
      });
    },
    selection() {
      const s = view.state.selection.main;
      return { from: s.from, to: s.to, text: view.state.sliceDoc(s.from, s.to) };
    },
    focus() { view.focus(); },
    setSchema(next) {
      schema = next;
      if (isSql) view.dispatch({ effects: language.reconfigure(languageExt()) });
    },
    // Marks `length` characters at offset (UTF-16 units of the document) and
    // puts the cursor there; null clears the mark.
    markCaret(offset, length) {
      const len = view.state.doc.length;
      if (offset === null || offset === undefined || offset < 0 || offset >= len) {
        view.dispatch({ effects: caretEffect.of(null) });
        return;
      }
      const n = Math.max(1, Math.min(length || 1, len - offset));
      view.dispatch({ effects: caretEffect.of({ from: offset, length: n }), selection: { anchor: offset }, scrollIntoView: true });
    },
    // Marks a whole line (1-based), e.g. where a refused compose file is wrong.
    markLine(number) {
      if (!number || number < 1 || number > view.state.doc.lines) {
        view.dispatch({ effects: caretEffect.of(null) });
        return;
      }
      const at = view.state.doc.line(number).from;
      view.dispatch({ effects: caretEffect.of({ line: number }), selection: { anchor: at }, scrollIntoView: true });
    },
  };
}

window.pglabCM = { create };
