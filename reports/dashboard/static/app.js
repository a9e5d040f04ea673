// Vigil auditor dashboard. Read-only: GET requests with the user's token.
// All server data is inserted with textContent, never as HTML.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const KEY = "vigil-dashboard-token";
  const token = () => sessionStorage.getItem(KEY) || "";

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
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
      $("#who").textContent = "Signed in as " + (d.display_name || "?") + " (policies: " + (d.policies || []).join(", ") + ")";
    } catch (e) { $("#who").textContent = "Token kept for this tab (" + e.message + ")"; }
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
      sum.textContent = `Node ${res.node_id} at ${res.time}: ${res.passed} passed, ${res.failed} failed, ${res.unknown} unknown.`;
      for (const c of res.checks) tb.appendChild(row([badge(c.status, c.status), c.id, c.title + (c.note ? " (" + c.note + ")" : "")]));
      $("#checks-table").classList.remove("hide");
      $("#findings-h").classList.toggle("hide", !res.findings.length);
      for (const f of res.findings) {
        const d = el("div", null, "finding " + f.severity);
        const h = el("b"); h.appendChild(badge(f.severity, f.severity)); h.appendChild(document.createTextNode(" " + f.check));
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
      meta.textContent = `${tb.children.length} record(s) from the ${res.backend} backend` +
        (cp ? `, computed against checkpoint node ${cp.node_id} seq ${cp.seq} (key ${cp.key_id})` : "") + (next ? "; more available." : ".");
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
