// Cooperative dashboard: shipments paid while the page is open appear without a reload.
// Text goes in with textContent only; the card structure comes from a server-rendered <template>.
(function () {
  "use strict";
  var queue = document.getElementById("queue");
  var template = document.getElementById("shipment-template");
  if (!queue || !template || typeof io === "undefined") return;
  var labels = JSON.parse(document.getElementById("status-labels").textContent);
  var OPEN = ["pending", "packed"];

  function wanted(s) {
    var status = queue.dataset.status;
    var session = queue.dataset.liveSession;
    var coop = queue.dataset.cooperative;
    if (session && String(s.live_session_id) !== session) return false;
    if (coop && String(s.cooperative_id) !== coop) return false;
    if (status === "all") return s.status !== "cancelled";
    if (status === "open") return OPEN.indexOf(s.status) !== -1;
    return s.status === status;
  }

  function field(card, name) {
    return card.querySelector('[data-field="' + name + '"]');
  }

  function fill(card, s) {
    card.dataset.id = s.id;
    card.dataset.status = s.status;
    field(card, "order_number").textContent = s.order_number;
    field(card, "status").textContent = labels[s.status] || s.status;
    var address = s.address || {};
    field(card, "buyer").textContent = [address.name, address.region].filter(Boolean).join(" · ");
    field(card, "paid_at").textContent = new Date(s.created_at).toLocaleString();
    field(card, "tracking").textContent = s.tracking_number ? s.carrier + " " + s.tracking_number : "";
    var items = field(card, "items");
    items.replaceChildren();
    s.items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item.name + " × " + item.quantity;
      items.appendChild(li);
    });
    card.querySelectorAll("form[data-action]").forEach(function (form) {
      form.action = form.dataset.action.replace("{id}", s.id);
    });
    card.querySelectorAll("a[data-href]").forEach(function (a) {
      a.href = a.dataset.href.replace("{id}", s.id);
    });
  }

  function refreshCount() {
    var count = queue.querySelectorAll(".shipment").length;
    document.getElementById("queue-count").textContent = count;
    document.getElementById("queue-empty").hidden = count > 0;
  }

  function onShipment(s) {
    var card = queue.querySelector('.shipment[data-id="' + s.id + '"]');
    if (!wanted(s)) {
      if (card) card.remove();
    } else if (card) {
      fill(card, s);
    } else {
      card = template.content.firstElementChild.cloneNode(true);
      fill(card, s);
      card.classList.add("new");
      queue.appendChild(card);
    }
    refreshCount();
  }

  var socket = io("/coop", { transports: ["websocket", "polling"] });
  socket.on("shipment", onShipment);
  socket.on("connect", function () { queue.dataset.connected = "1"; });
  socket.on("disconnect", function () { queue.dataset.connected = ""; });
})();
