// WindFlow page behaviour: live notifications over a websocket, with polling as fallback
// (the bell's unread count also refreshes every minute through htmx).
(function () {
  "use strict";

  function connectNotifications(menu) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + menu.dataset.ws;
    var retry = 1000;

    function open() {
      var socket = new WebSocket(url);
      socket.onopen = function () { retry = 1000; document.body.dataset.live = "on"; };
      socket.onmessage = function (event) {
        var data = JSON.parse(event.data);
        if (data.type !== "notification.new") { return; }
        addToLists(data);
        document.body.dispatchEvent(new CustomEvent("wf:notification", { detail: data }));
      };
      socket.onclose = function (event) {
        document.body.dataset.live = "off";
        if (event.code >= 4400 && event.code < 4500) { return; }  // refused: polling only
        retry = Math.min(retry * 2, 30000);
        window.setTimeout(open, retry);
      };
    }
    open();
  }

  function addToLists(data) {
    document.querySelectorAll("#notification-items").forEach(function (list) {
      var empty = list.querySelector(".empty-note");
      if (empty) { empty.remove(); }
      var item = document.createElement("li");
      item.className = "list-group-item small fw-semibold";
      var text = document.createElement(data.url ? "a" : "span");
      text.textContent = data.text;
      if (data.url) { text.href = data.url; text.className = "text-reset"; }
      item.appendChild(text);
      list.prepend(item);
    });
  }

  // "Prepare server": follow the script's output live; htmx polling stays as the fallback.
  function followPrepare(box) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + box.dataset.ws);
    socket.onopen = function () { box.removeAttribute("hx-trigger"); };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      var log = document.getElementById("prepare-log");
      if (data.type === "line" && log) {
        log.textContent += data.line + "\n";
        log.scrollTop = log.scrollHeight;
      } else if (data.type === "done") {
        socket.close();
        if (window.htmx) { window.htmx.ajax("GET", box.getAttribute("hx-get"), box); }
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var menu = document.getElementById("bell-menu");
    if (menu && "WebSocket" in window) { connectNotifications(menu); }
    var prepare = document.getElementById("prepare-output");
    if (prepare && "WebSocket" in window) { followPrepare(prepare); }
  });
})();
