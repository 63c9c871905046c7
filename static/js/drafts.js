// Composer drafts: what is typed into a room's composer and not sent yet is kept for this tab
// (sessionStorage, per user and room), so that it survives a room switch, a reload, and a
// logout in another tab or browser: it is back when the user returns to the room after logging
// in again. It goes when the message is sent. chat.js owns the composer itself.
(function () {
  "use strict";

  const PREFIX = "chat:draft:";
  const $ = (id) => document.getElementById(id);

  function key() {
    const page = $("chat-page");
    if (!page || !page.dataset.room || !page.dataset.user) return null;
    return PREFIX + page.dataset.user.toLowerCase() + ":" + page.dataset.room.toLowerCase();
  }

  function save() {
    const box = $("composer-body");
    const name = key();
    // The text of a message being edited is not a draft.
    if (!box || !name || $("composer").classList.contains("is-editing")) return;
    try {
      if (box.value.trim()) sessionStorage.setItem(name, box.value);
      else sessionStorage.removeItem(name);
    } catch (_) { /* storage full or disabled: nothing kept */ }
  }

  function restore() {
    const box = $("composer-body");
    const name = key();
    if (!box || !name || box.value) return;      // the server filled it in (a refused post)
    let draft = null;
    try { draft = sessionStorage.getItem(name); } catch (_) { /* nothing kept */ }
    if (draft) box.value = draft;
  }

  document.addEventListener("input", (e) => { if (e.target.id === "composer-body") save(); });
  // chat.js empties the composer once it has taken the message: the draft goes then.
  document.addEventListener("submit", (e) => { if (e.target.id === "composer") setTimeout(save, 0); });
  // Text put back by a script (a refused message) has no input event: save as the page goes.
  window.addEventListener("pagehide", save);
  document.addEventListener("htmx:beforeSwap", (e) => {
    if (e.detail && e.detail.target && e.detail.target.id === "chat-page") save();
  });
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && e.target.id === "chat-page") restore();
  });
  document.addEventListener("htmx:historyRestore", restore);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", restore);
  else restore();
})();
