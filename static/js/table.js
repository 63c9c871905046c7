// The Add Row form. Quick picks fill A or B; each group of picks is one tab stop whose buttons
// the arrow keys move between. After Add Row the keyboard is ready for the next row (focus on
// A with its text selected, or on the field the error is about). A row added while the
// connection is down waits, visibly, and is sent when it is back: every submission carries a
// client_id, and a resend under the same one is stored once by the server.
(function () {
  "use strict";

  const RETRY_MS = [1000, 2000, 5000, 10000, 30000];
  const STORE_KEY = "table:pending-rows";
  const RETRYABLE = new Set([429, 502, 503, 504]); // "not now": send it again later

  const pending = new Map(); // client_id -> {client_id, a, b}: not yet answered by the server
  let form = null;
  let inputs = [];
  let inflight = null; // the submission htmx is sending now
  let typedSinceSubmit = false;
  let retries = 0;
  let retryTimer = null;
  let flushing = false;

  const $ = (id) => document.getElementById(id);
  const socket = () => window.realtime && window.realtime.socket;
  const connected = () => Boolean(socket() && socket().connected);

  // Quick picks ---------------------------------------------------------------------------
  function picksOf(input) {
    return Array.from(document.querySelectorAll('[data-pick-for="' + input.id + '"]'));
  }

  // The pressed pick shows the field's value; it is also the group's one tab stop (else 1).
  function markPicks(input) {
    const buttons = picksOf(input);
    const pressed = buttons.find((button) => button.dataset.value === input.value.trim());
    for (const button of buttons) {
      button.setAttribute("aria-pressed", String(button === pressed));
      button.tabIndex = button === (pressed || buttons[0]) ? 0 : -1;
    }
  }

  function pick(button) {
    const input = $(button.dataset.pickFor);
    input.value = button.dataset.value;
    input.removeAttribute("aria-invalid");
    markPicks(input);
  }

  // Arrow keys within a group (two rows of five): left/right by one, up/down by a row.
  const MOVES = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -5, ArrowDown: 5 };

  function movePick(event) {
    const button = event.target.closest("[data-pick-for]");
    if (!button || event.altKey || event.ctrlKey || event.metaKey) return;
    const buttons = picksOf($(button.dataset.pickFor));
    const at = buttons.indexOf(button);
    let next;
    if (event.key in MOVES) next = Math.min(Math.max(at + MOVES[event.key], 0), buttons.length - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = buttons.length - 1;
    else return;
    event.preventDefault();
    buttons[at].tabIndex = -1;
    buttons[next].tabIndex = 0;
    buttons[next].focus();
  }

  // Ready for the next row ------------------------------------------------------------------
  function focusField(input) {
    input.focus();
    input.select();
  }

  // Point at the field an error answer is about (or clear the marks); focus it, or A when the
  // row went through, unless the person has started typing the next row meanwhile.
  function afterAnswer(moveFocus) {
    const error = $("add-row-error");
    const wrong = error && error.dataset.field ? form.elements[error.dataset.field] : null;
    for (const input of inputs) {
      const invalid = input === wrong;
      if (invalid) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", (invalid ? "add-row-error " : "") + "numbers-help");
    }
    if (!moveFocus) return;
    if (!wrong && typedSinceSubmit && inputs.includes(document.activeElement)) return;
    focusField(wrong || inputs[0]);
  }

  // Rows waiting for the connection ----------------------------------------------------------
  function showPending() {
    const note = $("add-row-pending");
    if (!note) return;
    const rows = Array.from(pending.values(), (item) => `${item.a} + ${item.b}`);
    note.hidden = rows.length === 0;
    note.textContent = rows.length === 0 ? "" :
      `${rows.length === 1 ? "1 row" : rows.length + " rows"} waiting to be sent… (${rows.join(", ")})`;
  }

  // Kept in the tab's session storage as well: a reload (the page reloads itself when it fell
  // too far behind) does not lose them, and their client ids keep a resend from storing twice.
  function save() {
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(Array.from(pending.values())));
    } catch (unavailable) { /* private mode, or full: they still wait in this page */ }
  }

  function restore() {
    let saved = [];
    try {
      saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]");
    } catch (unreadable) { /* nothing to restore */ }
    for (const item of Array.isArray(saved) ? saved : []) {
      if (item && typeof item.client_id === "string") pending.set(item.client_id, item);
    }
    showPending();
  }

  function wait(item) {
    pending.set(item.client_id, item);
    save();
    showPending();
    retryLater();
  }

  function forget(item) {
    pending.delete(item.client_id);
    save();
  }

  function retryLater(seconds) {
    clearTimeout(retryTimer);
    const ms = seconds ? seconds * 1000 : RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
    retries += 1;
    retryTimer = setTimeout(flush, ms);
  }

  // Send one waiting row; {retry: true} when it must wait longer (no answer, or "not now"),
  // else the server's answer (stored now, stored before, or refused) is shown under the form.
  async function resend(item) {
    const body = new URLSearchParams({ a: item.a, b: item.b, client_id: item.client_id });
    const token = document.querySelector('meta[name="csrf-token"]').content;
    let response, html;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { "HX-Request": "true", "X-CSRFToken": token },
        credentials: "same-origin",
      });
      if (RETRYABLE.has(response.status)) {
        return { retry: true, after: Number(response.headers.get("Retry-After")) || 0 };
      }
      html = await response.text();
    } catch (networkError) {
      return { retry: true };
    }
    forget(item);
    htmx.swap($("add-row-feedback"), html, { swapStyle: "innerHTML" });
    if (!response.ok) {
      // Refused (a bad number typed while offline, say): hand the row back to the form.
      inputs[0].value = item.a;
      inputs[1].value = item.b;
      inputs.forEach(markPicks);
    }
    afterAnswer(false);
    return { retry: false };
  }

  // Send every waiting row, oldest first; stop at the first that cannot be sent yet.
  async function flush() {
    clearTimeout(retryTimer);
    if (flushing || pending.size === 0) return;
    if (!connected()) return retryLater(); // realtime:connect sends them as soon as it can
    flushing = true;
    try {
      while (pending.size > 0) { // rows added while this runs are sent too
        const outcome = await resend(pending.values().next().value);
        if (outcome.retry) return retryLater(outcome.after);
      }
      retries = 0;
    } finally {
      flushing = false;
      showPending();
    }
  }

  // The htmx submission -----------------------------------------------------------------------
  function onConfigRequest(event) {
    if (event.detail.elt !== form) return;
    const params = event.detail.parameters;
    const item = { client_id: window.clientId(), a: String(params.a ?? ""), b: String(params.b ?? "") };
    typedSinceSubmit = false;
    if (!connected()) {
      // Offline (or not connected yet): no request that would hang or fail; the row waits.
      event.preventDefault();
      $("add-row-feedback").replaceChildren(); // an earlier answer is not about this row
      wait(item);
      afterAnswer(true);
      return;
    }
    params.client_id = item.client_id;
    inflight = item;
  }

  function onAfterRequest(event) {
    if (event.detail.elt !== form || !inflight) return;
    const item = inflight;
    inflight = null;
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    // No answer (the network failed: the row may or may not be stored), or "not now" from a
    // gateway or the app (its database away): send it again, under the same client id.
    if (status === 0 || (status !== 429 && RETRYABLE.has(status))) {
      $("add-row-feedback").replaceChildren();
      wait(item);
      afterAnswer(true);
    }
  }

  function start() {
    form = $("add-row-form");
    if (!form) return;
    inputs = Array.from(form.querySelectorAll("input[name]:not([type=hidden])"));
    inputs.forEach(markPicks);
    restore();

    form.addEventListener("click", (event) => {
      const button = event.target.closest("[data-pick-for]");
      if (button) pick(button);
    });
    form.addEventListener("keydown", movePick);
    form.addEventListener("input", (event) => {
      if (!inputs.includes(event.target)) return;
      typedSinceSubmit = true;
      event.target.removeAttribute("aria-invalid");
      markPicks(event.target);
    });
    form.addEventListener("htmx:configRequest", onConfigRequest);
    form.addEventListener("htmx:afterRequest", onAfterRequest);
    // After htmx has put the answer (a confirmation or an error) under the form.
    form.addEventListener("htmx:afterSwap", () => afterAnswer(true));
    document.addEventListener("realtime:connect", flush);
    window.addEventListener("online", flush);
    if (pending.size) retryLater();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
