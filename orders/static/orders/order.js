/* The order page while a payment is being confirmed: the webhook marks the order paid; poll its
   status and reload once it moved. The URL to poll is on #payment-waiting. */
(function () {
  "use strict";
  const waiting = document.getElementById("payment-waiting");
  if (!waiting || !waiting.dataset.poll) return;
  (function poll() {
    fetch(waiting.dataset.poll, {credentials: "same-origin"})
      .then(r => r.json())
      .then(o => {
        if (o.status && o.status !== "pending_payment") location.replace(location.pathname);
        else setTimeout(poll, 2000);
      })
      .catch(() => setTimeout(poll, 4000));
  })();
})();
