// The console's keyboard: one key per decision in the review queue. Keys act only when the
// focus is not in a text field, so typing a reason or a search never decides anything.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(el.type)));
  }

  // Buttons carry their action in data-action; a hidden input takes it, so a key press
  // (requestSubmit, which htmx sees without a clicked button) sends the same as a click.
  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("button[data-action]");
    if (!button || !button.form || !button.form.matches("[data-action-form]")) return;
    button.form.elements.action.value = button.dataset.action;
  });

  // The selection outlives the swaps that move through the queue or decide one item, so
  // "select, move on, select, bulk-reject" works; a bulk decision clears it.
  const selected = new Set();
  document.addEventListener("change", function (e) {
    if (!e.target.matches || !e.target.matches("[data-queue] input[name=ids]")) return;
    if (e.target.checked) selected.add(e.target.value); else selected.delete(e.target.value);
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.target.id !== "queue") return;
    e.target.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = selected.has(box.value); });
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    const form = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (form && form.id === "bulk-form" && e.detail.xhr.status < 400) selected.clear();
  });

  let busy = false;
  document.addEventListener("htmx:beforeRequest", function () { busy = true; });
  document.addEventListener("htmx:afterRequest", function () { busy = false; });

  function submitWith(form, action) {
    if (!form || busy) return;
    const button = form.querySelector('button[data-action="' + action + '"]');
    if (!button || button.disabled) return;
    form.elements.action.value = action;
    // Straight through htmx rather than requestSubmit: a key pressed the instant a new item
    // arrives must not beat htmx to the new form and post it as a plain page.
    htmx.ajax("POST", form.getAttribute("hx-post"), { source: form, target: "#queue", swap: "innerHTML" });
  }

  function rows() { return Array.from(document.querySelectorAll("[data-queue] tr[data-row]")); }
  function currentRow() { return document.querySelector("[data-queue] tr[data-row].current"); }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(currentRow());
    const target = all[Math.min(all.length - 1, Math.max(0, at + step))];
    if (target && target !== all[at]) {
      // Not link.click(): right after a swap htmx may not have bound the new link yet, and a
      // click would then load the whole page instead of swapping the queue.
      const link = target.querySelector("a[hx-get]");
      if (link) htmx.ajax("GET", link.getAttribute("hx-get"), { target: "#queue", swap: "innerHTML" });
    } else if (step > 0) {
      const next = document.querySelector('.pager a[rel="next"]');
      if (next) next.click();
    } else {
      const prev = document.querySelector('.pager a[rel="prev"]');
      if (prev) prev.click();
    }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const queue = document.querySelector("[data-queue]");
    if (!queue) return;
    const active = document.activeElement;
    if (e.key === "Escape" && typing(active)) { active.blur(); return; }
    if (typing(active)) return;
    const key = e.key.toLowerCase();
    if (key === "k" || key === "r") {
      e.preventDefault();
      const action = key === "k" ? "keep" : "reject";
      if (e.shiftKey) {
        const bulk = document.getElementById("bulk-form");
        if (bulk && bulk.querySelector("input[name=ids]:checked")) submitWith(bulk, action);
      } else {
        submitWith(document.getElementById("decide-form"), action);
      }
    } else if (key === "j" || e.key === "ArrowDown") {
      e.preventDefault();
      if (!busy) move(1);
    } else if (key === "p" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!busy) move(-1);
    } else if (key === "x") {
      const row = currentRow();
      const box = row && row.querySelector("input[type=checkbox]");
      if (box) {
        e.preventDefault();
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
    } else if (key === "o") {
      const open = document.querySelector("#decide-form a[data-open]");
      if (open) { e.preventDefault(); window.location.assign(open.href); }
    } else if (e.key === "/") {
      const search = document.getElementById("id_q");
      if (search) { e.preventDefault(); search.focus(); }
    }
  });

  // A preview describes the values it was computed for: once a value changes, the apply
  // button it holds would apply the old values, so it goes until the next preview.
  document.addEventListener("input", function (e) {
    const form = e.target.closest && e.target.closest("[data-thresholds-form]");
    const preview = document.getElementById("preview");
    if (!form || !preview || !preview.querySelector("[data-apply-form]")) return;
    preview.innerHTML = '<p class="warn" role="status">Values changed since the preview: preview again to see what they would do.</p>';
  });
})();
