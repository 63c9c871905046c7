// Mentions: "@" in the composer offers the room's members (GET /chat/<room>/mentions?q=) in an
// ARIA combobox: arrows move, Enter or Tab picks, Esc closes, a click picks. Messages that
// mention the user are marked for them (the fragment is the same for everyone: a style rule
// for this user's name does it).
(function () {
  "use strict";

  const WAIT_MS = 120;                 // typing pause before asking the server
  // "@" and what follows it up to the caret, at the start or after a space or punctuation
  // (webapp/chat/text.py renders the same names as mentions).
  const TYPED = /(?:^|[^A-Za-z0-9_\-.@/])@([A-Za-z0-9_-]{0,32})$/;

  let timer = null;
  let asked = 0;                       // answers to older questions are dropped
  let active = -1;                     // the highlighted option
  let typed = null;                    // {start, end}: the "@name" being completed
  let sheet = null;

  const $ = (id) => document.getElementById(id);
  const box = () => $("composer-body");
  const list = () => $("mention-choices");
  const options = () => Array.from(list() ? list().querySelectorAll('[role="option"]') : []);
  const isOpen = () => Boolean(list() && !list().hidden);

  function markOwn() {
    const page = $("chat-page");
    const user = page && page.dataset.user;
    if (!user || sheet || !("adoptedStyleSheets" in document)) return;
    sheet = new CSSStyleSheet();
    sheet.replaceSync(`.mention[data-mention="${CSS.escape(user)}" i] { background: var(--bs-warning-bg-subtle); color: var(--bs-warning-text-emphasis); font-weight: 600; }`);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }

  // The combobox's attributes: set here, since the composer's markup is the room page's.
  function wire() {
    const input = box();
    if (!input || !list() || input.getAttribute("role") === "combobox") return;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", "mention-choices");
    input.setAttribute("aria-expanded", "false");
  }

  function close() {
    clearTimeout(timer);
    asked += 1;
    typed = null;
    active = -1;
    if (!list()) return;
    list().hidden = true;
    list().replaceChildren();
    box()?.setAttribute("aria-expanded", "false");
    box()?.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    const all = options();
    if (!all.length) return;
    active = (index + all.length) % all.length;
    all.forEach((el, i) => {
      el.setAttribute("aria-selected", String(i === active));
      el.classList.toggle("active", i === active);
    });
    box().setAttribute("aria-activedescendant", all[active].id);
    all[active].scrollIntoView({ block: "nearest" });
  }

  function show(names) {
    const template = $("mention-choice-template");
    if (!template || !names.length) return close();
    list().replaceChildren(...names.map((name, i) => {
      const option = template.content.firstElementChild.cloneNode(true);
      option.id = `mention-choice-${i}`;
      option.dataset.user = name;
      option.textContent = `@${name}`;
      return option;
    }));
    list().hidden = false;
    box().setAttribute("aria-expanded", "true");
    highlight(0);
  }

  function ask(prefix) {
    const question = ++asked;
    const url = `${list().dataset.url}?q=${encodeURIComponent(prefix)}`;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : { users: [] }))
      .then((answer) => {
        if (question === asked && typed) show(answer.users || []);
      })
      .catch(() => { if (question === asked) close(); });
  }

  function typedNow() {
    const input = box();
    if (!input || input.selectionStart !== input.selectionEnd) return null;
    const before = input.value.slice(0, input.selectionStart);
    const found = TYPED.exec(before);
    if (!found) return null;
    return { start: input.selectionStart - found[1].length - 1, end: input.selectionStart, prefix: found[1] };
  }

  function changed() {
    wire();
    const now = typedNow();
    if (!now || !list()) return close();
    typed = now;
    clearTimeout(timer);
    timer = setTimeout(() => ask(now.prefix), WAIT_MS);
  }

  function pick(option) {
    const input = box();
    if (!option || !typed || !input) return close();
    const text = `@${option.dataset.user} `;
    input.setRangeText(text, typed.start, typed.end, "end");
    close();
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // Captured before the composer's own keys (Enter sends, Esc cancels an edit).
  document.addEventListener("keydown", (e) => {
    if (e.target.id !== "composer-body" || !isOpen() || e.isComposing) return;
    const keys = {
      ArrowDown: () => highlight(active + 1),
      ArrowUp: () => highlight(active - 1),
      Enter: () => pick(options()[active]),
      Tab: () => pick(options()[active]),
      Escape: close,
    };
    if (!(e.key in keys) || (e.key === "Enter" && e.shiftKey)) return;
    e.preventDefault();
    e.stopPropagation();
    keys[e.key]();
  }, true);
  document.addEventListener("input", (e) => { if (e.target.id === "composer-body") changed(); });
  document.addEventListener("click", (e) => {
    if (e.target.id === "composer-body") return changed();
    const option = e.target.closest("#mention-choices [role='option']");
    if (option) pick(option);
    else if (isOpen()) close();
  });
  // A click on an option must not take the focus from the composer first.
  document.addEventListener("mousedown", (e) => {
    if (e.target.closest("#mention-choices")) e.preventDefault();
  });
  document.addEventListener("focusout", (e) => {
    if (e.target.id === "composer-body") setTimeout(() => { if (document.activeElement !== box()) close(); }, 0);
  });
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && e.target.id === "chat-page") {
      close();
      wire();
    }
  });

  function start() {
    markOwn();
    wire();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
