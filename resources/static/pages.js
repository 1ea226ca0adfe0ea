/* SKVO service pages: run a VO query with RESPONSEFORMAT=json and show its first rows.
   No library: the pages call the real VO endpoints (/tap/sync, /scs, ...) and render
   the JSON table ({"columns", "data", "infos"}) or the DALI error in plain words. */
(function () {
  "use strict";

  var SHOWN = 100;  // rows the ADQL form shows in the page

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  /* The message of a DALI error document (VOTable with QUERY_STATUS=ERROR). */
  function daliMessage(text) {
    try {
      var doc = new DOMParser().parseFromString(text, "application/xml");
      var infos = doc.getElementsByTagName("INFO");
      for (var i = 0; i < infos.length; i++) {
        var name = infos[i].getAttribute("name");
        if ((name === "QUERY_STATUS" && infos[i].getAttribute("value") === "ERROR") ||
            name === "Error") {
          return (infos[i].textContent || infos[i].getAttribute("value") || "").trim();
        }
      }
    } catch (e) { /* not XML: show the text */ }
    return text.trim().slice(0, 600);
  }

  function cell(value) {
    var td = el("td");
    if (value === null || value === undefined) { td.className = "null"; return td; }
    if (Array.isArray(value)) { value = value.join(" "); }
    if (typeof value === "string" && /^https?:\/\//.test(value)) {
      var a = el("a", {href: value}, value.length > 60 ? "…" + value.slice(-48) : value);
      td.appendChild(a);
      return td;
    }
    if (typeof value === "number") {
      td.className = "num";
      // 12 significant digits: MJDs to 10 ms, magnitudes and positions in full
      if (!Number.isInteger(value)) { value = Number(value.toPrecision(12)); }
    }
    td.textContent = String(value);
    return td;
  }

  function showTable(out, doc, limit) {
    out.textContent = "";
    var rows = doc.data || [];
    var overflow = (doc.infos || []).some(function (i) {
      return i.name === "QUERY_STATUS" && i.value === "OVERFLOW";
    });
    var failed = (doc.infos || []).filter(function (i) {
      return i.name === "QUERY_STATUS" && i.value === "ERROR";
    });
    var shown = Math.min(rows.length, limit || rows.length);
    var summary = rows.length + " row" + (rows.length === 1 ? "" : "s") +
      (overflow ? " " + (out.dataset.more || "(more exist: raise MAXREC)") : "") +
      (shown < rows.length ? "; the first " + shown + " are shown" : "");
    out.appendChild(el("p", {"class": "summary"}, summary));
    failed.forEach(function (i) {
      out.appendChild(el("p", {"class": "error", role: "alert"}, i.content || "the query failed"));
    });
    var wrap = el("div", {"class": "scroll"});
    var table = el("table", {"class": "rows"});
    var head = el("tr");
    (doc.columns || []).forEach(function (c) {
      var th = el("th", {title: [c.description, c.ucd].filter(Boolean).join(" · ")}, c.name);
      if (c.unit) { th.appendChild(el("span", {"class": "unit"}, " [" + c.unit + "]")); }
      head.appendChild(th);
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    rows.slice(0, shown).forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (v) { tr.appendChild(cell(v)); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(table);
    out.appendChild(wrap);
  }

  function showError(out, message) {
    out.textContent = "";
    var p = el("p", {"class": "error", role: "alert"});
    p.appendChild(el("strong", {}, "The service refused the query: "));
    p.appendChild(document.createTextNode(message));
    out.appendChild(p);
  }

  /* Fetch a VO URL as JSON and show it in `out` (errors in words, never a stack). */
  function load(out, url, init, limit) {
    out.textContent = "";
    out.appendChild(el("p", {"class": "busy"}, "Running…"));
    out.setAttribute("aria-busy", "true");
    return fetch(url, Object.assign({credentials: "same-origin"}, init || {}))
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        return response.text().then(function (text) {
          if (response.ok && type.indexOf("json") >= 0) {
            showTable(out, JSON.parse(text), limit);
          } else {
            showError(out, daliMessage(text) || ("HTTP " + response.status));
          }
        });
      })
      .catch(function (e) { showError(out, "no answer from the service (" + e.message + ")"); })
      .finally(function () { out.removeAttribute("aria-busy"); });
  }

  function csrfHeaders(form) {
    var token = form.querySelector("input[name=_csrf_token]");
    return token ? {"X-CSRF-Token": token.value} : {};
  }

  /* The ADQL form: "Run query" shows rows here, "Download" submits the form itself. */
  function adqlForm(form) {
    var out = document.querySelector(".result");
    function run() {
      var data = new FormData(form);
      data.set("RESPONSEFORMAT", "json");
      var maxrec = parseInt(data.get("MAXREC"), 10);
      data.set("MAXREC", String(isNaN(maxrec) ? SHOWN : Math.min(maxrec, SHOWN)));
      data.delete("_csrf_token");
      return load(out, form.action, {method: "POST", body: new URLSearchParams(data),
                                     headers: csrfHeaders(form)}, SHOWN);
    }
    form.querySelector("button.run").addEventListener("click", run);
    form.querySelector("textarea").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
    });
    if (form.dataset.autorun) { run(); }
  }

  /* The info pages' small forms (SCS, SSA, SIA, DataLink). */
  function voForm(form) {
    var out = form.parentNode.querySelector(".result");
    function url(format) {
      var params = new URLSearchParams(form.dataset.extra || "");
      new FormData(form).forEach(function (v, k) { if (String(v).trim()) { params.set(k, v); } });
      if (format) { params.set("RESPONSEFORMAT", format); }
      return form.dataset.action + "?" + params.toString();
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      load(out, url("json"));
    });
    var link = form.querySelector("a.as-votable");
    if (link) {
      link.addEventListener("click", function () { link.href = url("votable"); });
    }
  }

  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      if (navigator.clipboard) {
        navigator.clipboard.writeText(b.dataset.copy).then(function () {
          b.textContent = "Copied";
        }, function () { b.textContent = "Select and copy"; });
      }
    });
  });
  document.querySelectorAll("form.adql-form").forEach(adqlForm);
  document.querySelectorAll("form.vo-query").forEach(voForm);
  document.querySelectorAll(".result[data-load]").forEach(function (out) {
    load(out, out.dataset.load);
  });
})();
