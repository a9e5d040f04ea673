// Vigil auditor dashboard. Read-only: GET requests with the user's token.
// All server data is inserted with textContent, never as HTML, and through
// shown(), so that no path can display as another.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const KEY = "vigil-dashboard-token";
  const token = () => sessionStorage.getItem(KEY) || "";

  // HIDDEN is every character that does not display as itself: controls,
  // bidirectional overrides and isolates (U+202E...), zero-width and other
  // format characters (Unicode Cf), U+FFFD, and the backslash that starts
  // an escape. The same set as Go's core/safetext (a test compares them).
  const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u005c\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ufffd\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]/gu;
  function shown(v) {
    return String(v).replace(HIDDEN, (c) => {
      if (c === "\\") return "\\\\";
      const cp = c.codePointAt(0);
      return cp > 0xffff ? "\\u{" + cp.toString(16) + "}" : "\\u" + cp.toString(16).padStart(4, "0");
    });
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = shown(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = c instanceof Node ? (() => { const t = el("td"); t.appendChild(c); return t; })() : el("td", c);
      tr.appendChild(td);
    }
    return tr;
  }
  function badge(text, cls) { return el("span", text.toUpperCase(), "badge " + cls); }

  async function api(path, params, raw) {
    if (!token()) throw new Error("enter a token first");
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== undefined && v !== null) q.set(k, v);
    const url = "/v1/" + path + (q.toString() ? "?" + q.toString() : "");
    const resp = await fetch(url, { headers: { "X-Vault-Token": token() }, credentials: "omit", cache: "no-store" });
    if (!resp.ok) {
      let msg = "HTTP " + resp.status;
      try { const b = await resp.json(); if (b.errors && b.errors.length) msg += ": " + b.errors.join("; "); } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return raw ? resp : resp.json();
  }
  function fail(target, err) { target.replaceChildren(el("p", String(err.message || err), "err")); }

  // Token
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("#token").value.trim());
    $("#token").value = "";
    try {
      const s = await api("auth/token/lookup-self");
      const d = s.data || {};
      $("#who").textContent = "Signed in as " + shown(d.display_name || "?") + " (policies: " + shown((d.policies || []).join(", ")) + ")";
    } catch (e) { $("#who").textContent = "Token kept for this tab (" + shown(e.message) + ")"; }
  });
  $("#forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("#who").textContent = "Token forgotten."; });

  // Tabs
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll("nav button")) x.classList.toggle("on", x === b);
      for (const s of document.querySelectorAll(".tab")) s.classList.toggle("on", s.id === b.dataset.tab);
    });
  }

  // Compliance checks
  $("#run-checks").addEventListener("click", async () => {
    const sum = $("#checks-summary"), tb = $("#checks-table tbody"), fl = $("#findings");
    sum.textContent = "Running..."; tb.replaceChildren(); fl.replaceChildren();
    try {
      const res = (await api("sys/compliance/checks")).data;
      sum.textContent = shown(`Node ${res.node_id} at ${res.time}: ${res.passed} passed, ${res.failed} failed, ${res.unknown} unknown.`);
      for (const c of res.checks) tb.appendChild(row([badge(c.status, c.status), c.id, c.title + (c.note ? " (" + c.note + ")" : "")]));
      $("#checks-table").classList.remove("hide");
      $("#findings-h").classList.toggle("hide", !res.findings.length);
      for (const f of res.findings) {
        const d = el("div", null, "finding " + f.severity);
        const h = el("b"); h.appendChild(badge(f.severity, f.severity)); h.appendChild(document.createTextNode(" " + shown(f.check)));
        d.appendChild(h);
        d.appendChild(el("div", "Object: " + f.object));
        d.appendChild(el("div", "Problem: " + f.message));
        d.appendChild(el("div", "Controls: " + (f.controls || []).join(", ")));
        d.appendChild(el("div", "Fix: " + f.fix));
        fl.appendChild(d);
      }
    } catch (e) { fail(sum, e); }
  });

  // Query
  let lastParams = null, next = "";
  async function runQuery(more) {
    const meta = $("#qmeta"), tb = $("#qtable tbody");
    if (!more) { tb.replaceChildren(); next = ""; lastParams = Object.fromEntries(new FormData($("#qform")).entries()); }
    const params = Object.assign({}, lastParams, { limit: 200 });
    if (more && next) params.after = next;
    meta.textContent = "Searching...";
    try {
      const body = await api("sys/audit/query", params);
      const res = body.data || body;
      for (const r of res.records || []) {
        const dec = r.allowed ? (r.error ? "error" : "allowed") : "denied";
        const actor = r.display_name || r.entity_id || r.accessor || "(unauthenticated)";
        const flags = r.flags && r.flags.break_glass ? " [break-glass: " + (r.flags.break_glass_reason || "") + "]" : "";
        tb.appendChild(row([r.time, actor, r.remote_address || "", r.operation, r.path, dec + flags, (r.granting_policies || []).join(", "), r.request_id]));
        if (!r.allowed) tb.lastChild.children[5].className = "denied";
      }
      next = res.next || "";
      const cp = res.checkpoint;
      meta.textContent = shown(`${tb.children.length} record(s) from the ${res.backend} backend` +
        (cp ? `, computed against checkpoint node ${cp.node_id} seq ${cp.seq} (key ${cp.key_id})` : "") + (next ? "; more available." : "."));
      $("#qtable").classList.remove("hide");
      $("#qmore").classList.toggle("hide", !next);
    } catch (e) { fail(meta, e); }
  }
  $("#qform").addEventListener("submit", (ev) => { ev.preventDefault(); runQuery(false); });
  $("#qmore").addEventListener("click", () => runQuery(true));

  // Reports
  const today = new Date(), monthAgo = new Date(Date.now() - 30 * 864e5);
  $("#rform").elements.to.value = today.toISOString().slice(0, 10);
  $("#rform").elements.from.value = monthAgo.toISOString().slice(0, 10);
  let lastURL = "";
  $("#rform").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData($("#rform")).entries());
    const st = $("#rstatus");
    st.textContent = "Generating...";
    try {
      const resp = await api("sys/reports/" + f.kind, { from: f.from, to: f.to, format: f.format }, true);
      const blob = await resp.blob();
      if (lastURL) URL.revokeObjectURL(lastURL);
      lastURL = URL.createObjectURL(blob);
      const name = `vigil-${f.kind}-${f.from}-to-${f.to}.${f.format}`;
      st.replaceChildren();
      const a = el("a", "Download " + name); a.href = lastURL; a.download = name;
      st.appendChild(a);
      const fr = $("#rframe");
      if (f.format === "html") { fr.src = lastURL; fr.classList.remove("hide"); } else { fr.classList.add("hide"); }
    } catch (e) { fail(st, e); }
  });
})();
