// Keyboard-first annotation. Keys act only when the focus is not in a text field, so
// typing a rationale never triggers a judgment.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(el.type)));
  }

  // When each assignment was first shown, so a task re-rendered with an error (same
  // assignment) keeps counting from when the annotator started reading it.
  const shownAt = {};

  function startClock(root) {
    const form = (root || document).querySelector("[data-task-form]");
    if (!form) return;
    const id = form.dataset.assignment;
    if (!(id in shownAt)) shownAt[id] = Date.now();
    form.dataset.startedAt = String(shownAt[id]);
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
  document.addEventListener("htmx:beforeRequest", function () { busy = true; clearFailure(); });
  document.addEventListener("htmx:afterRequest", function () { busy = false; });

  // 4xx answers are swapped in by the htmx-config in base.html and carry their own message.
  // A 5xx or a dropped connection swaps nothing, so say so here, without touching what the
  // annotator chose or typed.
  function showFailure(text) {
    const task = document.getElementById("task");
    if (!task) return;
    clearFailure();
    const p = document.createElement("p");
    p.className = "error";
    p.id = "request-failure";
    p.setAttribute("role", "alert");
    p.textContent = text;
    const controls = task.querySelector(".controls");
    if (controls) controls.prepend(p); else task.prepend(p);
  }
  function clearFailure() {
    const old = document.getElementById("request-failure");
    if (old) old.remove();
  }
  document.addEventListener("htmx:responseError", function (e) {
    showFailure("The server failed (" + e.detail.xhr.status + "). Nothing was saved; try again in a moment.");
  });
  document.addEventListener("htmx:sendError", function () {
    showFailure("Could not reach the server. Nothing was saved; check your connection and try again.");
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const form = document.querySelector("[data-task-form]");
    if (!form) return;
    const active = document.activeElement;
    if (e.key === "Enter" && active && active.id === "skip-reason") {
      // A select ignores Enter on its own; here it confirms the chosen reason.
      e.preventDefault();
      const skip = document.getElementById("skip-form");
      if (skip && !busy) skip.requestSubmit();
      return;
    }
    if (e.key === "Escape" && typing(active)) { active.blur(); return; }
    if (typing(active)) return;
    if (["1", "2", "3", "4"].includes(e.key)) {
      e.preventDefault();
      if (busy) return;
      const button = form.querySelector('button[data-key="' + e.key + '"]');
      if (button && !button.disabled) { form.elements.choice.value = button.dataset.choice; form.requestSubmit(button); }
    } else if (e.key === "s" || e.key === "S") {
      e.preventDefault();
      const radios = Array.from(form.querySelectorAll('input[name="strength"]'));
      const i = radios.findIndex(function (r) { return r.checked; });
      radios[(i + 1) % radios.length].checked = true;
    } else if (e.key === "r" || e.key === "R") {
      e.preventDefault();
      form.querySelector("textarea[name=rationale]").focus();
    } else if (e.key === "k" || e.key === "K") {
      // Skipping cannot be undone, so K only opens the choice of reason; Enter confirms it.
      const reason = document.getElementById("skip-reason");
      if (reason) { e.preventDefault(); reason.focus(); }
    }
  });

  function bindCounters(root) {
    (root || document).querySelectorAll("textarea[data-counter]").forEach(function (area) {
      const counter = document.getElementById(area.dataset.counter);
      const out = counter && counter.querySelector("span");
      if (!out) return;
      const max = Number(area.dataset.max || 0);
      const update = function () {
        // Code points, as the server counts them: an emoji is one character, not two.
        const length = Array.from(area.value).length;
        out.textContent = String(length);
        // Going over is allowed while typing, so a paste is never cut off silently; the
        // server refuses it with a message beside the field.
        counter.classList.toggle("over", max > 0 && length > max);
      };
      area.addEventListener("input", update);
      update();
    });
  }
})();
