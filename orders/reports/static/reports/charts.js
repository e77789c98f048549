/* Draws the report charts with the vendored Chart.js from the JSON the page embeds.
   Labels and names only ever reach the canvas (never innerHTML). Amounts arrive in fen. */
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var yuan = function (fen) { return fen / 100; };
  var symbol = data.currency === "CNY" ? "¥" : (data.currency || "") + " ";
  var money = function (value) {
    return symbol + Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  };
  var moneyAxis = { beginAtZero: true, ticks: { callback: function (v) { return symbol + v; } } };
  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom" } }
  };

  function salesChart(canvas) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: data.names.gross, data: data.gross.map(yuan), backgroundColor: "#81c784" },
          { label: data.names.net, data: data.net.map(yuan), backgroundColor: "#2f7d32" }
        ]
      },
      options: Object.assign({}, common, {
        scales: { y: moneyAxis },
        plugins: Object.assign({}, common.plugins, {
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + money(c.parsed.y); } } }
        })
      })
    });
  }

  function sessionChart(canvas) {
    return new Chart(canvas, {
      data: {
        labels: data.labels,
        datasets: [
          { type: "bar", label: data.names.gross, data: data.gross.map(yuan), backgroundColor: "#81c784", yAxisID: "y", order: 2 },
          { type: "line", label: data.names.viewers, data: data.viewers, borderColor: "#c62828", backgroundColor: "#c62828",
            pointRadius: 2, cubicInterpolationMode: "monotone", yAxisID: "viewers", order: 1 }
        ]
      },
      options: Object.assign({}, common, {
        scales: {
          y: Object.assign({ position: "left", title: { display: true, text: data.names.gross } }, moneyAxis),
          viewers: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                     title: { display: true, text: data.names.viewers }, ticks: { precision: 0 } }
        },
        plugins: Object.assign({}, common.plugins, {
          tooltip: { callbacks: { label: function (c) {
            return c.dataset.yAxisID === "y" ? c.dataset.label + ": " + money(c.parsed.y) : c.dataset.label + ": " + c.parsed.y;
          } } }
        })
      })
    });
  }

  var canvas = document.getElementById(data.kind === "session" ? "session-chart" : "sales-chart");
  if (!canvas) { return; }
  var chart = data.kind === "session" ? sessionChart(canvas) : salesChart(canvas);
  window.farmliveReportChart = chart;
  window.addEventListener("beforeprint", function () { chart.resize(); });
})();
