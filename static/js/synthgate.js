// The one script of every page. Static file only: the Content-Security-Policy forbids inline
// script. Pages work without it; it adds what htmx alone would leave silent or slow:
// - 4xx answers that carry a form's errors are swapped in place (htmx ignores 4xx by default);
//   any other failed request shows a notice at the top of the page;
// - times in the reader's time zone (UTC on hover);
// - select-all checkboxes in lists;
// - keyboard shortcuts for triage.
(function () {
  "use strict";

  // --- errors are never silent -------------------------------------------------------------
  // 400 (bad input, with field errors), 409 (the world moved on) and 422 answers are pages or
  // fragments written for the reader: swap them like a 200.
  var SHOWN = [400, 409, 422];

  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    if (SHOWN.indexOf(status) !== -1) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function flash(text) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    var reason = {
      403: "you may not do this",
      404: "it no longer exists",
      413: "what you sent is too large",
      429: "too many requests; wait a moment",
    }[status] || "the server could not do it";
    flash("Not done (HTTP " + status + "): " + reason + ". Reload the page to see where things stand.");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("Not done: the server could not be reached. Check the connection and try again.");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("flash");
    if (box) box.hidden = true;
  });

  // --- times in the reader's time zone ----------------------------------------------------
  var format = null;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    });
  } catch (e) { format = null; }

  function localTimes(root) {
    if (!format || !root || !root.querySelectorAll) return;
    var times = root.querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var element = times[i];
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment.getTime())) continue;
      element.title = element.textContent; // the UTC text the server wrote
      element.textContent = format.format(moment);
      element.setAttribute("data-local", "");
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.detail.elt); });

  // --- select all -------------------------------------------------------------------------
  // <input type="checkbox" data-select-all="items"> checks every box named "items" in its form.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box || !box.matches || !box.matches("input[data-select-all]")) return;
    var scope = box.form || document;
    var name = box.getAttribute("data-select-all");
    var boxes = scope.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
  });

  // --- triage keyboard shortcuts ----------------------------------------------------------
  // Every action is a real form button, so the page works without this; the keys only click
  // those buttons (htmx then swaps in the next item).
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
    if (!document.getElementById("triage")) return; // shortcuts belong to the triage page
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
