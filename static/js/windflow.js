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

  // A form with data-confirm asks before it is sent (Cancel a deployment, Roll back...);
  // htmx forms use hx-confirm instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // A button with data-copy copies the value (or text) of the element it names.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var text = "value" in source ? source.value : source.textContent;
    function done() {
      var label = button.querySelector("[data-role=label]");
      if (label && button.dataset.copied) { label.textContent = button.dataset.copied; }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(source); done(); });
    } else {
      fallbackCopy(source);
      done();
    }
  });

  function fallbackCopy(source) {
    if (source.select) { source.select(); }
    try { document.execCommand("copy"); } catch (error) { /* selected: the person copies it */ }
  }

  // An input with data-slug-from="<id>" suggests a slug from that field until it is edited.
  function slugify(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^[^a-z]+/, "").slice(0, 40).replace(/-+$/g, "");
  }

  function suggestSlugs() {
    document.querySelectorAll("input[data-slug-from]").forEach(function (slug) {
      var source = document.getElementById(slug.dataset.slugFrom);
      if (!source) { return; }
      var touched = slug.value !== "" && slug.value !== slugify(source.value);
      slug.addEventListener("input", function () { touched = slug.value !== ""; });
      source.addEventListener("input", function () {
        if (!touched) { slug.value = slugify(source.value); }
      });
    });
  }

  // Fields wrapped in [data-kinds="ssh tcp_tls"] show only for those values of the form's
  // `kind` select (the server form: no SSH or TLS fields for a local socket).
  function followKinds() {
    document.querySelectorAll("form").forEach(function (form) {
      var select = form.querySelector("select[name=kind]");
      var wrappers = form.querySelectorAll("[data-kinds]");
      if (!select || !wrappers.length) { return; }
      function apply() {
        wrappers.forEach(function (wrapper) {
          var kinds = wrapper.dataset.kinds.split(" ");
          wrapper.hidden = kinds.indexOf(select.value) === -1;
        });
      }
      select.addEventListener("change", apply);
      apply();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    suggestSlugs();
    followKinds();
    var menu = document.getElementById("bell-menu");
    if (menu && "WebSocket" in window) { connectNotifications(menu); }
    var prepare = document.getElementById("prepare-output");
    if (prepare && "WebSocket" in window) { followPrepare(prepare); }
  });
})();
