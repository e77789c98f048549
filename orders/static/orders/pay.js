/* The pay page: the demo provider's confirm button, or Stripe's Payment Element.
   Everything the page knows comes from its #pay-data JSON block (no inline script: the
   Content-Security-Policy allows scripts from this site and Stripe only). */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("pay-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const errorBox = document.getElementById("pay-error");
  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }
  // API messages are English for programs; the reader gets the text for the error's code.
  function errorText(body, fallback) {
    const e = body && body.error;
    return (e && data.errors[e.code]) || fallback;
  }
  function post(url) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Content-Type": "application/json"}, body: "{}"})
      .then(r => r.json().then(body => ({ok: r.ok, body})));
  }

  function demo() {
    const button = document.getElementById("demo-confirm");
    button.addEventListener("click", function () {
      button.disabled = true;
      post("/api/v1/payments/demo/" + data.order_id + "/confirm").then(function (res) {
        if (res.ok) { location.assign(data.order_url); return; }
        showError(errorText(res.body, data.text.failed));
        button.disabled = false;
      }).catch(function () { showError(data.text.network); button.disabled = false; });
    });
  }

  function stripePay() {
    const stripe = window.Stripe(data.publishable_key, {locale: data.locale});
    let elements;
    post("/api/v1/orders/" + data.order_id + "/payment").then(function (res) {
      if (!res.ok) { showError(errorText(res.body, data.text.failed)); return; }
      elements = stripe.elements({clientSecret: res.body.client_secret});
      elements.create("payment").mount("#payment-element");
      document.getElementById("stripe-submit").disabled = false;
    }).catch(function () { showError(data.text.network); });
    document.getElementById("payment-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      const submit = document.getElementById("stripe-submit");
      submit.disabled = true;
      // Card: confirmed in place; Alipay: Stripe redirects to return_url and back to the order
      // page; WeChat Pay: Stripe.js shows its QR code (next_action) and resolves once it is
      // scanned or closed.
      const result = await stripe.confirmPayment({elements, redirect: "if_required",
        confirmParams: {return_url: data.order_url}});
      if (result.error) { showError(result.error.message); submit.disabled = false; return; }
      if (result.paymentIntent.status === "requires_payment_method") {
        showError(data.text.incomplete);
        submit.disabled = false;
        return;
      }
      // Paid or processing: the signed webhook marks the order paid; the order page waits for it.
      location.assign(data.order_url + "?payment_intent=" +
        encodeURIComponent(result.paymentIntent.id));
    });
  }

  if (data.provider === "demo") demo(); else stripePay();
})();
