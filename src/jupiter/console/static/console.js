// The console's only script (served from this origin; the CSP forbids
// inline script). Pages work without it: it only adds confirmations,
// a back button and the live refresh of a remediation under way.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  document.querySelectorAll("[data-back]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.history.back();
    });
  });

  // A form submits once: a second click while the server works (a deploy
  // can take seconds) would only be refused.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) {
        return;
      }
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
      });
      form.classList.add("busy");
    });
  });

  // A remediation still under way: reload to watch it progress.
  var refresh = document.body.getAttribute("data-refresh");
  if (refresh) {
    window.setTimeout(function () {
      window.location.reload();
    }, Math.max(1, parseInt(refresh, 10)) * 1000);
  }
});
