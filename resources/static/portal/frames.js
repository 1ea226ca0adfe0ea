// Frame gallery: a click shows the frame at full size in a dialog.
(function () {
  "use strict";
  var box = document.getElementById("lightbox");
  if (!box || !box.showModal) return;
  document.querySelectorAll("a.frame-link").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      document.getElementById("lightbox-img").src = a.dataset.full;
      var cap = a.parentNode.querySelector("figcaption");
      document.getElementById("lightbox-caption").innerHTML = cap ? cap.innerHTML : "";
      box.showModal();
    });
  });
  box.addEventListener("click", function (e) { if (e.target === box) box.close(); });
})();
