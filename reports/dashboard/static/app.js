// Vigil auditor's workbench. Read-only: besides the sign-in (a login
// through an auth method), every call is a GET with the user's token.
// All server data is inserted with textContent, never as HTML, and through
// shown(), so that no path can display as another.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const KEY = "vigil-dashboard-token";
  const NSKEY = "vigil-dashboard-namespace";
  const SVG = "http://www.w3.org/2000/svg";
  const token = () => sessionStorage.getItem(KEY) || "";
  // The namespace the requests are made in (X-Vault-Namespace): queries,
  // reports and checks made in a namespace cover it and its children only.
  const namespace = () => sessionStorage.getItem(NSKEY) || "";
  // nsHeaders adds X-Vault-Namespace to a request's headers when a
  // namespace is set (the sign-in too: a namespace's auth methods are its own).
  function nsHeaders(h) {
    if (namespace()) h["X-Vault-Namespace"] = namespace();
    return h;
  }

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
  function badge(text, cls) { return el("span", String(text).toUpperCase(), "badge " + cls); }
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== undefined && v !== null) q.set(k, v);
    return q.toString();
  }
  async function errorOf(resp) {
    let msg = "HTTP " + resp.status;
    try { const b = await resp.json(); if (b.errors && b.errors.length) msg += ": " + b.errors.join("; "); } catch (e) { /* not JSON */ }
    return new Error(msg);
  }
  async function api(path, params, raw) {
    if (!token()) throw new Error("sign in first");
    const qs = query(params);
    const resp = await fetch("/v1/" + path + (qs ? "?" + qs : ""), { headers: nsHeaders({ "X-Vault-Token": token() }), credentials: "omit", cache: "no-store" });
    if (!resp.ok) throw await errorOf(resp);
    return raw ? resp : resp.json();
  }
  function fail(target, err) { target.replaceChildren(el("p", String(err.message || err), "err")); }
  function download(a, blob, name) {
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.textContent = "Download " + name;
    a.classList.remove("hide");
  }

  // Sign-in: a login through userpass (the only non-GET call the page
  // makes), or a token pasted as it is.
  function showMethod() {
    const m = $("#method").value;
    for (const e of document.querySelectorAll("#login .up")) e.classList.toggle("hide", m !== "userpass");
    for (const e of document.querySelectorAll("#login .oidc")) e.classList.toggle("hide", m !== "oidc");
    for (const e of document.querySelectorAll("#login .tok")) e.classList.toggle("hide", m !== "token");
  }
  // OIDC: auth_url gives the provider's login page; the provider sends the
  // browser back to the redirect URI (the role must allow it; by default
  // this page's /ui/oidc/callback) with a code the callback exchanges for
  // a token. A client nonce binds the callback to this tab.
  const OIDC = "vigil-dashboard-oidc";
  async function oidcStart() {
    const mount = encodeURIComponent($("#oidc-mount").value.trim() || "oidc");
    const nonce = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const redirect = $("#oidc-redirect").value.trim() || location.origin + "/ui/oidc/callback";
    const resp = await fetch("/v1/auth/" + mount + "/oidc/auth_url", { method: "POST", credentials: "omit", cache: "no-store",
      headers: nsHeaders({ "Content-Type": "application/json" }), body: JSON.stringify({ role: $("#oidc-role").value.trim(), redirect_uri: redirect, client_nonce: nonce }) });
    if (!resp.ok) throw await errorOf(resp);
    const b = await resp.json();
    if (!b.data || !b.data.auth_url) throw new Error("the provider's login URL is missing: check the role's allowed_redirect_uris");
    sessionStorage.setItem(OIDC, JSON.stringify({ mount, nonce }));
    location.assign(b.data.auth_url);
  }
  async function oidcFinish() {
    const q = new URLSearchParams(location.search);
    const pending = JSON.parse(sessionStorage.getItem(OIDC) || "null");
    sessionStorage.removeItem(OIDC);
    history.replaceState(null, "", "/ui/");
    if (!pending) throw new Error("no OIDC sign-in was started in this tab");
    if (q.get("error")) throw new Error("the provider refused: " + q.get("error") + " " + (q.get("error_description") || ""));
    const resp = await fetch("/v1/auth/" + pending.mount + "/oidc/callback?" + new URLSearchParams({ state: q.get("state") || "",
      code: q.get("code") || "", client_nonce: pending.nonce }).toString(), { headers: nsHeaders({}), credentials: "omit", cache: "no-store" });
    if (!resp.ok) throw await errorOf(resp);
    const b = await resp.json();
    if (!b.auth || !b.auth.client_token) throw new Error("the callback returned no token");
    sessionStorage.setItem(KEY, b.auth.client_token);
  }
  $("#method").addEventListener("change", showMethod);
  async function whoami() {
    try {
      const s = await api("auth/token/lookup-self");
      const d = s.data || {};
      $("#who").textContent = "Signed in as " + shown(d.display_name || "?") + " (policies: " + shown((d.policies || []).join(", ")) + ")" +
        (namespace() ? ", namespace " + shown(namespace()) : "");
    } catch (e) { $("#who").textContent = "Signed in (" + shown(e.message) + ")"; }
  }
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const who = $("#who");
    sessionStorage.setItem(NSKEY, $("#namespace").value.trim());
    try {
      if ($("#method").value === "token") {
        sessionStorage.setItem(KEY, $("#token").value.trim());
        $("#token").value = "";
      } else if ($("#method").value === "oidc") {
        await oidcStart();
        return;
      } else {
        const mount = encodeURIComponent($("#mount").value.trim() || "userpass");
        const user = encodeURIComponent($("#user").value.trim());
        const resp = await fetch("/v1/auth/" + mount + "/login/" + user, { method: "POST", credentials: "omit", cache: "no-store",
          headers: nsHeaders({ "Content-Type": "application/json" }), body: JSON.stringify({ password: $("#password").value }) });
        $("#password").value = "";
        if (!resp.ok) throw await errorOf(resp);
        const b = await resp.json();
        if (!b.auth || !b.auth.client_token) throw new Error("the login returned no token");
        sessionStorage.setItem(KEY, b.auth.client_token);
      }
      await whoami();
    } catch (e) { who.textContent = "Sign-in failed: " + shown(e.message); }
  });
  $("#forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); sessionStorage.removeItem(NSKEY); $("#who").textContent = "Signed out."; });
  if (location.pathname === "/ui/oidc/callback") {
    oidcFinish().then(whoami, (e) => { $("#who").textContent = "Sign-in failed: " + shown(e.message); });
  } else if (token()) whoami();

  // Tabs
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll("nav button")) x.classList.toggle("on", x === b);
      for (const s of document.querySelectorAll(".tab")) s.classList.toggle("on", s.id === b.dataset.tab);
      if (b.dataset.tab === "evidence") loadEvidence();
    });
  }

  // Nice integer ticks (1, 2 or 5 x 10^n), as the reports draw them.
  function ticks(max) {
    const m = Math.max(1, max), raw = m / 5, p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    let step = p;
    for (const f of [1, 2, 5, 10]) { if (f * p >= raw) { step = f * p; break; } }
    step = Math.max(1, step);
    return { top: Math.ceil(m / step) * step, step };
  }
  function histogram(records, truncated) {
    const days = new Map();
    for (const r of records) { const d = (r.time || "").slice(0, 10); days.set(d, (days.get(d) || 0) + 1); }
    const keys = [...days.keys()].sort();
    const box = $("#hist-chart");
    box.replaceChildren();
    $("#histogram").classList.toggle("hide", keys.length === 0);
    $("#hist-note").textContent = "(" + records.length + " records" + (truncated ? ", the first of more: narrow the query for the whole set" : "") + ")";
    if (!keys.length) return;
    const W = 720, H = 200, L = 44, B = 28, T = 10, plotH = H - B - T, plotW = W - L - 8;
    const t = ticks(Math.max(...days.values()));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "requests per day");
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    };
    for (let v = 0; v <= t.top; v += t.step) {
      const y = T + plotH - plotH * v / t.top;
      add("line", { x1: L, x2: W - 8, y1: y, y2: y, stroke: "#e2e8f0", class: "grid" });
      add("text", { x: L - 4, y: y + 3, "text-anchor": "end", "font-size": 10, class: "tick" }, String(v));
    }
    const step = plotW / keys.length, bw = Math.max(2, step * 0.7), every = Math.max(1, Math.ceil(keys.length / 14));
    keys.forEach((k, i) => {
      const v = days.get(k), h = plotH * v / t.top;
      const r = add("rect", { x: L + step * i + (step - bw) / 2, y: T + plotH - h, width: bw, height: h, fill: "#2b6cb0", class: "bar" });
      const title = document.createElementNS(SVG, "title");
      title.textContent = k + ": " + v;
      r.appendChild(title);
      if (i % every === 0) add("text", { x: L + step * i + step / 2, y: H - 10, "text-anchor": "middle", "font-size": 10 }, k.slice(5));
    });
    box.appendChild(svg);
  }

  // Query
  let lastParams = null, next = "";
  function params() {
    const p = Object.fromEntries(new FormData($("#qform")).entries());
    if (!$("#show-preflight").checked) p.preflight = "exclude";
    return p;
  }
  function showRecord(r) {
    const tb = $("#record-table tbody");
    tb.replaceChildren();
    const fields = [["Time", r.time], ["Request id", r.request_id], ["Node / seq", r.node_id + " / " + r.seq], ["Actor", r.actor || r.display_name || ""],
      ["Display name", r.display_name], ["Entity", (r.entity_name ? r.entity_name + " " : "") + (r.entity_id || "")], ["Token accessor (HMAC)", r.accessor],
      ["Token type", r.token_type], ["Client address", (r.remote_address || "") + (r.remote_port ? ":" + r.remote_port : "")],
      ["Operation", r.operation], ["Path", r.path], ["Mount", (r.mount_point || "") + " (" + (r.mount_type || "") + ")"],
      ["Decision", r.allowed ? "allowed" : "DENIED"], ["HTTP status", r.status], ["Error", r.error], ["Error code", r.error_code],
      ["Granting policies", (r.granting_policies || []).join(", ")], ["Deny reasons", (r.deny_reasons || []).join("; ")],
      ["Token policies", (r.policies || []).join(", ")],
      ["Flags", Object.entries(r.flags || {}).map(([k, v]) => k + "=" + v).join("; ")],
      ["Internal (Vigil itself)", r.internal ? "yes" : ""], ["Response recorded", r.incomplete ? "NO: request entry only" : "yes"],
      ["Client preflight", r.preflight ? "yes" : ""]];
    for (const [k, v] of fields) {
      if (v === undefined || v === null || v === "" || v === 0) continue;
      tb.appendChild(row([k, v]));
    }
    $("#record").classList.remove("hide");
  }
  $("#record-close").addEventListener("click", () => $("#record").classList.add("hide"));
  async function runQuery(more) {
    const meta = $("#qmeta"), tb = $("#qtable tbody");
    if (!more) { tb.replaceChildren(); next = ""; lastParams = params(); }
    const p = Object.assign({}, lastParams, { limit: 200 });
    if (more && next) p.after = next;
    meta.textContent = "Searching...";
    try {
      const body = await api("sys/audit/query", p);
      const res = body.data || body;
      for (const r of res.records || []) {
        const dec = r.allowed ? (r.error ? "error" : "allowed") : "denied";
        const actor = r.actor || r.display_name || r.entity_id || r.accessor || "(unauthenticated)";
        const flags = r.flags && r.flags.break_glass ? " [break-glass: " + (r.flags.break_glass_reason || "") + "]" : "";
        const tr = row([r.time, actor, r.remote_address || "", r.operation, r.path, dec + flags, (r.granting_policies || []).join(", "), r.request_id]);
        if (!r.allowed) tr.children[5].className = "denied";
        tr.className = "rec";
        tr.tabIndex = 0;
        tr.addEventListener("click", () => showRecord(r));
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter") showRecord(r); });
        tb.appendChild(tr);
      }
      next = res.next || "";
      const cp = res.checkpoint;
      meta.textContent = shown(`${tb.children.length} record(s) from the ${res.backend} backend` +
        (cp ? `, computed against checkpoint node ${cp.node_id} seq ${cp.seq} (key ${cp.key_id})` : "") + (next ? "; more available." : ".") +
        ((res.warnings || []).length ? " Note: " + res.warnings.join(" ") : ""));
      $("#qtable").classList.remove("hide");
      $("#export").classList.remove("hide");
      $("#qmore").classList.toggle("hide", !next);
      if (!more) await histogramOf(lastParams);
    } catch (e) { fail(meta, e); }
  }
  // The histogram counts the whole result: every page, up to a bound.
  async function histogramOf(p) {
    const all = [];
    let after = "", truncated = false;
    for (let i = 0; i < 10; i++) {
      const q = Object.assign({}, p, { limit: 10000 });
      if (after) q.after = after;
      const res = (await api("sys/audit/query", q)).data;
      all.push(...(res.records || []));
      after = res.next || "";
      if (!after) break;
      truncated = i === 9;
    }
    histogram(all, truncated);
  }
  $("#qform").addEventListener("submit", (ev) => { ev.preventDefault(); runQuery(false); });
  $("#qmore").addEventListener("click", () => runQuery(true));
  // Export the current query (not only the rows on screen): every page
  // up to 100,000 records, as the API renders it.
  async function exportAs(format) {
    const st = $("#export-status");
    st.textContent = "Exporting...";
    try {
      const p = Object.assign({}, lastParams, { limit: 100000, format: format === "json" ? "json" : "csv" });
      const resp = await api("sys/audit/query", p, true);
      let text = await resp.text();
      let n = 0;
      if (format === "json") {
        const body = JSON.parse(text);
        n = (body.data.records || []).length;
        text = JSON.stringify(body.data, null, 2);
      } else {
        n = Math.max(0, text.split("\r\n").filter((l) => l !== "").length - 1);
      }
      const name = "vigil-audit-query." + format;
      download($("#export-link"), new Blob([text], { type: format === "json" ? "application/json" : "text/csv" }), name);
      st.textContent = `Exported ${n} record(s) as ${format.toUpperCase()} (${name}).` + (resp.headers.get("X-Vigil-Query-Next") ? " More records match: narrow the query." : "");
    } catch (e) { fail(st, e); }
  }
  $("#export-csv").addEventListener("click", () => exportAs("csv"));
  $("#export-json").addEventListener("click", () => exportAs("json"));

  // Evidence
  async function loadEvidence() {
    const sum = $("#ev-summary");
    sum.textContent = "Loading...";
    for (const id of ["#ev-verify", "#ev-checkpoints", "#ev-coverage"]) $(id + " tbody").replaceChildren();
    try {
      const d = (await api("sys/reports/evidence")).data;
      const v = d.verification;
      sum.replaceChildren();
      sum.appendChild(v ? badge(v.ok ? "chain verified" : "chain FAILED", v.ok ? "pass" : "fail") : badge("never verified", "medium"));
      sum.appendChild(el("span", " node " + d.node_id + (v ? ", last verification " + v.time : ", run vigil audit verify") + (d.backend ? "; query backend " + d.backend : "")));
      for (const x of (v && v.devices) || []) {
        $("#ev-verify tbody").appendChild(row([x.device, x.ok ? "ok" : "FAILED: " + x.failure, x.entries, x.first_seq + "-" + x.last_seq,
          x.checkpoint_seq ? "seq " + x.checkpoint_seq + (x.checkpoint_ok ? " verified" : " NOT verified") : "-", x.signatures_checked ? "checked" : "no"]));
      }
      for (const c of d.checkpoints || []) $("#ev-checkpoints tbody").appendChild(row([c.node_id, c.seq, c.time, c.hash, c.key_id]));
      for (const c of d.coverage || []) {
        $("#ev-coverage tbody").appendChild(row([c.node_id, "seq " + c.first_seq + ", " + c.first + (c.dropped_before ? " (earlier entries rotated away)" : ""),
          "seq " + c.last_seq + ", " + c.last, c.records, (c.gaps || []).map((g) => g.from + "-" + g.to).join(", ") || "none"]));
      }
      $("#ev-key").textContent = d.checkpoint_key ? "key " + d.checkpoint_key.key_id + "\n" + d.checkpoint_key.public_key_pem : "(sealed)";
    } catch (e) { fail(sum, e); }
  }
  $("#load-evidence").addEventListener("click", loadEvidence);

  // Reports: the default range ends tomorrow (the end is exclusive), so
  // today is in it.
  const day = (d) => d.toISOString().slice(0, 10);
  $("#rform").elements.to.value = day(new Date(Date.now() + 864e5));
  $("#rform").elements.from.value = day(new Date(Date.now() - 29 * 864e5));
  let lastURL = "";
  $("#rform").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData($("#rform")).entries());
    const st = $("#rstatus");
    st.textContent = "Generating...";
    try {
      const kind = f.kind;
      delete f.kind;
      if (f.fiscal_year) { delete f.from; delete f.to; }
      const resp = await api("sys/reports/" + kind, f, true);
      const blob = await resp.blob();
      if (lastURL) URL.revokeObjectURL(lastURL);
      lastURL = URL.createObjectURL(blob);
      const ext = f.format === "bundle" ? "zip" : f.format;
      const name = `vigil-${kind}-${f.fiscal_year ? f.fiscal_year.replace("/", "-") : f.from + "-to-" + f.to}.${ext}`;
      st.replaceChildren();
      const a = el("a", "Download " + name);
      a.href = lastURL;
      a.download = name;
      a.id = "report-link";
      st.appendChild(a);
      const manifest = resp.headers.get("X-Vigil-Evidence-Manifest");
      if (manifest) st.appendChild(el("p", "Manifest SHA-256 " + manifest + ". Check it offline: vigil report verify -pubkey key.pem " + name, "mono"));
      const fr = $("#rframe");
      if (f.format === "html") { fr.src = lastURL; fr.classList.remove("hide"); } else { fr.classList.add("hide"); }
    } catch (e) { fail(st, e); }
  });

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
})();
