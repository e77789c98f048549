/* The live page: pin card, buy sheet with demo pay, chat, toasts, viewers; re-syncs on reconnect.
   All user text goes in through textContent, never innerHTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("live-data").textContent);
  var text = JSON.parse(document.getElementById("live-text").textContent);
  var sessionId = data.session.id;
  var state = { status: data.session.status, pin: data.session.pinned, loggedIn: data.logged_in };
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var $ = function (id) { return document.getElementById(id); };
  var intentKey = null;

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] == null ? "" : String(values[k]); });
  }
  function money(amount) {
    var symbol = data.currency === "CNY" ? "¥" : data.currency + " ";
    return symbol + (amount / 100).toFixed(2);
  }
  function newKey() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : (Date.now() + "-" + Math.random().toString(36).slice(2));
  }

  function api(method, path, body, headers) {
    var h = Object.assign({ "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" }, headers || {});
    return fetch("/api/v1" + path, {
      method: method, headers: h, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      if (r.status === 204) return {};
      return r.json().catch(function () { return {}; }).then(function (json) {
        if (!r.ok) { var err = new Error(errorText(json.error)); err.code = json.error && json.error.code; err.status = r.status; throw err; }
        return json;
      });
    });
  }
  // API messages are English for programs: show the page's text for the error code instead
  // (the API's own message only when the page is in English and has no text for the code).
  function errorText(e) {
    return (e && text.errors && text.errors[e.code]) || (e && document.documentElement.lang === "en" && e.message) || text.error;
  }
  function refreshCsrf() {
    return api("GET", "/auth/csrf").then(function (j) { csrf = j.csrf_token; });
  }

  // --- pin card -------------------------------------------------------------------------------
  function renderPin() {
    var card = $("pin-card");
    var pin = state.pin;
    if (!pin || state.status !== "live") { card.hidden = true; return; }
    card.hidden = false;
    card.dataset.pinId = pin.id;
    $("pin-name").textContent = pin.product.name;
    var photo = $("pin-photo");
    if (pin.product.photo_url) { photo.src = pin.product.photo_url; photo.hidden = false; } else { photo.hidden = true; }
    var v = pin.variants[0];
    var lowest = pin.variants.reduce(function (a, b) { return a.live_price <= b.live_price ? a : b; }, v);
    $("pin-live-price").textContent = money(lowest.live_price);
    $("pin-price").textContent = lowest.price !== lowest.live_price ? money(lowest.price) : "";
    var stock = pin.variants.reduce(function (n, x) { return n + x.stock; }, 0);
    $("pin-stock").textContent = stock > 0 ? fmt(text.stock, { n: stock }) : text.sold_out;
    $("pin-limit").textContent = pin.per_buyer_limit ? fmt(text.limit, { n: pin.per_buyer_limit }) : "";
    $("buy-button").disabled = stock <= 0;
    if (!$("sheet").hidden && !$("buy-form").hidden) renderVariants(true);
  }

  // --- the buy sheet --------------------------------------------------------------------------
  function openSheet() {
    if (!state.pin) return;
    $("sheet").hidden = false;
    $("sheet-error").hidden = true;
    $("paid").hidden = true;
    $("sheet-title").textContent = state.pin.product.name;
    if (!state.loggedIn) { $("login-form").hidden = false; $("buy-form").hidden = true; return; }
    $("login-form").hidden = true;
    $("buy-form").hidden = false;
    intentKey = null;
    renderVariants(false);
    fillAddress();
  }
  function closeSheet() { $("sheet").hidden = true; }
  function selectedVariant() {
    var checked = document.querySelector('input[name="variant"]:checked');
    if (!checked || !state.pin) return null;
    return state.pin.variants.find(function (v) { return String(v.id) === checked.value; }) || null;
  }
  function renderVariants(keep) {
    var list = $("variant-list");
    var before = keep && selectedVariant();
    list.textContent = "";
    var inStock = state.pin.variants.filter(function (v) { return v.stock > 0; });
    var defaultId = (inStock[0] || state.pin.variants[0]).id;
    state.pin.variants.forEach(function (v) {
      var label = document.createElement("label");
      label.className = "variant";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "variant"; input.value = v.id;
      input.disabled = v.stock <= 0;
      input.checked = before ? before.id === v.id : v.id === defaultId;
      var name = document.createElement("span"); name.textContent = v.name + " ";
      var live = document.createElement("strong"); live.className = "price"; live.textContent = money(v.live_price);
      var regular = document.createElement("s"); regular.className = "muted"; regular.textContent = v.price !== v.live_price ? " " + money(v.price) : "";
      var stock = document.createElement("small"); stock.className = "muted"; stock.textContent = " " + (v.stock > 0 ? fmt(text.stock, { n: v.stock }) : text.sold_out);
      label.append(input, name, live, regular, stock);
      list.appendChild(label);
    });
    var q = $("quantity");
    q.max = state.pin.per_buyer_limit || 99;
    updateTotal();
  }
  function updateTotal() {
    var v = selectedVariant();
    var q = parseInt($("quantity").value, 10) || 1;
    $("sheet-total").textContent = v ? money(v.live_price * q) : "";
  }
  function fillAddress() {
    var form = $("buy-form");
    var addr = data.address || {};
    ["name", "phone", "region", "detail"].forEach(function (f) {
      if (addr[f] && !form.elements[f].value) form.elements[f].value = addr[f];
    });
  }
  function showSheetError(message) { var e = $("sheet-error"); e.textContent = message; e.hidden = false; }

  function pay(event) {
    event.preventDefault();
    var v = selectedVariant();
    if (!v) return;
    var form = $("buy-form");
    var body = {
      variant_id: v.id,
      quantity: parseInt($("quantity").value, 10) || 1,
      address: { name: form.elements.name.value, phone: form.elements.phone.value, region: form.elements.region.value, detail: form.elements.detail.value },
    };
    var signature = JSON.stringify(body);
    if (!intentKey || intentKey.signature !== signature) intentKey = { key: newKey(), signature: signature };
    var button = $("pay-button");
    button.disabled = true; button.textContent = text.paying;
    $("sheet-error").hidden = true;
    var order;
    api("POST", "/live-sessions/" + sessionId + "/checkout", body, { "Idempotency-Key": intentKey.key })
      .then(function (o) { order = o; data.address = body.address; return api("POST", "/orders/" + o.id + "/payment"); })
      .then(function (p) {
        if (p.provider === "demo") return api("POST", "/payments/demo/" + order.id + "/confirm");
        window.location.href = "/orders/" + order.id; // Stripe pays on the order page
        return null;
      })
      .then(function (paid) {
        if (!paid) return;
        intentKey = null;
        $("buy-form").hidden = true;
        $("paid").hidden = false;
        $("paid-number").textContent = paid.number || order.number;
        $("paid-link").href = "/orders/" + order.id;
      })
      .catch(function (err) {
        if (err.code && err.status && err.status < 500) intentKey = null; // a refused tap is settled
        showSheetError(err.message);
      })
      .finally(function () { button.disabled = false; button.textContent = text.pay; });
  }

  function login(event) {
    event.preventDefault();
    var form = $("login-form");
    api("POST", "/auth/login", { email: form.elements.email.value, password: form.elements.password.value })
      .then(function (user) {
        state.loggedIn = true;
        return refreshCsrf().then(function () {
          return api("GET", "/live-sessions/" + sessionId + "/checkout-defaults");
        }).then(function (d) { data.address = d.address; data.user_name = user.name; });
      })
      .then(function () {
        $("chat-form") && ($("chat-form").hidden = false);
        $("chat-login") && ($("chat-login").hidden = true);
        if (socket) { socket.disconnect(); socket.connect(); } // the socket learns who we are
        if (state.pin && state.status === "live") openSheet(); else closeSheet();
      })
      .catch(function (err) { showSheetError(err.message); });
  }

  // --- chat and questions ---------------------------------------------------------------------
  function messageItem(m) {
    var li = document.createElement("li");
    li.dataset.id = m.id;
    li.className = "msg " + m.kind + (m.answered ? " answered" : "");
    var who = document.createElement("strong"); who.textContent = m.user_name + ": ";
    var body = document.createElement("span"); body.className = "body"; body.textContent = m.body;
    li.append(who, body);
    if (m.kind === "question") {
      var badge = document.createElement("small"); badge.className = "answered-badge"; badge.textContent = " ✓ " + text.answered;
      li.appendChild(badge);
      var votes = document.createElement("button");
      votes.type = "button"; votes.className = "link vote"; votes.textContent = " +" + (m.votes || 0);
      votes.title = text.me_too;
      votes.addEventListener("click", function () {
        if (!state.loggedIn) return;
        api("POST", "/live-sessions/" + sessionId + "/messages/" + m.id + "/vote")
          .then(function (q) { votes.textContent = " +" + q.votes; }).catch(function () {});
      });
      li.appendChild(votes);
    }
    return li;
  }
  function addMessage(m) {
    if (document.querySelector('.msg[data-id="' + m.id + '"]')) return;
    var list = m.kind === "question" ? $("questions") : $("messages");
    list.appendChild(messageItem(m));
    while (list.children.length > 200) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
  }
  function loadMessages() {
    return api("GET", "/live-sessions/" + sessionId + "/messages").then(function (j) {
      $("messages").textContent = ""; $("questions").textContent = "";
      j.items.forEach(addMessage);
    }).catch(function () {});
  }
  function sendMessage(event) {
    event.preventDefault();
    var input = $("chat-body");
    var body = input.value.trim();
    if (!body || !socket) return;
    var kind = $("chat-question").checked ? "question" : "chat";
    socket.emit("message", { session_id: sessionId, body: body, kind: kind }, function (ack) {
      var e = $("chat-error");
      if (ack && ack.ok) { input.value = ""; e.hidden = true; }
      else { e.textContent = errorText(ack && ack.error); e.hidden = false; }
    });
  }

  function toast(message) {
    var t = document.createElement("div");
    t.className = "toast"; t.textContent = message;
    $("toasts").appendChild(t);
    setTimeout(function () { t.remove(); }, 4000);
  }
  function setStatus(status) {
    var was = state.status;
    state.status = status;
    var badge = $("status-badge");
    badge.textContent = text[status] || status; badge.className = "badge " + status; badge.dataset.status = status;
    $("live").dataset.status = status;
    if (status === "ended" && was !== "ended") { window.location.reload(); return; }
    renderPin();
  }

  // --- socket ---------------------------------------------------------------------------------
  // A whole audience drops at once (a process restart, a network blip): Socket.IO's own
  // reconnection spreads them out (delays doubling from ~1 s up to ~10 s, each ±50 %), so they
  // do not all come back in the same second.
  var socket = window.io ? window.io("/live", {
    transports: ["websocket", "polling"],
    reconnectionDelay: 1000, reconnectionDelayMax: 10000, randomizationFactor: 0.5,
  }) : null;
  if (socket) {
    // Who counts as a viewer is the server's to say (the login, or this browser's signed
    // cookie). A join that is refused (any code: unavailable, too_many_requests, …) or not
    // answered within JOIN_TIMEOUT is tried again while connected, after an exponential back-off
    // with full jitter, so a connected page is never left deaf. One join at a time: `epoch`
    // changes with every disconnect, so an answer meant for a dropped connection is ignored.
    var JOIN_TIMEOUT = 8000, BACKOFF_FIRST = 500, BACKOFF_MOST = 10000;
    var joining = { epoch: 0, inFlight: false, timer: null, failures: 0, ever: false };
    var showConnState = function (show) {
      var el = $("conn-state");
      el.textContent = joining.ever ? text.reconnecting : text.connecting;
      el.hidden = !show;
    };
    var setJoined = function (yes) {
      $("live").dataset.joined = yes ? "true" : "false";
      showConnState(!yes);
    };
    var resync = function (s) { // the truth after a (re)join: status, pin with its stock, viewers
      var had = state.pin;
      if (!s.pinned || !had || had.id !== s.pinned.id) intentKey = null;
      state.pin = s.pinned;
      $("viewer-count").textContent = s.viewers;
      if (s.status !== state.status) setStatus(s.status); else renderPin();
      if (had && !s.pinned && !$("sheet").hidden && !$("buy-form").hidden) { closeSheet(); toast(text.unpinned); }
      loadMessages();
    };
    var retryJoin = function () {
      if (joining.timer || joining.inFlight || !socket.connected) return;
      var delay = Math.random() * Math.min(BACKOFF_MOST, BACKOFF_FIRST * Math.pow(2, joining.failures));
      joining.failures += 1;
      joining.timer = setTimeout(function () { joining.timer = null; join(); }, delay);
    };
    var join = function () {
      if (joining.inFlight || !socket.connected) return;
      clearTimeout(joining.timer); joining.timer = null;
      var epoch = joining.epoch;
      joining.inFlight = true;
      socket.timeout(JOIN_TIMEOUT).emit("join", { session_id: sessionId }, function (err, ack) {
        if (epoch !== joining.epoch) return; // meant for a connection that has since dropped
        joining.inFlight = false;
        if (err || !ack || !ack.ok) { setJoined(false); retryJoin(); return; }
        joining.failures = 0;
        joining.ever = true;
        setJoined(true);
        resync(ack.state);
      });
    };
    var dropped = function () {
      joining.epoch += 1;
      joining.inFlight = false;
      clearTimeout(joining.timer); joining.timer = null;
      setJoined(false);
    };
    socket.on("connect", join);
    socket.on("connect_error", function () {
      showConnState(true);
      // refused by the server (too many sockets from this address): try again a little later
      if (!socket.active) setTimeout(function () { socket.connect(); }, 5000 + Math.random() * 10000);
    });
    socket.on("disconnect", dropped);
    setTimeout(function () { if ($("live").dataset.joined !== "true") showConnState(true); }, 2000);
    socket.on("pinned", function (m) { if (m.session_id !== sessionId) return; state.pin = m.pin; intentKey = null; renderPin(); });
    socket.on("unpinned", function (m) {
      if (m.session_id !== sessionId) return;
      state.pin = null; renderPin();
      if (!$("sheet").hidden && !$("buy-form").hidden) { closeSheet(); toast(text.unpinned); }
    });
    socket.on("stock", function (m) {
      if (!state.pin || m.session_id !== sessionId) return;
      state.pin.variants.forEach(function (v) { if (v.id === m.variant_id) v.stock = m.stock; });
      renderPin();
    });
    socket.on("sale", function (m) {
      if (m.session_id !== sessionId) return;
      toast(fmt(text.bought, { buyer: m.buyer, quantity: m.quantity, product: m.product_name }));
    });
    socket.on("viewers", function (m) { if (m.session_id === sessionId) $("viewer-count").textContent = m.count; });
    socket.on("message", function (m) { if (m.session_id === sessionId) addMessage(m); });
    socket.on("message_update", function (m) {
      var el = document.querySelector('.msg[data-id="' + m.id + '"]');
      if (!el) return;
      if (m.hidden) { el.remove(); return; }
      el.classList.toggle("answered", !!m.answered);
      var votes = el.querySelector(".vote");
      if (votes) votes.textContent = " +" + m.votes;
    });
    socket.on("status", function (m) { if (m.session_id === sessionId) setStatus(m.status); });
  } else {
    loadMessages();
  }

  // --- wiring ---------------------------------------------------------------------------------
  $("buy-button").addEventListener("click", openSheet);
  $("sheet-close").addEventListener("click", closeSheet);
  $("back-to-stream").addEventListener("click", closeSheet);
  $("sheet").addEventListener("click", function (e) { if (e.target === $("sheet")) closeSheet(); });
  $("buy-form").addEventListener("submit", pay);
  $("buy-form").addEventListener("change", updateTotal);
  $("quantity").addEventListener("input", updateTotal);
  $("login-form").addEventListener("submit", login);
  if ($("chat-form")) $("chat-form").addEventListener("submit", sendMessage);
  if ($("chat-login-button")) $("chat-login-button").addEventListener("click", function () {
    $("sheet").hidden = false; $("buy-form").hidden = true; $("paid").hidden = true;
    $("sheet-title").textContent = text.login_to_buy; $("login-form").hidden = false;
  });
  document.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () {
      document.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t === tab); });
      $("messages").hidden = tab.dataset.tab !== "chat";
      $("questions").hidden = tab.dataset.tab !== "question";
      $("chat-question") && ($("chat-question").checked = tab.dataset.tab === "question");
    });
  });
  renderPin();
})();
