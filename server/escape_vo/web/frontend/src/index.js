// The part of CodeMirror 6 the query page uses, exposed as the global `CM` by the bundle
// (static/vendor/codemirror.min.js). Our own code (static/query.js) stays readable and unbundled.
export { EditorView, keymap, placeholder } from "@codemirror/view";
export { EditorState, EditorSelection, Compartment, Prec } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { indentWithTab } from "@codemirror/commands";
export { sql, SQLDialect, keywordCompletionSource, schemaCompletionSource } from "@codemirror/lang-sql";
export { setDiagnostics, lintGutter } from "@codemirror/lint";
export { autocompletion, completeFromList, startCompletion } from "@codemirror/autocomplete";
export { syntaxTree } from "@codemirror/language";
