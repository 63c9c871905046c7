// The table page: quick picks fill A or B, and after Add Row the keyboard is ready for the next
// row (focus on A with its text selected, or on the field the error is about).
(function () {
  "use strict";

  function markPicks(input) {
    for (const button of document.querySelectorAll('[data-pick-for="' + input.id + '"]')) {
      button.setAttribute("aria-pressed", String(button.dataset.value === input.value.trim()));
    }
  }

  function focusField(input) {
    input.focus();
    input.select();
  }

  function start() {
    const form = document.getElementById("add-row-form");
    if (!form) return;
    const inputs = Array.from(form.querySelectorAll("input[name]:not([type=hidden])"));
    inputs.forEach(markPicks);

    form.addEventListener("click", (event) => {
      const button = event.target.closest("[data-pick-for]");
      if (!button) return;
      const input = document.getElementById(button.dataset.pickFor);
      input.value = button.dataset.value;
      input.removeAttribute("aria-invalid");
      markPicks(input);
    });
    form.addEventListener("input", (event) => {
      if (!inputs.includes(event.target)) return;
      event.target.removeAttribute("aria-invalid");
      markPicks(event.target);
    });

    // After htmx has put the answer (a confirmation or an error) under the form.
    form.addEventListener("htmx:afterSwap", () => {
      const error = document.getElementById("add-row-error");
      const wrong = error && error.dataset.field ? form.elements[error.dataset.field] : null;
      for (const input of inputs) {
        const invalid = input === wrong;
        if (invalid) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
        input.setAttribute("aria-describedby", (invalid ? "add-row-error " : "") + "numbers-help");
      }
      // Someone already typing the next row keeps their caret.
      if (!wrong && inputs.includes(document.activeElement)) return;
      focusField(wrong || inputs[0]);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
