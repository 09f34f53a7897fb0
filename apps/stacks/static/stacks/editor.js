// Compose editor: a line-number gutter kept in step with the textarea (no framework).
(function () {
  "use strict";

  function attach(textarea) {
    if (textarea.dataset.gutter) { return; }
    textarea.dataset.gutter = "1";
    var wrapper = document.createElement("div");
    wrapper.className = "code-editor";
    var gutter = document.createElement("div");
    gutter.className = "gutter";
    gutter.setAttribute("aria-hidden", "true");
    textarea.parentNode.insertBefore(wrapper, textarea);
    wrapper.appendChild(gutter);
    wrapper.appendChild(textarea);

    function refresh() {
      var count = textarea.value.split("\n").length;
      var out = [];
      for (var i = 1; i <= count; i++) { out.push(i); }
      gutter.textContent = out.join("\n");
      gutter.scrollTop = textarea.scrollTop;
    }
    textarea.addEventListener("input", refresh);
    textarea.addEventListener("scroll", function () { gutter.scrollTop = textarea.scrollTop; });
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
        event.preventDefault();  // two spaces: YAML refuses tabs
        var start = textarea.selectionStart;
        textarea.setRangeText("  ", start, textarea.selectionEnd, "end");
        refresh();
      }
    });
    refresh();
  }

  // Clicking a problem's line moves the caret there.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-goto-line]");
    var textarea = document.querySelector("textarea.compose-editor");
    if (!link || !textarea) { return; }
    event.preventDefault();
    var line = parseInt(link.dataset.gotoLine, 10);
    var lines = textarea.value.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { offset += lines[i].length + 1; }
    textarea.focus();
    textarea.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
    var lineHeight = parseFloat(window.getComputedStyle(textarea).lineHeight) || 20;
    textarea.scrollTop = Math.max(0, (line - 5) * lineHeight);
  });

  function init() { document.querySelectorAll("textarea.compose-editor").forEach(attach); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
  document.addEventListener("htmx:afterSettle", init);
})();
