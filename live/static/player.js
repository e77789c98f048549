/* Plays the stream in every .player: HLS through hls.js (or natively), files in <video>. */
(function () {
  "use strict";
  function start(el) {
    var url = el.dataset.url;
    var kind = el.dataset.kind;
    var video = el.querySelector("video");
    if (!url || kind !== "hls" || !video) return;
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls();
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url; // Safari and iOS play HLS themselves
    } else {
      video.src = url; // without hls.js the page still works; the browser may not play it
    }
  }
  window.FarmlivePlayer = { start: start };
  document.querySelectorAll(".player").forEach(start);
})();
