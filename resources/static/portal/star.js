// The star page: the light curve over all nights, the fold, the periodogram and the
// downloads of exactly what is shown. The points come from /portal/api/star/<id>/curve
// (the star curves of /lightcurve/star); periodograms from /analysis/periodogram.
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("page-data").textContent);
  var MJD_UNIX = 40587.0, DAY_MS = 86400000;
  var COLOURS = {
    "johnson.u": "#7b2cbf", "johnson.b": "#1c64d4", "johnson.v": "#2b9348",
    "johnson.r": "#d00000", "cousins.r": "#d00000", "cousins.i": "#7f1d1d",
    "sdss.g": "#0f9d8a", "sdss.r": "#e36414", "sdss.i": "#6d4c41"
  };
  var SPARE = ["#5e548e", "#9c6644", "#00798c", "#c9184a", "#52796f", "#bc6c25"];
  var state = {doc: null, axis: "mjd", timesys: "", range: null, hidden: {},
               period: null, epoch: null, folded: false};
  var $ = function (id) { return document.getElementById(id); };

  function colour(band) {
    if (!COLOURS[band]) COLOURS[band] = SPARE[Object.keys(COLOURS).length % SPARE.length];
    return COLOURS[band];
  }
  function status(id, text, bad) {
    var el = $(id);
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
  }
  function partName(part) {
    var same = state.doc.parts.filter(function (p) { return p.band === part.band; });
    var name = part.band;
    if (same.length > 1) name += " (" + part.refposition.toLowerCase() + ")";
    if (part.calibration === "dif") name += " Δmag";
    return name;
  }
  // What the time axis holds, e.g. "MJD (UTC, heliocentric)" or "BJD_TDB − 2400000.5".
  function timeLabel() {
    var parts = state.doc ? state.doc.parts : [];
    if (!parts.length) return "MJD";
    var p = parts[0];
    if (p.converted) return p.converted.slice(0, 3) + "_" + p.timescale + " − 2400000.5 (MJD, " +
      p.refposition.toLowerCase() + ")";
    var refs = {};
    parts.forEach(function (q) { refs[q.timescale + ", " + q.refposition.toLowerCase()] = 1; });
    return "MJD (" + Object.keys(refs).join("; ") + ", as delivered)";
  }
  function toAxis(t) { return state.axis === "date" ? (t - MJD_UNIX) * DAY_MS : t; }
  function fromAxis(x) {
    if (state.axis !== "date") return Number(x);
    var ms = typeof x === "number" ? x : Date.parse(String(x).replace(" ", "T") + "Z");
    return ms / DAY_MS + MJD_UNIX;
  }
  function inRange(t) {
    return !state.range || (t >= state.range[0] && t <= state.range[1]);
  }
  function visibleParts() {
    return state.doc.parts.filter(function (p) { return !state.hidden[partName(p)]; });
  }

  // ---------------------------------------------------------------- the curve
  // Error bars are drawn while at most this many points are in view (software WebGL
  // draws 100,000 error bars slowly); zoom in and they appear.
  var ERRORBAR_MAX = 20000;
  var traceInfo = [];  // per curve trace: {part: index, frames: [point indices] or null}

  function unpack(col) {
    var bin = atob(col.b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var kind = {f8: Float64Array, f4: Float32Array, i4: Int32Array}[col.dtype];
    return new kind(bytes.buffer);
  }
  function errorBars(p, on) {
    return {type: "data", array: p.e, visible: on, thickness: 0.7, width: 0,
            color: colour(p.band) + "88"};
  }
  function drawCurve() {
    var many = countShown() > ERRORBAR_MAX;
    state.errorBars = !many;
    var traces = [];
    traceInfo = [];
    state.doc.parts.forEach(function (p, i) {
      var name = partName(p), visible = state.hidden[name] ? "legendonly" : true;
      var dif = p.calibration === "dif";
      traces.push({
        type: "scattergl", mode: "markers", name: name, x: p.t.map(toAxis), y: p.m,
        customdata: p.e,
        hovertemplate: "%{fullData.name}<br>" + (state.axis === "date" ? "%{x}" : "%{x:.5f}") +
          "<br>%{y:.4f} ± %{customdata:.4f} mag<extra></extra>",
        error_y: errorBars(p, !many), marker: {size: 4, color: colour(p.band)},
        visible: visible, dif: dif
      });
      traceInfo.push({part: i, frames: null});
      var withFrame = [];
      p.f.forEach(function (f, j) { if (f >= 0) withFrame.push(j); });
      if (withFrame.length) {  // points with a frame: open squares over them
        traces.push({
          type: "scattergl", mode: "markers", name: name + " frames",
          x: withFrame.map(function (j) { return toAxis(p.t[j]); }),
          y: withFrame.map(function (j) { return p.m[j]; }),
          customdata: withFrame.map(function (j) { return p.e[j]; }),
          hovertemplate: "%{fullData.name}<br>" + (state.axis === "date" ? "%{x}" : "%{x:.5f}") +
            "<br>%{y:.4f} ± %{customdata:.4f} mag<br>▢ has a frame: click<extra></extra>",
          marker: {size: 9, symbol: "square-open", color: colour(p.band), line: {width: 1.5}},
          visible: visible, dif: dif, showlegend: false
        });
        traceInfo.push({part: i, frames: withFrame});
      }
    });
    var layout = {
      margin: {l: 60, r: 10, t: 10, b: 50}, height: 440, dragmode: "zoom",
      uirevision: state.axis + state.timesys, hovermode: "closest", showlegend: false,
      xaxis: {title: {text: state.axis === "date" ? "calendar date of " + timeLabel() : timeLabel()},
              type: state.axis === "date" ? "date" : "linear", zeroline: false,
              exponentformat: "none", separatethousands: false},
      yaxis: {title: {text: "magnitude"}, autorange: "reversed", zeroline: false}
    };
    if (state.range) layout.xaxis.range = state.range.map(toAxis);
    magAxes(layout, traces);
    var el = $("curve");
    return Plotly.react(el, traces, layout, {responsive: true, displaylogo: false,
                                            modeBarButtonsToRemove: ["lasso2d"]})
      .then(function () {
        el.dataset.points = String(countShown());
        el.dataset.ready = "1";
      });
  }
  // The point under the pointer or clicked: its part and index in the part's columns.
  function pointOf(pt) {
    var info = traceInfo[pt.curveNumber];
    if (!info) return null;
    return {part: state.doc.parts[info.part],
            index: info.frames ? info.frames[pt.pointIndex] : pt.pointIndex};
  }
  function tracesOf(partIndex) {
    var out = [];
    traceInfo.forEach(function (info, k) { if (info.part === partIndex) out.push(k); });
    return out;
  }
  function updateErrorBars() {
    var on = countShown() <= ERRORBAR_MAX;
    if (on === state.errorBars) return;  // a restyle redraws every point
    state.errorBars = on;
    var idx = [];
    traceInfo.forEach(function (info, k) { if (!info.frames) idx.push(k); });
    Plotly.restyle($("curve"), {"error_y.visible": on}, idx);
  }
  // Differential magnitudes get an axis of their own (right), never mixed with absolute ones.
  function magAxes(layout, traces) {
    var dif = traces.some(function (t) { return t.dif; });
    var abs = traces.some(function (t) { return !t.dif && t.mode === "markers"; });
    traces.forEach(function (t) { t.yaxis = dif && abs && t.dif ? "y2" : "y"; });
    if (dif && abs) {
      layout.yaxis2 = {title: {text: "Δmag (differential)"}, overlaying: "y", side: "right",
                       autorange: "reversed", zeroline: false, showgrid: false};
      layout.margin.r = 60;
    } else if (dif) {
      layout.yaxis.title.text = "Δmag (differential)";
    }
  }
  function countShown() {
    return visibleParts().reduce(function (n, p) { return n + p.t.filter(inRange).length; }, 0);
  }
  function describe() {
    var parts = visibleParts(), n = countShown();
    var text = n + " points of " + parts.map(partName).join(", ") + " shown";
    if (state.range) text += ", " + timeLabel().split(" (")[0] + " " + state.range[0].toFixed(4) +
      " – " + state.range[1].toFixed(4);
    if (state.doc.withheld) text += "; " + state.doc.withheld + " locked night(s) not shown (they need a grant)";
    return text + ".";
  }
  function bindCurve() {
    var el = $("curve");
    el.on("plotly_relayout", function (ev) {
      if (ev["xaxis.autorange"]) setRange(null, true);
      else if (ev["xaxis.range[0]"] !== undefined) {
        setRange([fromAxis(ev["xaxis.range[0]"]), fromAxis(ev["xaxis.range[1]"])], true);
      }
    });
    el.on("plotly_restyle", function (ev) {
      if (ev && ev[0] && ev[0]["error_y.visible"] !== undefined) return;
      traceInfo.forEach(function (info, k) {
        if (!info.frames) {
          state.hidden[partName(state.doc.parts[info.part])] = el.data[k].visible === "legendonly";
        }
      });
      syncToggles();
      shown();
    });
    el.on("plotly_click", function (ev) {
      var at = ev.points && ev.points[0] && pointOf(ev.points[0]);
      if (at) showFrame(at.part, at.index);
    });
    el.on("plotly_hover", function (ev) {
      var at = ev.points && ev.points[0] && pointOf(ev.points[0]);
      if (!at) return;
      var night = state.doc.nights[at.part.k[at.index]] || {};
      $("hover-info").textContent = partName(at.part) + " · " + timeLabel().split(" (")[0] +
        " " + at.part.t[at.index].toFixed(5) + " · " + at.part.m[at.index].toFixed(4) + " ± " +
        at.part.e[at.index].toFixed(4) + " mag · night " + (night.night || "?") + " (" +
        (night.source || "?") + ", " + (night.instrument || "?") + ")" +
        (at.part.f[at.index] >= 0 ? " · has a frame: click" : "");
    });
    el.on("plotly_selected", function (ev) {
      if (!ev || !ev.points || !ev.points.length) return;
      var ts = ev.points.map(function (p) { var at = pointOf(p); return at.part.t[at.index]; });
      var lo = Math.min.apply(null, ts), hi = Math.max.apply(null, ts);
      $("t-lo").value = lo.toFixed(5);
      $("t-hi").value = hi.toFixed(5);
      status("curve-status", ev.points.length + " points selected (" + lo.toFixed(4) + " – " +
        hi.toFixed(4) + "); press Cut to keep only their time range.");
    });
  }
  function showFrame(part, index) {
    var frame = part.f[index];
    var night = state.doc.nights[part.k[index]] || {};
    var caption = partName(part) + ", " + timeLabel().split(" (")[0] + " " +
      part.t[index].toFixed(5) + ": " + part.m[index].toFixed(4) + " ± " +
      part.e[index].toFixed(4) + " mag, night " + (night.night || "?") + " (" +
      (night.source || "?") + ", " + (night.instrument || "?") + ")";
    if (frame < 0) {
      status("curve-status", caption + "; this point has no frame.");
      return;
    }
    $("frame-img").src = page.base_url + "/frame/" + frame;
    $("frame-img").dataset.frame = String(frame);
    $("frame-caption").textContent = caption;
    $("frame-view").hidden = false;
  }
  function setRange(range, fromPlot) {
    state.range = range;
    $("t-lo").value = range ? range[0].toFixed(5) : "";
    $("t-hi").value = range ? range[1].toFixed(5) : "";
    if (!fromPlot) {
      Plotly.relayout($("curve"), range ? {"xaxis.range": range.map(toAxis)}
                                        : {"xaxis.autorange": true});
    }
    shown();
  }
  function shown() {
    $("curve").dataset.points = String(countShown());
    updateErrorBars();
    status("curve-status", describe());
    if (state.folded) drawFold();
    updateDownloads();
  }

  // ----------------------------------------------------------- band toggles
  function buildToggles() {
    var box = $("band-toggles");
    box.innerHTML = "";
    state.doc.parts.forEach(function (p) {
      var name = partName(p), label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !state.hidden[name];
      input.dataset.part = name;
      input.addEventListener("change", function () {
        state.hidden[name] = !input.checked;
        Plotly.restyle($("curve"), {visible: input.checked ? true : "legendonly"},
                       tracesOf(state.doc.parts.indexOf(p)));
      });
      label.className = "band-toggle";
      label.style.borderColor = colour(p.band);
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + name + " (" + p.n + ")"));
      box.appendChild(label);
    });
    var sel = $("pg-band");
    sel.innerHTML = "";
    page.bands.forEach(function (b) {
      var o = document.createElement("option");
      o.value = o.textContent = b;
      sel.appendChild(o);
    });
    var best = state.doc.parts.slice().sort(function (a, b) { return b.n - a.n; })[0];
    if (best) sel.value = best.band;
  }
  function syncToggles() {
    document.querySelectorAll("#band-toggles input").forEach(function (i) {
      i.checked = !state.hidden[i.dataset.part];
    });
  }

  // ------------------------------------------------------------------ fold
  function foldValues() {
    var P = parseFloat($("period").value), E = parseFloat($("epoch").value || "0");
    if (!(P > 0) || !isFinite(E)) return null;
    return {period: P, epoch: E};
  }
  function phaseOf(t, f) {
    var ph = ((t - f.epoch) / f.period) % 1;
    return ph < 0 ? ph + 1 : ph;
  }
  function drawFold() {
    var f = foldValues();
    if (!f) {
      status("fold-status", "Give a period in days (and an epoch, MJD of phase 0).", true);
      return Promise.resolve();
    }
    state.folded = true;
    state.period = f.period;
    state.epoch = f.epoch;
    var traces = [], many = 2 * countShown() > ERRORBAR_MAX;
    visibleParts().forEach(function (p) {
      var x = [], y = [], e = [];
      p.t.forEach(function (t, i) {
        if (!inRange(t)) return;
        var ph = phaseOf(t, f);
        x.push(ph, ph + 1); y.push(p.m[i], p.m[i]); e.push(p.e[i], p.e[i]);
      });
      traces.push({type: "scattergl", mode: "markers", name: partName(p), x: x, y: y,
                   customdata: e,
                   hovertemplate: "%{fullData.name}<br>phase %{x:.4f}<br>%{y:.4f} ± " +
                     "%{customdata:.4f} mag<extra></extra>",
                   error_y: {type: "data", array: e, visible: !many, thickness: 0.6, width: 0,
                             color: colour(p.band) + "66"},
                   marker: {size: 4, color: colour(p.band)},
                   dif: p.calibration === "dif"});
    });
    var layout = {
      margin: {l: 60, r: 10, t: 10, b: 50}, height: 400, hovermode: "closest",
      showlegend: false,
      xaxis: {title: {text: "phase (P = " + f.period + " d, epoch MJD " + f.epoch + "), two cycles"},
              range: [0, 2], zeroline: false},
      yaxis: {title: {text: "magnitude"}, autorange: "reversed", zeroline: false}
    };
    var el = $("folded");
    var n = traces.reduce(function (s, t) { return s + t.x.length / 2; }, 0);
    return binned(f).then(function (extra) {
      var all = traces.concat(extra);
      magAxes(layout, all);
      return Plotly.react(el, all, layout, {responsive: true, displaylogo: false});
    }).then(function () {
      el.dataset.points = String(n);
      el.dataset.period = String(f.period);
      status("fold-status", n + " points folded at P = " + f.period + " d.");
      updateDownloads();
    });
  }
  // The binned overlay: the star curve endpoint bins it (BIN= in phase), one request per band.
  function binned(f) {
    if (!$("bin-on").checked) return Promise.resolve([]);
    var width = parseFloat($("bin-width").value);
    if (!(width > 0 && width <= 1)) {
      status("fold-status", "The bin width is a fraction of the period (0 to 1).", true);
      return Promise.resolve([]);
    }
    return Promise.all(visibleParts().map(function (p) {
      var url = curveUrl(p, "json", {BIN: String(width)});
      return fetch(url, {credentials: "same-origin"}).then(function (r) {
        if (!r.ok) return null;
        return r.json();
      }).then(function (doc) {
        if (!doc) return null;
        var names = doc.columns.map(function (c) { return c.name; });
        var iph = names.indexOf("phase"), im = names.indexOf("magnitude");
        var rows = doc.data.slice().sort(function (a, b) { return a[iph] - b[iph]; });
        var x = [], y = [];
        rows.forEach(function (r, i) {
          // no line across phases without points
          if (i && r[iph] - rows[i - 1][iph] > 1.5 * width) { x.push(null); y.push(null); }
          x.push(r[iph]);
          y.push(r[im]);
        });
        var gap = x.length && (x[0] + 1 - x[x.length - 1]) > 1.5 * width;
        return {type: "scatter", mode: "lines+markers", name: partName(p) + " binned",
                marker: {size: 5, color: colour(p.band), line: {color: "#000", width: 0.5}},
                dif: p.calibration === "dif",
                x: x.concat(gap ? [null] : [], x.map(function (v) { return v === null ? null : v + 1; })),
                y: y.concat(gap ? [null] : [], y),
                line: {color: colour(p.band), width: 2.5}, hoverinfo: "skip"};
      });
    })).then(function (list) { return list.filter(Boolean); });
  }

  // ----------------------------------------------------------- periodogram
  function votableTables(xml) {
    var doc = new DOMParser().parseFromString(xml, "text/xml");
    var out = {};
    Array.prototype.forEach.call(doc.getElementsByTagName("TABLE"), function (table) {
      var names = Array.prototype.map.call(table.getElementsByTagName("FIELD"),
                                           function (f) { return f.getAttribute("name"); });
      var rows = Array.prototype.map.call(table.getElementsByTagName("TR"), function (tr) {
        var row = {};
        Array.prototype.forEach.call(tr.getElementsByTagName("TD"), function (td, i) {
          row[names[i]] = td.textContent;
        });
        return row;
      });
      out[table.getAttribute("name")] = rows;
    });
    var error = Array.prototype.filter.call(doc.getElementsByTagName("INFO"), function (i) {
      return i.getAttribute("name") === "QUERY_STATUS" && i.getAttribute("value") === "ERROR";
    })[0];
    out.error = error ? error.textContent.trim() : null;
    return out;
  }
  function runPeriodogram() {
    var band = $("pg-band").value;
    var method = $("pg-method").value.split(":");
    var q = {ID: page.did[band], METHOD: method[0], NPEAKS: "5", RESPONSEFORMAT: "votable/td"};
    if (method[1]) q.NTERMS = method[1];
    if ($("pg-min").value) q.MINPERIOD = $("pg-min").value;
    if ($("pg-max").value) q.MAXPERIOD = $("pg-max").value;
    if (state.range) q.TIME = state.range[0].toFixed(6) + "/" + state.range[1].toFixed(6);
    if (state.timesys) q.TIMESYS = state.timesys;
    var url = page.base_url + "/analysis/periodogram?" + new URLSearchParams(q).toString();
    status("pg-status", "Computing the " + $("pg-method").selectedOptions[0].textContent +
      " periodogram of " + band + "…");
    $("pg-run").disabled = true;
    return fetch(url, {credentials: "same-origin"}).then(function (r) { return r.text(); })
      .then(function (xml) {
        $("pg-run").disabled = false;
        var t = votableTables(xml);
        if (t.error || !t.peaks) {
          status("pg-status", "The periodogram was refused: " + (t.error || "no answer"), true);
          return;
        }
        var grid = t.periodogram || [];
        Plotly.react($("pgram"), [{
          type: "scattergl", mode: "lines", name: "power",
          x: grid.map(function (r) { return +r.period; }),
          y: grid.map(function (r) { return +r.power; }), line: {color: "#1c64d4", width: 1}
        }, {
          type: "scatter", mode: "markers+text", name: "best peaks",
          x: t.peaks.map(function (r) { return +r.period; }),
          y: t.peaks.map(function (r) { return +r.power; }),
          text: t.peaks.map(function (r) { return r.rank; }), textposition: "top center",
          marker: {color: "#d00000", size: 8}
        }], {
          margin: {l: 60, r: 10, t: 20, b: 50}, height: 320, showlegend: false,
          xaxis: {title: {text: "period (d)"}, type: "log"},
          yaxis: {title: {text: q.METHOD === "pdm" ? "power = 1 − PDM θ" : "power"}}
        }, {responsive: true, displaylogo: false});
        var body = $("peaks").tBodies[0];
        body.innerHTML = "";
        t.peaks.forEach(function (r) {
          var tr = document.createElement("tr");
          var fap = r.fap && r.fap !== "" ? (+r.fap).toExponential(1) : "–";
          tr.innerHTML = "<td>" + r.rank + "</td><td class='period'>" + (+r.period).toFixed(5) +
            "</td><td>" + (+r.power).toFixed(4) + "</td><td>" + fap + "</td><td></td>";
          var b = document.createElement("button");
          b.type = "button";
          b.className = "fold-peak";
          b.textContent = "Fold at this peak";
          b.addEventListener("click", function () {
            $("period").value = r.period;
            if (r.epoch && r.epoch !== "") $("epoch").value = r.epoch;
            drawFold();
            $("fold-panel").scrollIntoView({behavior: "smooth"});
          });
          tr.cells[4].appendChild(b);
          body.appendChild(tr);
        });
        $("peaks").hidden = false;
        $("pgram").dataset.best = t.peaks.length ? t.peaks[0].period : "";
        status("pg-status", "Best period " + (+t.peaks[0].period).toFixed(5) + " d (" +
          grid.length + " trial periods, " + band + ").");
      }).catch(function (err) {
        $("pg-run").disabled = false;
        status("pg-status", "The periodogram failed: " + err.message, true);
      });
  }

  // -------------------------------------------------------------- downloads
  function query(extra) {
    var q = {};
    if (state.range) q.TIME = state.range[0].toFixed(6) + "/" + state.range[1].toFixed(6);
    if (state.timesys) q.TIMESYS = state.timesys;
    if (state.folded && state.period) {
      q.PERIOD = String(state.period);
      q.EPOCH = String(state.epoch);
    }
    Object.keys(extra || {}).forEach(function (k) { q[k] = extra[k]; });
    return q;
  }
  function curveUrl(part, format, extra) {
    var q = query(extra);
    var same = state.doc.parts.filter(function (p) { return p.band === part.band; });
    if (same.length > 1 && !part.converted) q.TIMEREF = part.refposition;
    q.RESPONSEFORMAT = format;
    return page.star_curve[part.band] + "?" + new URLSearchParams(q).toString();
  }
  function allUrl() {
    var parts = visibleParts(), bands = {};
    parts.forEach(function (p) { bands[p.band] = 1; });
    var q = query({BAND: Object.keys(bands).join(","), RESPONSEFORMAT: "votable"});
    return page.star_all + "?" + new URLSearchParams(q).toString();
  }
  // A path under the mount point as a URL for other programs (SAMP, scripts).
  function absolute(path) { return new URL(path, page.base_url + "/").href; }
  function link(href, text, cls) {
    return "<a class='" + cls + "' href='" + href.replace(/'/g, "%27") + "' download>" + text + "</a>";
  }
  function updateDownloads() {
    if (!state.doc) return;
    var list = $("downloads"), parts = visibleParts();
    list.innerHTML = parts.map(function (p) {
      return "<li><b>" + partName(p) + "</b>: " +
        link(curveUrl(p, "votable"), "VOTable", "dl-votable") + " · " +
        link(curveUrl(p, "csv"), "CSV", "dl-csv") + " · " +
        link(curveUrl(p, "ecsv"), "ECSV", "dl-ecsv") + "</li>";
    }).join("") + (parts.length > 1 ? "<li><b>all shown bands</b>: " +
      link(allUrl(), "one VOTable, a table per band", "dl-all") + "</li>" : "");
    var what = describe();
    if (state.folded) what += " Folded at P = " + state.period + " d (a phase column).";
    $("download-what").textContent = what;
    $("curve-urls").innerHTML = parts.map(function (p) {
      var u = absolute(curveUrl(p, "votable"));
      return "<a href='" + u.replace(/'/g, "%27") + "'>" + u.replace(/&/g, "&amp;") + "</a>";
    }).join("<br>");
  }
  function sendToTopcat() {
    if (!window.SkvoSamp) return;
    var url = absolute(allUrl());
    status("samp-status", "Asking the SAMP hub on localhost…");
    window.SkvoSamp.sendTable(url, page.target).then(function () {
      status("samp-status", "Sent: TOPCAT loads " + page.target +
        (page.anonymous ? "." : " (granted data need TOPCAT to log in too)."));
    }).catch(function () {
      status("samp-status", "No SAMP hub answered on localhost: start TOPCAT (it runs a hub), " +
        "accept the portal's registration, and try again.", true);
    });
  }

  // -------------------------------------------------------------- loading
  function load() {
    if (!page.fetchable) {
      status("curve-status", "Locked: every night of this star needs a grant; " + page.denial +
        ".", true);
      $("curve").dataset.ready = "1";
      $("curve").dataset.points = "0";
      return Promise.resolve();
    }
    status("curve-status", state.timesys ? "Converting every time to " + state.timesys +
      " (astropy, night by night, with each facility's location): this takes a few seconds " +
      "for many nights…" : "Loading the points…");
    var q = {};
    if (state.timesys) q.TIMESYS = state.timesys;
    var url = page.curve_api + (state.timesys ? "?" + new URLSearchParams(q) : "");
    var t0 = performance.now();
    return fetch(url, {credentials: "same-origin"}).then(function (r) {
      return r.json().then(function (doc) { return {ok: r.ok, doc: doc}; });
    }).then(function (res) {
      if (!res.ok) {
        status("curve-status", "Locked: " + res.doc.error, true);
        $("curve").dataset.ready = "1";
        $("curve").dataset.points = "0";
        return;
      }
      res.doc.parts.forEach(function (p) {
        ["t", "m", "e", "k", "f"].forEach(function (c) { p[c] = unpack(p[c]); });
      });
      state.doc = res.doc;
      var t1 = performance.now();
      buildToggles();
      return drawCurve().then(function () {
        state.timing = {fetch: t1 - t0, plot: performance.now() - t1};
        shown();
        if (state.folded) return drawFold();
      });
    });
  }

  function init() {
    if (page.band) {
      // a search narrowed to one band: the others start hidden (the legend shows them)
      page.bands.forEach(function (b) { if (b !== page.band) state.hidden[b] = true; });
    }
    if (page.time) {
      var bits = page.time.split("/");
      var lo = parseFloat(bits[0]), hi = parseFloat(bits[1]);
      if (isFinite(lo) && isFinite(hi)) state.range = [lo, hi];
    }
    $("axis").addEventListener("change", function () {
      state.axis = this.value;
      drawCurve();
    });
    $("timesys").addEventListener("change", function () {
      state.timesys = this.value;
      load();
    });
    $("apply-cut").addEventListener("click", function () {
      var lo = parseFloat($("t-lo").value), hi = parseFloat($("t-hi").value);
      if (isFinite(lo) && isFinite(hi) && lo < hi) setRange([lo, hi], false);
      else status("curve-status", "Give the cut as two MJDs, the start before the end.", true);
    });
    $("reset-cut").addEventListener("click", function () { setRange(null, false); });
    $("fold").addEventListener("click", drawFold);
    $("bin-on").addEventListener("change", function () { if (state.folded) drawFold(); });
    if ($("fold-stored")) {
      $("fold-stored").addEventListener("click", function () {
        $("period").value = page.ephemeris.period;
        $("epoch").value = page.ephemeris.epoch;
        drawFold();
      });
    }
    if (page.eclipsing) $("pg-method").value = "pdm";
    $("pg-run").addEventListener("click", runPeriodogram);
    $("samp-send").addEventListener("click", sendToTopcat);
    $("frame-close").addEventListener("click", function () { $("frame-view").hidden = true; });
    load().then(function () {
      if (state.doc) bindCurve();
      if (state.doc && page.ephemeris) drawFold();
    });
  }
  init();
  // for bench/bench_portal_plot.py: fetch the points again and plot them
  window.skvoStar = {reload: load, timing: function () { return state.timing; }};
})();
