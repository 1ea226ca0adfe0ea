// Home page: the sky plot of the targets the visitor may see (RA increasing to the left).
(function () {
  "use strict";
  var el = document.getElementById("sky");
  if (!el || !window.Plotly) return;
  fetch(el.dataset.api, {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (doc) {
      var t = doc.targets || [];
      var trace = {
        type: "scatter", mode: "markers+text", x: t.map(function (s) { return s.ra; }),
        y: t.map(function (s) { return s.dec; }), text: t.map(function (s) { return s.name; }),
        textposition: "top center", textfont: {size: 11},
        customdata: t.map(function (s) { return s.url; }),
        hovertext: t.map(function (s) {
          return s.name + "<br>" + (s.class || "") + "<br>RA " + s.ra.toFixed(4) + ", Dec " +
            s.dec.toFixed(4) + "<br>" + s.nights + " night(s)";
        }),
        hoverinfo: "text",
        marker: {size: t.map(function (s) { return 7 + Math.min(12, Math.sqrt(s.nights) * 2); }),
                 color: "#d9480f", line: {color: "#fff", width: 1}}
      };
      var layout = {
        margin: {l: 50, r: 10, t: 10, b: 40}, height: 320, showlegend: false,
        xaxis: {title: {text: "RA (deg, ICRS)"}, range: [372, -12], tickvals: [360, 330, 300, 270, 240, 210, 180, 150, 120, 90, 60, 30, 0], zeroline: false},
        yaxis: {title: {text: "Dec (deg)"}, range: [-95, 95], tickvals: [-90, -60, -30, 0, 30, 60, 90], zeroline: false},
        plot_bgcolor: "#0b1d36", paper_bgcolor: "rgba(0,0,0,0)"
      };
      layout.xaxis.gridcolor = layout.yaxis.gridcolor = "#2b3f5c";
      trace.textfont.color = "#e7eefa";
      Plotly.newPlot(el, [trace], layout, {responsive: true, displaylogo: false});
      el.dataset.count = String(t.length);
      el.on("plotly_click", function (ev) {
        var url = ev.points && ev.points[0] && ev.points[0].customdata;
        if (url) window.location.href = url;
      });
    });
})();
