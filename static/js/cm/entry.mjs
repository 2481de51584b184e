// The source of pglab's CodeMirror 6 bundle (static/js/codemirror.js, built by
// `npm run build` with esbuild from the npm packages in package-lock.json;
// never committed). It exposes window.pglabCM.create(parent, opts), which
// static/js/editor.js wraps in the console's own editor API.
import { EditorState, Compartment, Prec } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  drawSelection, placeholder as placeholderExt, Decoration,
} from "@codemirror/view";
import { StateEffect, StateField } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap, indentWithTab, toggleComment } from "@codemirror/commands";
import { searchKeymap, highlightSelectionMatches, search } from "@codemirror/search";
import {
  autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap, completionStatus,
} from "@codemirror/autocomplete";
import { bracketMatching, syntaxHighlighting, defaultHighlightStyle, indentOnInput } from "@codemirror/language";
import { sql, PostgreSQL, schemaCompletionSource } from "@codemirror/lang-sql";

// psql's meta-commands, offered after a backslash at the start of a line.
const META = [
  ["\\d", "describe a relation, or list relations"], ["\\dt", "list tables"], ["\\dv", "list views"],
  ["\\di", "list indexes"], ["\\ds", "list sequences"], ["\\df", "list functions"], ["\\dn", "list schemas"],
  ["\\du", "list roles"], ["\\dx", "list extensions"], ["\\l", "list databases"], ["\\x", "toggle expanded output"],
  ["\\timing", "toggle timing"], ["\\i", "run a lab file"], ["\\conninfo", "connection info"], ["\\set", "set a variable"],
  ["\\echo", "print text"], ["\\h", "SQL command help"], ["\\?", "meta-command help"], ["\\dp", "list privileges"],
  ["\\d+", "describe with details"], ["\\dt+", "list tables with sizes"], ["\\sf", "show a function's source"],
];

const caretEffect = StateEffect.define();
const caretMark = Decoration.mark({ class: "cm-pglab-caret" });
const caretField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (e.is(caretEffect)) {
        deco = e.value === null ? Decoration.none : Decoration.set([caretMark.range(e.value, e.value + 1)]);
      }
    }
    if (tr.docChanged && !tr.effects.some((e) => e.is(caretEffect))) deco = Decoration.none;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

function create(parent, opts) {
  const language = new Compartment();
  const theme = new Compartment();
  let schema = { schema: {}, default_schema: "public", functions: [], lab_files: [] };

  function sqlConfig() {
    return { dialect: PostgreSQL, schema: schema.schema, defaultSchema: schema.default_schema || "public" };
  }
  // Backslash commands, lab files after \i, and functions beside lang-sql's own.
  function pglabSource(ctx) {
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    let m = /^\s*\\(?:i|ir|include)\s+(\S*)$/.exec(before);
    if (m) {
      return { from: ctx.pos - m[1].length, options: (schema.lab_files || []).map((f) => ({ label: f, type: "text", detail: "lab file" })) };
    }
    m = /^\s*(\\[A-Za-z?+]*)$/.exec(before);
    if (m) return { from: ctx.pos - m[1].length, options: META.map(([label, detail]) => ({ label, detail, type: "keyword" })), validFor: /^\\[A-Za-z?+]*$/ };
    const w = ctx.matchBefore(/[A-Za-z_][A-Za-z0-9_]*$/);
    if (!w || /\.\s*$/.test(before.slice(0, before.length - w.text.length))) return null;
    if (!(schema.functions || []).length) return null;
    return { from: w.from, options: schema.functions, validFor: /^[A-Za-z0-9_]*$/ };
  }
  function languageExt() {
    const cfg = sqlConfig();
    return [sql(cfg), PostgreSQL.language.data.of({ autocomplete: pglabSource })];
  }
  function darkTheme() {
    const t = document.documentElement.dataset.theme;
    if (t) return t === "dark";
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function themeExt() {
    return EditorView.theme({}, { dark: darkTheme() });
  }
  const firstLine = (view) => {
    const s = view.state.selection.main;
    return s.empty && view.state.doc.lineAt(s.head).number === 1;
  };
  const lastLine = (view) => {
    const s = view.state.selection.main;
    return s.empty && view.state.doc.lineAt(s.head).number === view.state.doc.lines;
  };
  const consoleKeys = Prec.highest(keymap.of([
    { key: "Mod-Enter", run: (v) => { opts.onRun && opts.onRun(v.state.doc.toString()); return true; } },
    { key: "Shift-Enter", run: () => { opts.onRunPart && opts.onRunPart(); return true; } },
    { key: "Escape", run: (v) => { if (completionStatus(v.state)) return false; opts.onCancel && opts.onCancel(); return false; } },
    { key: "Ctrl-r", run: () => { opts.onSearch && opts.onSearch(); return true; } },
    { key: "ArrowUp", run: (v) => firstLine(v) && !completionStatus(v.state) && !!opts.onHistory && opts.onHistory(1) },
    { key: "ArrowDown", run: (v) => lastLine(v) && !completionStatus(v.state) && !!opts.onHistory && opts.onHistory(-1) },
    { key: "Mod-/", run: toggleComment },
  ]));
  const state = EditorState.create({
    doc: opts.doc || "",
    extensions: [
      consoleKeys,
      lineNumbers(), highlightActiveLineGutter(), history(), drawSelection(), indentOnInput(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }), bracketMatching(), closeBrackets(),
      autocompletion({ activateOnTyping: true }), highlightActiveLine(), highlightSelectionMatches(), search({ top: true }),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...completionKeymap, indentWithTab]),
      language.of(languageExt()), theme.of(themeExt()), caretField,
      placeholderExt(opts.placeholder || ""),
      EditorView.contentAttributes.of({ "aria-label": "SQL editor" }),
      EditorView.updateListener.of((u) => { if (u.docChanged && opts.onChange) opts.onChange(u); }),
    ],
  });
  const view = new EditorView({ state, parent });
  const observer = new MutationObserver(() => view.dispatch({ effects: theme.reconfigure(themeExt()) }));
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  return {
    view,
    get value() { return view.state.doc.toString(); },
    setValue(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: text.length } });
    },
    selection() {
      const s = view.state.selection.main;
      return { from: s.from, to: s.to, text: view.state.sliceDoc(s.from, s.to) };
    },
    focus() { view.focus(); },
    setSchema(next) {
      schema = next;
      view.dispatch({ effects: language.reconfigure(languageExt()) });
    },
    // Marks the character at offset (0-based, in characters of the document).
    markCaret(offset) {
      const len = view.state.doc.length;
      if (offset === null || offset < 0 || offset >= len) { view.dispatch({ effects: caretEffect.of(null) }); return; }
      view.dispatch({ effects: caretEffect.of(offset), selection: { anchor: offset }, scrollIntoView: true });
    },
  };
}

window.pglabCM = { create, schemaCompletionSource };
