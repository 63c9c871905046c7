// Browser notifications: a mention of the user (chat:mention) or a message in a direct
// conversation (chat:activity in a room whose sidebar entry says data-direct) raises one while
// the page is hidden. Permission is asked only from a click ("Turn on notifications"); the
// switch beside it turns them off and on for this browser (localStorage). Clicking a
// notification brings the tab forward and opens the room.
(function () {
  "use strict";

  const KEY = "chat:notifications";   // "off" when the user turned them off
  const supported = "Notification" in window;
  const notified = new Set();         // message ids: one notification per message

  const $ = (id) => document.getElementById(id);
  const page = () => $("chat-page");
  const me = () => (page() && page().dataset.user) || "";
  const sameName = (a, b) => String(a || "").toLowerCase() === String(b || "").toLowerCase();

  function turnedOff() {
    try { return localStorage.getItem(KEY) === "off"; } catch (_) { return false; }
  }

  function setTurnedOff(off) {
    try {
      if (off) localStorage.setItem(KEY, "off");
      else localStorage.removeItem(KEY);
    } catch (_) { /* storage disabled: on for this page only */ }
  }

  const enabled = () => supported && Notification.permission === "granted" && !turnedOff();

  // The setting beside "Mark all read": a button until permission is granted, then a switch.
  function showSetting() {
    const setting = document.querySelector('[data-role="notifications-setting"]');
    if (!setting || !supported) return;
    const granted = Notification.permission === "granted";
    setting.hidden = Notification.permission === "denied";
    setting.querySelector('[data-action="enable-notifications"]').hidden = granted;
    setting.querySelector('[data-role="notifications-toggle"]').hidden = !granted;
    setting.querySelector('[data-action="notifications-on"]').checked = granted && !turnedOff();
  }

  function open(room) {
    window.focus();
    const link = window.sidebar && window.sidebar.entryOf(room);
    if (link) link.click();  // the room link swaps the chat part of the page, as a click does
    else window.location.assign(`/chat/${encodeURIComponent(room)}`);
  }

  function notify(id, room, title, body) {
    if (!enabled() || document.visibilityState !== "hidden" || notified.has(id)) return;
    notified.add(id);
    // The tag makes several tabs of one user raise a single notification.
    const note = new Notification(title, { body: body, tag: `chat-message-${id}` });
    note.onclick = () => {
      note.close();
      open(room);
    };
  }

  document.addEventListener("realtime:chat:mention", (e) => {
    const data = e.detail || {};
    notify(data.id, data.room, `${data.author} mentioned you in #${data.room}`, data.excerpt || "");
  });
  // A direct message: chat:activity when this page shows another room, chat:message when it
  // shows the conversation itself.
  function direct(e) {
    const data = e.detail || {};
    if (!data.room || sameName(data.author, me())) return;
    const entry = window.sidebar && window.sidebar.entryOf(data.room);
    if (!entry || entry.dataset.direct !== "true") return;
    notify(data.id, data.room, `New message from ${data.author}`, data.body || "Direct message");
  }
  document.addEventListener("realtime:chat:activity", direct);
  document.addEventListener("realtime:chat:message", direct);

  document.addEventListener("click", (e) => {
    if (!e.target.closest('[data-action="enable-notifications"]') || !supported) return;
    Notification.requestPermission().then((permission) => {
      if (permission === "granted") setTurnedOff(false);
      showSetting();
    });
  });
  document.addEventListener("change", (e) => {
    if (e.target.dataset.action !== "notifications-on") return;
    setTurnedOff(!e.target.checked);
  });
  // The setting is part of the chat page, which room links swap.
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && e.target.id === "chat-page") showSetting();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showSetting);
  else showSetting();
})();
