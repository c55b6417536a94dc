// Keyboard shortcuts for triage. Static file only: the Content-Security-Policy forbids inline
// script. Every action is a real form button, so the page works without this file; the keys
// only click those buttons (htmx then swaps in the next item).
(function () {
  "use strict";

  var busy = false; // one decision in flight at a time: a double key press must not decide twice

  function isLease(event) {
    var elt = event.detail && event.detail.elt;
    return Boolean(elt && elt.id === "lease");
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!isLease(event) && elt && elt.closest && elt.closest("#triage")) busy = true;
  });
  // Keys stay off until the new item has settled: htmx binds the new forms while settling, and
  // a button clicked before that would submit natively (a full page load instead of a swap).
  // The form that sent the request is gone by then, so any non-lease event frees the keys.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!isLease(event)) busy = false;
  });
  // A request that swaps nothing (network or server error) never settles.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!isLease(event) && !(event.detail && event.detail.successful)) busy = false;
  });

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
    if (tag !== "INPUT") return false;
    var type = (target.type || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
  }

  function press(selector) {
    var triage = document.getElementById("triage");
    var element = triage && triage.querySelector(selector);
    if (element) element.click();
    return Boolean(element);
  }

  function rejectFor(digit) {
    var panel = document.getElementById("reject-panel");
    if (!panel || !panel.open) return false;
    var radio = panel.querySelector('input[data-digit="' + digit + '"]');
    var form = document.getElementById("reject-form");
    if (!radio || !form) return false;
    radio.checked = true;
    form.requestSubmit();
    return true;
  }

  function toggle(id) {
    var element = document.getElementById(id);
    if (element) element.open = !element.open;
    return Boolean(element);
  }

  function closeAll() {
    ["reject-panel", "shortcut-help"].forEach(function (id) {
      var element = document.getElementById(id);
      if (element) element.open = false;
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    var handled = false;
    if (key === "?") handled = toggle("shortcut-help");
    else if (key === "Escape") { closeAll(); handled = true; }
    else if (busy) handled = /^[ars1-9u]$/.test(key); // swallow, do not queue a second action
    else if (key === "a") handled = press('[data-key="a"]');
    else if (key === "r") handled = toggle("reject-panel");
    else if (/^[1-9]$/.test(key)) handled = rejectFor(key);
    else if (key === "s") handled = press('[data-key="s"]');
    else if (key === "u") handled = press('[data-key="u"]');
    if (handled) event.preventDefault();
  });
})();
