/* The host console: go live, pin at live prices, watch viewers and sales, moderate questions.
   User text is set through textContent only. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("console-data").textContent);
  var text = JSON.parse(document.getElementById("console-text").textContent);
  var sessionId = data.session.id;
  var state = { status: data.session.status, pin: data.session.pinned, lineup: data.lineup.slice(), peak: data.session.peak_viewers, order: "newest" };
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var $ = function (id) { return document.getElementById(id); };
  var products = {};
  data.products.forEach(function (p) { products[p.id] = p; });

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) { if (k === "text") node.textContent = props[k]; else node[k] = props[k]; });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function money(amount) { return (data.currency === "CNY" ? "¥" : data.currency + " ") + (amount / 100).toFixed(2); }
  function api(method, path, body) {
    return fetch("/api/v1" + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      if (r.status === 204) return {};
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { var err = new Error(errorText(j.error)); err.fields = (j.error && j.error.fields) || {}; throw err; }
        return j;
      });
    });
  }
  // API messages are English for programs: the page's text for the error code instead.
  function errorText(e) {
    return (e && text.errors && text.errors[e.code]) || (e && document.documentElement.lang === "en" && e.message) || text.error;
  }
  function fail(err) { var e = $("console-error"); e.textContent = err.message; e.hidden = false; }
  function ok() { $("console-error").hidden = true; }

  // --- status -----------------------------------------------------------------------------------
  function setStatus(status) {
    state.status = status;
    var badge = $("status-badge");
    badge.textContent = text[status] || status; badge.className = "badge " + status; badge.dataset.status = status;
    $("console").dataset.status = status;
    $("start-button").hidden = status !== "scheduled";
    $("end-button").hidden = status === "ended";
    renderLineup();
  }
  $("start-button").addEventListener("click", function () {
    api("POST", "/live-sessions/" + sessionId + "/start").then(function (s) { ok(); setStatus(s.status); }).catch(fail);
  });
  $("end-button").addEventListener("click", function () {
    if (!window.confirm(text.confirm_end)) return;
    api("POST", "/live-sessions/" + sessionId + "/end").then(function (s) { ok(); state.pin = null; renderPin(); setStatus(s.status); }).catch(fail);
  });

  // --- pin --------------------------------------------------------------------------------------
  function renderPin() {
    var p = state.pin;
    $("current-pin").textContent = p ? p.product.name + " · " + p.variants.map(function (v) {
      return v.name + " " + money(v.live_price) + " (" + text.stock + " " + v.stock + ")";
    }).join(", ") + (p.per_buyer_limit ? " · " + text.limit + " " + p.per_buyer_limit : "") : text.nothing;
    $("unpin-button").hidden = !p;
    document.querySelectorAll(".lineup-item").forEach(function (item) {
      item.classList.toggle("pinned", !!p && String(p.product.id) === item.dataset.productId);
    });
  }
  $("unpin-button").addEventListener("click", function () {
    api("DELETE", "/live-sessions/" + sessionId + "/pins/current").then(function () { ok(); state.pin = null; renderPin(); }).catch(fail);
  });

  function renderLineup() {
    var box = $("lineup");
    box.textContent = "";
    state.lineup.forEach(function (pid) {
      var p = products[pid];
      if (!p) return;
      var rows = p.variants.map(function (v) {
        var input = el("input", { type: "number", min: (v.min_live_price / 100).toFixed(2), max: (v.price / 100).toFixed(2), step: "0.01", value: (v.price / 100).toFixed(2), className: "live-price-input" });
        input.dataset.variantId = v.id;
        input.setAttribute("aria-label", text.live_price + " " + v.name);
        var problem = el("small", { className: "error price-error", hidden: true });
        problem.dataset.variantId = v.id;
        return el("label", { className: "variant-row" }, [
          el("span", { text: v.name + " " }), el("s", { className: "muted", text: money(v.price) }),
          el("small", { className: "muted variant-stock", text: " " + text.stock + " " + v.stock }),
          el("small", { className: "live-price-label", text: text.live_price }), input,
          el("small", { className: "muted price-range", text: fill(text.price_range, { low: money(v.min_live_price), high: money(v.price) }) }),
          problem,
        ]);
      });
      var limit = el("input", { type: "number", min: "1", step: "1", className: "limit-input", placeholder: text.limit });
      limit.setAttribute("aria-label", text.limit);
      var button = el("button", { type: "button", className: "primary pin-button", text: text.pin, disabled: state.status !== "live" });
      var item = el("div", { className: "lineup-item" }, [el("strong", { text: p.name })].concat(rows, [el("label", { text: text.limit + " " }, [limit]), button]));
      item.dataset.productId = p.id;
      button.addEventListener("click", function () { pin(p, item); });
      box.appendChild(item);
    });
    renderPin();
  }
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; });
  }
  // Why a live price cannot be used (the same bounds the server checks), or "" when it can.
  function priceProblem(v, price) {
    if (!(price > 0)) return text.price_not_positive;
    if (price > v.price) return fill(text.price_above_regular, { amount: money(v.price) });
    if (price < v.min_live_price) return fill(text.price_below_floor, { amount: money(v.min_live_price) });
    return "";
  }
  function showPriceProblems(item, problems) {
    item.querySelectorAll(".price-error").forEach(function (node) {
      var message = problems[node.dataset.variantId] || "";
      node.textContent = message; node.hidden = !message;
    });
    item.querySelectorAll(".live-price-input").forEach(function (input) {
      if (problems[input.dataset.variantId]) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    });
  }
  function pin(product, item) {
    var prices = {}, problems = {}, refused = false;
    var variants = {};
    product.variants.forEach(function (v) { variants[v.id] = v; });
    item.querySelectorAll(".live-price-input").forEach(function (input) {
      var price = Math.round(parseFloat(input.value || "0") * 100);
      var problem = priceProblem(variants[input.dataset.variantId], price);
      if (problem) { problems[input.dataset.variantId] = problem; refused = true; }
      prices[input.dataset.variantId] = price;
    });
    showPriceProblems(item, problems);
    if (refused) { fail(new Error(text.price_refused)); return; }
    var limit = parseInt(item.querySelector(".limit-input").value, 10);
    var body = { product_id: product.id, live_prices: prices, per_buyer_limit: limit > 0 ? limit : null };
    api("POST", "/live-sessions/" + sessionId + "/pins", body).then(function (p) { ok(); state.pin = p; renderPin(); }).catch(function (err) {
      // the server refused a price (the floor may have changed since the page loaded)
      var named = (err.fields && err.fields.live_prices) || {};
      var marks = {};
      Object.keys(named).forEach(function (id) { marks[id] = text.price_refused_by_server; });
      showPriceProblems(item, marks);
      fail(Object.keys(marks).length ? new Error(text.price_refused) : err);
    });
  }

  function renderChoices() {
    var box = $("lineup-choices");
    box.textContent = "";
    data.products.forEach(function (p) {
      var box2 = el("input", { type: "checkbox", value: p.id, checked: state.lineup.indexOf(p.id) >= 0 });
      box.appendChild(el("label", { className: "choice" }, [box2, el("span", { text: " " + p.name })]));
    });
  }
  $("save-lineup").addEventListener("click", function () {
    var ids = Array.prototype.map.call(document.querySelectorAll("#lineup-choices input:checked"), function (i) { return parseInt(i.value, 10); });
    api("PUT", "/live-sessions/" + sessionId + "/lineup", { product_ids: ids }).then(function (j) {
      ok(); state.lineup = j.items.map(function (p) { return p.id; }); renderLineup();
    }).catch(fail);
  });

  // --- sales and viewers ------------------------------------------------------------------------
  function loadSales() {
    return api("GET", "/live-sessions/" + sessionId + "/sales").then(function (s) {
      $("sales-orders").textContent = s.orders;
      $("sales-units").textContent = s.units;
      $("sales-gross").textContent = money(s.gross);
      setPeak(s.peak_viewers);
      var body = $("sales-products");
      body.textContent = "";
      s.products.forEach(function (row) {
        body.appendChild(el("tr", {}, [el("td", { text: row.name }), el("td", { text: String(row.orders) }), el("td", { text: String(row.units) }), el("td", { text: money(row.gross) })]));
      });
    }).catch(function () {});
  }
  function setPeak(n) { state.peak = Math.max(state.peak || 0, n || 0); $("viewers-peak").textContent = state.peak; }

  // --- questions and chat -----------------------------------------------------------------------
  function moderation(m) {
    var li = el("li", { className: "msg " + m.kind + (m.answered ? " answered" : "") }, [
      el("strong", { text: m.user_name + ": " }), el("span", { className: "body", text: m.body }),
    ]);
    li.dataset.id = m.id;
    if (m.kind === "question") {
      li.appendChild(el("small", { className: "muted", text: " · " + m.votes + " " + text.votes + " " }));
      var answer = el("button", { type: "button", className: "answer-button", text: text.answered, disabled: m.answered });
      answer.addEventListener("click", function () { moderate(m.id, { answered: true }); });
      li.appendChild(answer);
    }
    var hide = el("button", { type: "button", className: "hide-button", text: text.hide });
    hide.addEventListener("click", function () { moderate(m.id, { hidden: true }); });
    li.appendChild(hide);
    return li;
  }
  function moderate(id, change) {
    api("PATCH", "/live-sessions/" + sessionId + "/messages/" + id, change).then(function () { ok(); loadMessages(); }).catch(fail);
  }
  function loadMessages() {
    var base = "/live-sessions/" + sessionId + "/messages";
    var q = state.order === "votes" ? base + "?kind=question&order=votes" : base + "?kind=question";
    api("GET", q).then(function (j) {
      var items = state.order === "votes" ? j.items : j.items.slice().reverse();
      var list = $("questions"); list.textContent = "";
      items.forEach(function (m) { list.appendChild(moderation(m)); });
    }).catch(function () {});
    api("GET", base + "?kind=chat").then(function (j) {
      var list = $("chat"); list.textContent = "";
      j.items.slice(-100).reverse().forEach(function (m) { list.appendChild(moderation(m)); });
    }).catch(function () {});
  }
  document.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () {
      document.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t === tab); });
      state.order = tab.dataset.order; loadMessages();
    });
  });

  // --- socket -----------------------------------------------------------------------------------
  var socket = window.io ? window.io("/live", {
    transports: ["websocket", "polling"],
    reconnectionDelay: 1000, reconnectionDelayMax: 10000, randomizationFactor: 0.5,
  }) : null;
  if (socket) {
    // A join refused or unanswered is tried again while connected (back-off with full jitter,
    // as on the live page), so the console never sits connected but deaf.
    var joinTries = 0, joinTimer = null;
    var join = function () {
      clearTimeout(joinTimer); joinTimer = null;
      if (!socket.connected) return;
      socket.timeout(8000).emit("join", { session_id: sessionId, console: true }, function (err, ack) {
        if (err || !ack || !ack.ok) {
          $("console").dataset.joined = "false";
          if (socket.connected) joinTimer = setTimeout(join, Math.random() * Math.min(10000, 500 * Math.pow(2, joinTries++)));
          return;
        }
        joinTries = 0;
        $("console").dataset.joined = "true";
        state.pin = ack.state.pinned; $("viewers-now").textContent = ack.state.viewers; setPeak(ack.state.viewers);
        if (ack.state.status !== state.status) setStatus(ack.state.status); else renderPin();
        loadSales(); loadMessages();
      });
    };
    socket.on("connect", join);
    socket.on("disconnect", function () { clearTimeout(joinTimer); joinTimer = null; $("console").dataset.joined = "false"; });
    socket.on("connect_error", function () { // refused (too many sockets from this address)
      if (!socket.active) setTimeout(function () { socket.connect(); }, 5000);
    });
    socket.on("pinned", function (m) { state.pin = m.pin; renderPin(); });
    socket.on("unpinned", function () { state.pin = null; renderPin(); });
    socket.on("status", function (m) { setStatus(m.status); });
    socket.on("viewers", function (m) { $("viewers-now").textContent = m.count; setPeak(m.count); });
    socket.on("stock", function (m) {
      if (state.pin) state.pin.variants.forEach(function (v) { if (v.id === m.variant_id) v.stock = m.stock; });
      Object.keys(products).forEach(function (pid) { products[pid].variants.forEach(function (v) { if (v.id === m.variant_id) v.stock = m.stock; }); });
      renderPin();
    });
    socket.on("sale", function () { loadSales(); });
    var reload = null;
    var soon = function () { clearTimeout(reload); reload = setTimeout(loadMessages, 300); };
    socket.on("message", soon);
    socket.on("message_update", soon);
  } else {
    loadSales(); loadMessages();
  }
  renderChoices();
  renderLineup();
})();
