// The live page of a deployment: follow it over a websocket (the server backfills the lines
// after the last one rendered, then relays live events); when the socket is unavailable or
// drops before the end, poll the log endpoint every second and keep trying to reconnect.
// No inline script (CSP): everything comes from data-* attributes.
(function () {
  "use strict";

  var STATUS_CLASSES = {
    succeeded: "text-bg-success",
    running: "text-bg-primary",
    failed: "text-bg-danger",
    rolled_back: "text-bg-warning",
    cancelled: "text-bg-dark",
    queued: "text-bg-secondary"
  };

  function follow(root) {
    var log = document.getElementById("deployment-log");
    var bars = document.getElementById("deployment-services");
    var liveNote = root.querySelector("[data-role=live]");
    var labelsNode = document.getElementById("deployment-phase-labels");
    var phaseLabels = labelsNode ? JSON.parse(labelsNode.textContent) : {};
    var lastSeq = parseInt(root.dataset.lastSeq || "0", 10) || 0;
    var finished = root.dataset.finished === "true";
    var header = document.getElementById("deployment-header");
    var status = header ? header.dataset.status : root.dataset.status;
    var headerRequests = 0;
    var socket = null;
    var pollTimer = null;
    var retry = 1000;
    var stickToBottom = true;

    if (finished) { return; }

    log.addEventListener("scroll", function () {
      // Follow the end unless the reader scrolled up to read something.
      stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    });
    log.scrollTop = log.scrollHeight;

    function setLive(mode) {
      root.dataset.live = mode;
      if (liveNote) {
        liveNote.textContent = mode === "ws" ? liveNote.dataset.ws || "live"
          : mode === "poll" ? liveNote.dataset.poll || "polling" : "";
      }
    }

    function appendLines(lines) {
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) {
        if (line.seq <= lastSeq) { return; }  // already shown (backfill overlap, poll race)
        lastSeq = line.seq;
        var row = document.createElement("div");
        row.className = "log-line" +
          (line.level === "error" ? " text-danger" : line.level === "warning" ? " text-warning" : "");
        row.dataset.seq = line.seq;
        var time = document.createElement("span");
        time.className = "text-secondary";
        time.textContent = (line.time || "").slice(11, 19);
        row.appendChild(time);
        row.appendChild(document.createTextNode(" "));
        if (line.service) {
          var service = document.createElement("span");
          service.className = "text-info";
          service.textContent = line.service + " |";
          row.appendChild(service);
          row.appendChild(document.createTextNode(" "));
        }
        row.appendChild(document.createTextNode(line.message));
        fragment.appendChild(row);
      });
      if (!fragment.childNodes.length) { return; }
      log.appendChild(fragment);
      root.dataset.lastSeq = lastSeq;
      if (stickToBottom) { log.scrollTop = log.scrollHeight; }
    }

    function updateService(data) {
      if (!bars) { return; }
      var empty = bars.querySelector(".empty-note");
      if (empty) { empty.remove(); }
      var item = null;
      bars.querySelectorAll("[data-service]").forEach(function (node) {
        if (node.dataset.service === data.service) { item = node; }
      });
      if (!item) {
        item = document.createElement("li");
        item.className = "list-group-item";
        item.dataset.service = data.service;
        var head = document.createElement("div");
        head.className = "d-flex justify-content-between align-items-baseline small gap-2";
        var name = document.createElement("strong");
        name.className = "font-monospace";
        name.textContent = data.service;
        var state = document.createElement("span");
        var phase = document.createElement("span");
        phase.dataset.role = "phase";
        var progress = document.createElement("span");
        progress.dataset.role = "progress";
        state.appendChild(phase);
        state.appendChild(document.createTextNode(" · "));
        state.appendChild(progress);
        state.appendChild(document.createTextNode("%"));
        head.appendChild(name);
        head.appendChild(state);
        var bar = document.createElement("progress");
        bar.className = "w-100";
        bar.max = 100;
        bar.setAttribute("aria-label", data.service);
        var message = document.createElement("div");
        message.className = "small text-secondary text-truncate";
        message.dataset.role = "message";
        item.appendChild(head);
        item.appendChild(bar);
        item.appendChild(message);
        bars.appendChild(item);
      }
      var phaseNode = item.querySelector("[data-role=phase]");
      phaseNode.dataset.phase = data.phase;
      phaseNode.textContent = phaseLabels[data.phase] || data.phase;
      item.querySelector("[data-role=progress]").textContent = data.progress;
      item.querySelector("progress").value = data.progress;
      item.querySelector("[data-role=message]").textContent = data.message || "";
    }

    // The header (status, started, duration, buttons, failure box) comes back from the server
    // at each change of status; only the answer to the newest request is shown.
    function refreshHeader() {
      var mine = ++headerRequests;
      fetch(root.dataset.statusUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          var header = document.getElementById("deployment-header");
          if (mine !== headerRequests || !header) { return; }
          var template = document.createElement("template");
          template.innerHTML = html.trim();
          var fresh = template.content.querySelector("#deployment-header");
          if (!fresh) { return; }
          header.replaceWith(fresh);
          if (window.htmx) { window.htmx.process(fresh); }
          tickDuration();
        })
        .catch(function () {
          if (mine === headerRequests) { window.setTimeout(refreshHeader, 2000); }
        });
    }

    // While it runs, the duration counts up from its start (rendered in data-started).
    function tickDuration() {
      var node = document.querySelector("#deployment-header [data-role=duration][data-started]");
      if (!node || finished) { return; }
      var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(node.dataset.started)) / 1000));
      if (isNaN(seconds)) { return; }
      node.textContent = seconds < 60 ? seconds + " s" : Math.round(seconds / 60) + " min";
    }

    function updateStatus(data) {
      var changed = data.status !== status;
      status = data.status;
      root.dataset.status = data.status;
      document.querySelectorAll("[data-role=status-badge]").forEach(function (badge) {
        badge.className = "badge " + (STATUS_CLASSES[data.status] || "text-bg-secondary");
        badge.textContent = data.status_display || data.status;
      });
      if (data.finished && !finished) {
        finished = true;
        stop();
        setLive("");
        document.body.dispatchEvent(new CustomEvent("wf:deployment-finished", { detail: data }));
      }
      if (changed) {
        // What the flash messages said ("queued", "cancelling") no longer holds.
        document.querySelectorAll("#messages .alert").forEach(function (alert) { alert.remove(); });
        refreshHeader();
      }
    }

    function handle(data) {
      if (data.type === "log") { appendLines(data.lines || []); }
      else if (data.type === "services") { (data.services || []).forEach(updateService); }
      else if (data.type === "service") { updateService(data.service); }
      else if (data.type === "status") { updateStatus(data); }
    }

    function stop() {
      if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
      if (socket) { socket.onclose = null; socket.close(); socket = null; }
    }

    function poll() {
      pollTimer = null;
      if (finished) { return; }
      var url = root.dataset.logUrl + "?format=json&after=" + lastSeq;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          if (socket && socket.readyState === WebSocket.OPEN) { return; }  // live again
          appendLines(data.lines || []);
          (data.services || []).forEach(updateService);
          if (data.status) { updateStatus(data.status); }
        })
        .catch(function () { /* keep trying: the server may be restarting */ })
        .then(function () {
          if (!finished && !(socket && socket.readyState === WebSocket.OPEN)) { schedulePoll(); }
        });
    }

    function schedulePoll() {
      if (!pollTimer && !finished) { pollTimer = window.setTimeout(poll, 1000); }
    }

    function connect() {
      if (finished || !("WebSocket" in window)) { return; }
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      try {
        socket = new WebSocket(scheme + window.location.host + root.dataset.ws + "?after=" + lastSeq);
      } catch (error) {
        socket = null;
        setLive("poll");
        schedulePoll();
        return;
      }
      socket.onopen = function () {
        retry = 1000;
        if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
        setLive("ws");
      };
      socket.onmessage = function (event) {
        try { handle(JSON.parse(event.data)); } catch (error) { /* ignore a bad frame */ }
      };
      socket.onclose = function (event) {
        socket = null;
        if (finished) { return; }
        setLive("poll");
        schedulePoll();
        if (event.code >= 4400 && event.code < 4500) { return; }  // refused: polling only
        retry = Math.min(retry * 2, 30000);
        window.setTimeout(connect, retry);
      };
    }

    window.setInterval(tickDuration, 1000);
    setLive("poll");
    schedulePoll();  // until the socket opens
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("deployment-live");
    if (root) { follow(root); }
  });
})();
