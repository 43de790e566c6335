// The query page: a CodeMirror 6 ADQL editor (the vendored bundle exposes it as `CM`), running
// queries through the public TAP endpoints (/tap/sync, /tap/async per UWS 1.1), a paged result
// table with units, downloads in every format, errors marked where the parser found them, and
// spectrum previews through DataLink (/datalink/links, the #preview link) when the service has it.
"use strict";

(function () {
  const cfg = JSON.parse(document.getElementById("query-config").textContent);
  const $ = (id) => document.getElementById(id);
  const TAP = "/tap";

  // ---- the editor -------------------------------------------------------------------------
  const dialect = CM.SQLDialect.define({
    keywords: cfg.keywords,
    builtin: cfg.functions,
    types: cfg.types,
    caseInsensitiveIdentifiers: true,
  });
  const sqlConfig = new CM.Compartment();
  let tableColumns = {}; // "archive.spectra" -> [completion, ...]

  // Bare column names of the tables named after FROM/JOIN (lang-sql completes "table." only).
  function columnsOfFromTables(context) {
    const word = context.matchBefore(/[\w"]+/);
    if (!word && !context.explicit) return null;
    const before = context.state.doc.sliceString(Math.max(0, (word ? word.from : context.pos) - 1), word ? word.from : context.pos);
    if (before === ".") return null; // qualified: lang-sql's schema completion does it
    const text = context.state.doc.toString();
    const options = [];
    const seen = new Set();
    for (const m of text.matchAll(/\b(?:FROM|JOIN)\s+([A-Za-z_][\w]*\.[A-Za-z_][\w]*)/gi)) {
      const cols = tableColumns[m[1].toLowerCase()] || [];
      for (const c of cols) {
        if (!seen.has(c.label)) { seen.add(c.label); options.push(c); }
      }
    }
    if (!options.length) return null;
    return { from: word ? word.from : context.pos, options, validFor: /^[\w"]*$/ };
  }

  function sqlExtension(namespace) {
    return [
      CM.sql({ dialect, schema: namespace, upperCaseKeywords: true }),
      dialect.language.data.of({ autocomplete: columnsOfFromTables }),
    ];
  }

  const runKeys = CM.Prec.highest(CM.keymap.of([
    { key: "Mod-Enter", run: () => { run(); return true; } },
  ]));
  const view = new CM.EditorView({
    parent: $("editor"),
    state: CM.EditorState.create({
      doc: cfg.initial,
      extensions: [
        runKeys,
        CM.basicSetup,
        CM.keymap.of([CM.indentWithTab]),
        CM.lintGutter(),
        sqlConfig.of(sqlExtension({})),
        CM.EditorView.lineWrapping,
        CM.EditorView.updateListener.of((u) => { if (u.docChanged) { updateDownloads(); clearError(); } }),
      ],
    }),
  });
  window.adqlEditor = view; // for tests and the curious

  function queryText() { return view.state.doc.toString(); }
  function setQuery(text) {
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    view.focus();
  }

  // Table and column names for completion, from the VOSI tables endpoint.
  async function loadSchema() {
    try {
      const r = await fetch(TAP + "/tables");
      if (!r.ok) return;
      const xml = new DOMParser().parseFromString(await r.text(), "application/xml");
      const namespace = {};
      for (const schema of xml.getElementsByTagName("schema")) {
        for (const table of schema.getElementsByTagName("table")) {
          const tname = childText(table, "name");
          if (!tname) continue;
          const cols = [];
          for (const col of table.getElementsByTagName("column")) {
            const unit = childText(col, "unit");
            const type = childText(col, "dataType");
            cols.push({
              label: childText(col, "name"),
              type: "property",
              detail: [type, unit && "[" + unit + "]"].filter(Boolean).join(" "),
              info: childText(col, "description") || undefined,
            });
          }
          tableColumns[tname.toLowerCase()] = cols;
          const [s, t] = tname.includes(".") ? tname.split(".", 2) : ["", tname];
          const tdesc = childText(table, "description");
          const entry = { self: { label: t, type: "type", info: tdesc || undefined }, children: cols };
          if (s) { (namespace[s] = namespace[s] || {})[t] = entry; } else { namespace[t] = entry; }
        }
      }
      view.dispatch({ effects: sqlConfig.reconfigure(sqlExtension(namespace)) });
      $("editor").dataset.schema = "loaded";
    } catch (e) {
      console.info("completion of names unavailable:", e.message);
    }
  }
  function childText(el, name) {
    for (const c of el.children) if (c.localName === name) return c.textContent.trim();
    return "";
  }

  // ---- parameters, downloads --------------------------------------------------------------
  function maxrec() {
    const n = parseInt($("maxrec").value, 10);
    return Number.isFinite(n) && n > 0 ? n : cfg.maxrec;
  }
  function syncUrl(format) {
    const p = new URLSearchParams({ REQUEST: "doQuery", LANG: "ADQL", RESPONSEFORMAT: format,
      MAXREC: String(maxrec()), QUERY: queryText() });
    return TAP + "/sync?" + p.toString();
  }
  function updateDownloads() {
    for (const a of $("downloads").querySelectorAll("a[data-format]")) {
      a.href = syncUrl(a.dataset.format);
    }
    $("downloads").firstElementChild.textContent =
      "Download the result (up to MAXREC=" + maxrec() + ", set above) as:";
  }
  $("maxrec").addEventListener("input", updateDownloads);

  // ---- status and errors ------------------------------------------------------------------
  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }
  let errorPos = null;
  function clearError() {
    if (!$("error-box").classList.contains("shown")) return;
    $("error-box").classList.remove("shown");
    view.dispatch(CM.setDiagnostics(view.state, []));
    errorPos = null;
  }
  // The translator says "line L, column C" (1-based) where it knows the place; mark it.
  function showError(message) {
    status("failed", true);
    $("result-area").hidden = true;
    $("error-text").textContent = message;
    $("error-box").classList.add("shown");
    errorPos = locate(message);
    $("error-goto").hidden = errorPos === null;
    const diagnostics = [];
    if (errorPos !== null) {
      const line = view.state.doc.lineAt(errorPos);
      const rest = line.text.slice(errorPos - line.from);
      const len = Math.max(1, (rest.match(/^[\w"'.]+/) || [""])[0].length);
      diagnostics.push({ from: errorPos, to: Math.min(line.to, errorPos + len) || errorPos + 1,
        severity: "error", message });
      view.dispatch({ selection: { anchor: errorPos }, scrollIntoView: true });
    }
    view.dispatch(CM.setDiagnostics(view.state, diagnostics));
  }
  function locate(message) {
    const m = message.match(/line (\d+), column (\d+)/);
    if (!m) return null;
    const doc = view.state.doc;
    const lineNo = Math.min(Math.max(1, parseInt(m[1], 10)), doc.lines);
    const line = doc.line(lineNo);
    return Math.min(line.from + Math.max(0, parseInt(m[2], 10) - 1), line.to);
  }
  $("error-goto").addEventListener("click", () => {
    if (errorPos !== null) { view.dispatch({ selection: { anchor: errorPos }, scrollIntoView: true }); view.focus(); }
  });

  // DALI error document: a VOTable whose INFO name="QUERY_STATUS" value="ERROR" holds the message.
  function daliMessage(text, httpStatus) {
    try {
      const xml = new DOMParser().parseFromString(text, "application/xml");
      for (const info of xml.getElementsByTagName("INFO")) {
        if (info.getAttribute("name") === "QUERY_STATUS" && info.getAttribute("value") === "ERROR") {
          return info.textContent.trim();
        }
      }
    } catch (e) { /* not XML */ }
    return (text || "").trim().slice(0, 2000) || "HTTP " + httpStatus;
  }

  // ---- running ----------------------------------------------------------------------------
  let running = null; // {controller, jobUrl}
  async function run() {
    if (running) return;
    clearError();
    const controller = new AbortController();
    running = { controller, jobUrl: null };
    $("run").disabled = true;
    $("abort").hidden = false;
    const started = performance.now();
    const params = { REQUEST: "doQuery", LANG: "ADQL", QUERY: queryText(),
      RESPONSEFORMAT: "application/json", MAXREC: String(maxrec()) };
    try {
      const result = $("mode").value === "async"
        ? await runAsync(params, controller.signal)
        : await runSync(params, controller.signal);
      if (result) {
        const ms = Math.round(performance.now() - started);
        showResult(result, ms);
      }
    } catch (e) {
      if (e.name === "AbortError") status("aborted", true);
      else showError(e.message);
    } finally {
      running = null;
      $("run").disabled = false;
      $("abort").hidden = true;
    }
  }
  $("run").addEventListener("click", run);
  $("abort").addEventListener("click", async () => {
    if (!running) return;
    if (running.jobUrl) {
      await fetch(running.jobUrl + "/phase", { method: "POST", body: new URLSearchParams({ PHASE: "ABORT" }) }).catch(() => {});
    }
    running.controller.abort();
  });

  async function readJsonResult(r) {
    const text = await r.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      // The JSON writer streams; an error after the first rows cuts the document short.
      throw new Error("the result could not be read (" + e.message + "); its end was: " + text.slice(-300));
    }
  }

  async function runSync(params, signal) {
    status("running…");
    const r = await fetch(TAP + "/sync", { method: "POST", body: new URLSearchParams(params), signal });
    if (!r.ok) throw new Error(daliMessage(await r.text(), r.status));
    return readJsonResult(r);
  }

  // UWS 1.1: create the job with PHASE=RUN, block on it with WAIT, read results/result.
  const UWS = "http://www.ivoa.net/xml/UWS/v1.0";
  function uwsText(xml, name) {
    const el = xml.getElementsByTagNameNS(UWS, name)[0];
    return el ? el.textContent.trim() : "";
  }
  async function runAsync(params, signal) {
    status("submitting job…");
    const r = await fetch(TAP + "/async", { method: "POST", body: new URLSearchParams({ ...params, PHASE: "RUN" }), signal });
    if (r.status === 404 || r.status === 405) {
      throw new Error("this service does not offer asynchronous queries (/tap/async answered " + r.status + "); use the synchronous mode");
    }
    const text = await r.text();
    if (!r.ok) throw new Error(daliMessage(text, r.status));
    let xml = new DOMParser().parseFromString(text, "application/xml");
    const jobId = uwsText(xml, "jobId");
    // After the 303 redirect r.url is the job; keep our origin in case the service names another.
    const jobUrl = jobId && !r.url.endsWith("/" + jobId) ? TAP + "/async/" + jobId : new URL(r.url).pathname;
    running.jobUrl = jobUrl;
    let phase = uwsText(xml, "phase");
    for (;;) {
      status("job " + (jobId || jobUrl) + ": " + phase);
      if (phase === "COMPLETED") break;
      if (phase === "ERROR") {
        let message = uwsText(xml, "message");
        const e = await fetch(jobUrl + "/error", { signal }).catch(() => null);
        if (e && e.ok) message = daliMessage(await e.text(), e.status) || message;
        throw new Error(message || "the job failed");
      }
      if (phase === "ABORTED") { const err = new Error("aborted"); err.name = "AbortError"; throw err; }
      const wr = await fetch(jobUrl + "?WAIT=10&PHASE=" + encodeURIComponent(phase), { signal });
      if (!wr.ok) throw new Error("job " + jobUrl + " answered HTTP " + wr.status);
      xml = new DOMParser().parseFromString(await wr.text(), "application/xml");
      phase = uwsText(xml, "phase");
    }
    let href = jobUrl + "/results/result";
    for (const res of xml.getElementsByTagNameNS(UWS, "result")) {
      if (res.getAttribute("id") === "result") {
        const h = res.getAttributeNS("http://www.w3.org/1999/xlink", "href");
        if (h) href = new URL(h, location.href).pathname + new URL(h, location.href).search;
      }
    }
    const rr = await fetch(href, { signal });
    if (!rr.ok) throw new Error(daliMessage(await rr.text(), rr.status));
    const result = await readJsonResult(rr);
    result.jobUrl = jobUrl;
    return result;
  }

  // ---- the result table -------------------------------------------------------------------
  let current = null; // {metadata, data, page, didIndex}
  function showResult(result, ms) {
    const meta = result.metadata || [];
    const data = result.data || [];
    const lower = meta.map((m) => m.name.toLowerCase());
    let didIndex = lower.indexOf("obs_publisher_did");
    if (didIndex < 0) didIndex = lower.indexOf("publisher_did");
    current = { metadata: meta, data, page: 0, didIndex };
    const overflow = result.query_status === "OVERFLOW";
    let text = data.length + " row" + (data.length === 1 ? "" : "s") + " in " + ms + " ms";
    if (overflow) text += " — more rows exist: raise “Rows shown at most” or download with a larger MAXREC";
    if (result.jobUrl) text += " — job " + result.jobUrl;
    status(text, false);
    const head = $("result").tHead;
    head.innerHTML = "";
    const tr = head.insertRow();
    if (didIndex >= 0) {
      const th = document.createElement("th");
      th.textContent = "preview";
      th.title = "the spectrum's DataLink links and preview";
      tr.appendChild(th);
    }
    for (const m of meta) {
      const th = document.createElement("th");
      th.textContent = m.name;
      th.title = [m.description, m.ucd && "UCD " + m.ucd, m.datatype].filter(Boolean).join("\n");
      if (m.unit) {
        const u = document.createElement("span");
        u.className = "unit";
        u.textContent = m.unit;
        th.appendChild(u);
      }
      tr.appendChild(th);
    }
    $("result-area").hidden = false;
    renderPage();
  }

  function cell(value) {
    if (value === null || value === undefined) return ["NULL", "null"];
    if (Array.isArray(value)) {
      const s = JSON.stringify(value);
      return [s.length > 80 ? s.slice(0, 77) + "…" : s, ""];
    }
    if (typeof value === "number") {
      // 12 significant digits: 3.70305002500000007e-7 reads as 3.703050025e-7 (exact in downloads)
      return [Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12))), "num"];
    }
    return [String(value), ""];
  }

  function renderPage() {
    const { data, page, didIndex, metadata } = current;
    const size = cfg.pageSize;
    const pages = Math.max(1, Math.ceil(data.length / size));
    const body = $("result").tBodies[0];
    body.innerHTML = "";
    const rows = data.slice(page * size, (page + 1) * size);
    for (const row of rows) {
      const tr = body.insertRow();
      if (didIndex >= 0) {
        const td = tr.insertCell();
        const did = row[didIndex];
        if (did) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "linklike preview-button";
          b.textContent = "preview";
          b.addEventListener("click", () => preview(String(did)));
          td.appendChild(b);
        }
      }
      for (let i = 0; i < metadata.length; i++) {
        const [text, cls] = cell(row[i]);
        const td = tr.insertCell();
        td.textContent = text;
        if (cls) td.className = cls;
      }
    }
    const first = data.length ? page * size + 1 : 0;
    $("page-info").textContent = "rows " + first + "–" + (page * size + rows.length) + " of " + data.length +
      " (page " + (page + 1) + " of " + pages + ")";
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
  }
  $("prev").addEventListener("click", () => { if (current && current.page > 0) { current.page--; renderPage(); } });
  $("next").addEventListener("click", () => {
    if (current && (current.page + 1) * cfg.pageSize < current.data.length) { current.page++; renderPage(); }
  });

  // ---- DataLink preview -------------------------------------------------------------------
  function votableRows(xml) {
    const names = [...xml.getElementsByTagName("FIELD")].map((f) => f.getAttribute("name"));
    const rows = [];
    for (const tr of xml.getElementsByTagName("TR")) {
      const vals = [...tr.getElementsByTagName("TD")].map((td) => td.textContent);
      const row = {};
      names.forEach((n, i) => { row[n] = vals[i] || ""; });
      rows.push(row);
    }
    return { names, rows };
  }
  async function preview(did) {
    const box = $("preview");
    const body = $("preview-body");
    box.classList.add("shown");
    $("preview-title").textContent = "Preview of " + did;
    body.textContent = "asking DataLink…";
    let r;
    try {
      r = await fetch("/datalink/links?ID=" + encodeURIComponent(did));
    } catch (e) {
      body.textContent = "DataLink could not be reached: " + e.message;
      return;
    }
    if (r.status === 404 && !(r.headers.get("content-type") || "").includes("votable")) {
      body.textContent = "This service offers no DataLink endpoint yet, so there is no preview; " +
        "the spectrum's file is described by the row itself (file_path, file_size, access_url in ivoa.obscore).";
      return;
    }
    const text = await r.text();
    if (!r.ok) { body.textContent = "DataLink: " + daliMessage(text, r.status); return; }
    const xml = new DOMParser().parseFromString(text, "application/xml");
    const { names, rows } = votableRows(xml);
    if (!names.length) { body.textContent = "DataLink answered something that is not a VOTable."; return; }
    if (!rows.length && xml.getElementsByTagName("DATA").length) {
      body.textContent = "DataLink answered in a serialization this page cannot read (not TABLEDATA).";
      return;
    }
    body.innerHTML = "";
    const img = rows.find((row) => row.semantics === "#preview" && row.access_url);
    if (img) {
      const el = document.createElement("img");
      el.alt = "preview of " + did;
      el.src = img.access_url;
      body.appendChild(el);
    } else {
      const p = document.createElement("p");
      p.textContent = "No #preview link for this spectrum.";
      body.appendChild(p);
    }
    const list = document.createElement("ul");
    for (const row of rows) {
      const li = document.createElement("li");
      if (row.access_url) {
        const a = document.createElement("a");
        a.href = row.access_url;
        a.textContent = row.semantics || row.access_url;
        li.appendChild(a);
      } else {
        li.textContent = row.semantics || "";
      }
      const extra = [row.description, row.content_type, row.error_message].filter(Boolean).join(" — ");
      if (extra) li.appendChild(document.createTextNode(" " + extra));
      list.appendChild(li);
    }
    body.appendChild(list);
  }

  // ---- examples ---------------------------------------------------------------------------
  for (const b of document.querySelectorAll("#examples button.example")) {
    b.addEventListener("click", () => setQuery(cfg.examples[parseInt(b.dataset.index, 10)].query));
  }

  updateDownloads();
  loadSchema();
})();
