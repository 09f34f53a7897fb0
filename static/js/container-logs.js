// A container's log: follow it live over a websocket (the server sends the tail, then new
// lines in batches); when the socket cannot open or drops, poll the tail endpoint every
// 2 s and keep trying to reconnect. No inline script (CSP): everything comes from data-*.
(function () {
  "use strict";

  var POLL_MS = 2000;

  function follow(root) {
    var log = document.getElementById("container-log");
    var followBox = document.getElementById("log-follow");
    var liveNote = document.querySelector("[data-role=live]");
    var maxLines = parseInt(root.dataset.maxLines || "5200", 10) || 5200;
    var socket = null;
    var pollTimer = null;
    var retry = 1000;
    var replaceNext = false;  // the next batch from a fresh socket starts with the tail
    var ended = false;

    log.style.maxHeight = "70vh";
    log.scrollTop = log.scrollHeight;

    function setLive(mode) {
      root.dataset.live = mode;
      if (liveNote) { liveNote.textContent = (mode && liveNote.dataset[mode]) || ""; }
    }

    function row(line) {
      var div = document.createElement("div");
      div.className = "log-line";
      var space = line.indexOf(" ");
      var stamp = space > 0 && line.charAt(0) === "2" && line.indexOf("T") === 10 ? line.slice(0, space) : "";
      var time = document.createElement("span");
      time.className = "text-secondary";
      time.textContent = stamp ? stamp.slice(11, 23) : "";
      div.appendChild(time);
      div.appendChild(document.createTextNode(" " + (stamp ? line.slice(space + 1) : line)));
      return div;
    }

    function show(lines, replace) {
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) { fragment.appendChild(row(line)); });
      if (replace) { log.textContent = ""; }
      var empty = log.querySelector(".empty-note");
      if (empty) { empty.remove(); }
      log.appendChild(fragment);
      var extra = log.childElementCount - maxLines;
      while (extra-- > 0) { log.removeChild(log.firstChild); }
      if (!followBox || followBox.checked) { log.scrollTop = log.scrollHeight; }
    }

    function poll() {
      if (pollTimer) { return; }
      setLive(ended ? "ended" : "poll");
      pollTimer = window.setInterval(function () {
        fetch(root.dataset.tailUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (response) { return response.json(); })
          .then(function (data) { if (data.lines) { show(data.lines, true); } })
          .catch(function () {});
      }, POLL_MS);
    }

    function stopPolling() {
      if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
    }

    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + root.dataset.ws);
      socket.onopen = function () {
        retry = 1000;
        replaceNext = true;
        stopPolling();
        setLive("ws");
      };
      socket.onmessage = function (event) {
        var data = JSON.parse(event.data);
        if (data.type === "lines") {
          show(data.lines, replaceNext);
          replaceNext = false;
        } else if (data.type === "replaced") {
          // A redeploy replaced the container: its successor is followed from its first line.
          show([(root.dataset.replaced || "New container:") + " " + data.name + " (" + data.short_id + ")"], false);
          log.lastChild.classList.add("text-info");
          log.lastChild.dataset.role = "replaced";
        } else if (data.type === "skipped") {
          show(["[" + data.count + " lines skipped: the page could not keep up]"], false);
        } else if (data.type === "end") {
          ended = true;
          setLive("ended");
        } else if (data.type === "error") {
          show(["[" + data.message + "]"], false);
        }
      };
      socket.onclose = function (event) {
        socket = null;
        if (ended) { return; }
        if (event.code >= 4400 && event.code < 4500) { poll(); return; }  // refused: no retry
        poll();
        retry = Math.min(retry * 2, 30000);
        window.setTimeout(open, retry);
      };
    }

    if ("WebSocket" in window) { open(); } else { poll(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("container-logs");
    if (root) { follow(root); }
  });
})();
