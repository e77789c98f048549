/* Behaviour every page shares, declared in the markup instead of inline handlers (the
   Content-Security-Policy runs no inline code): a form with data-confirm asks before it is sent;
   a button with data-print prints the page. */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    const ask = e.target.dataset && e.target.dataset.confirm;
    if (ask && !window.confirm(ask)) e.preventDefault();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) {
      e.preventDefault();
      window.print();
    }
  });
})();
