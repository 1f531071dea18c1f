// Keyboard-first annotation. Keys act only when the focus is not in a text field, so
// typing a rationale never triggers a judgment.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(el.type)));
  }

  function startClock(root) {
    const form = (root || document).querySelector("[data-task-form]");
    if (form) form.dataset.startedAt = String(Date.now());
  }

  document.addEventListener("DOMContentLoaded", function () { startClock(document); bindCounters(document); });
  document.addEventListener("htmx:afterSwap", function (e) { startClock(e.target); bindCounters(e.target); });

  document.addEventListener("htmx:configRequest", function (e) {
    const form = e.detail.elt;
    if (form && form.matches && form.matches("[data-task-form]") && form.dataset.startedAt) {
      e.detail.parameters.time_spent_ms = String(Date.now() - Number(form.dataset.startedAt));
    }
    if (form && form.matches && form.matches("[data-task-form]")) {
      const submitter = e.detail.triggeringEvent && e.detail.triggeringEvent.submitter;
      if (submitter && submitter.dataset.choice) e.detail.parameters.choice = submitter.dataset.choice;
    }
  });

  // Guard against a second keystroke while the first submission is in flight.
  let busy = false;
  document.addEventListener("htmx:beforeRequest", function () { busy = true; });
  document.addEventListener("htmx:afterRequest", function () { busy = false; });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const form = document.querySelector("[data-task-form]");
    if (!form) return;
    if (e.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (typing(document.activeElement)) return;
    if (["1", "2", "3", "4"].includes(e.key)) {
      e.preventDefault();
      if (busy) return;
      const button = form.querySelector('button[data-key="' + e.key + '"]');
      if (button) { form.elements.choice.value = button.dataset.choice; form.requestSubmit(button); }
    } else if (e.key === "s" || e.key === "S") {
      e.preventDefault();
      const radios = Array.from(form.querySelectorAll('input[name="strength"]'));
      const i = radios.findIndex(function (r) { return r.checked; });
      radios[(i + 1) % radios.length].checked = true;
    } else if (e.key === "r" || e.key === "R") {
      e.preventDefault();
      form.querySelector("textarea[name=rationale]").focus();
    } else if (e.key === "k" || e.key === "K") {
      const skip = document.querySelector("form.skip");
      if (skip && !busy) { e.preventDefault(); skip.requestSubmit(); }
    }
  });

  function bindCounters(root) {
    (root || document).querySelectorAll("textarea[data-counter]").forEach(function (area) {
      const out = document.querySelector("#" + area.dataset.counter + " span");
      if (!out) return;
      const update = function () { out.textContent = String(area.value.length); };
      area.addEventListener("input", update);
      update();
    });
  }
})();
