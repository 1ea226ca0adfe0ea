// Sortable tables: click a header (th[data-type]) to sort by it, again to reverse.
(function () {
  "use strict";
  function key(td, type) {
    var v = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim();
    if (type === "num") { var x = parseFloat(v); return isNaN(x) ? Infinity : x; }
    return v.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-type]").forEach(function (th, col) {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      function sort() {
        var type = th.dataset.type, body = table.tBodies[0];
        var dir = th.dataset.dir === "asc" ? -1 : 1;
        table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = dir === 1 ? "asc" : "desc";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], type), y = key(b.cells[col], type);
          return x < y ? -dir : x > y ? dir : 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  });
})();
