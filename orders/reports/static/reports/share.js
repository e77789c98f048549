/* Print button and select-to-copy on the report's stable link. */
(function () {
  "use strict";
  var print = document.getElementById("print-report");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
  var url = document.getElementById("share-url");
  if (url) { url.addEventListener("focus", function () { url.select(); }); }
})();
