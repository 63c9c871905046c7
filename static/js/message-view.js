// How the message list reads for this viewer: times in the viewer's zone and language, a day
// separator above each day's first message, messages of one author within five minutes grouped
// under one author line, and a "New messages" line above the first message that was unread when
// the room was entered. Fragments are the same for everyone (data-author, data-created, <time
// datetime>); what is added is cloned from the page's <template>s. The list is decorated again
// whenever its messages change (live, deleted, edited, older ones loaded, caught up): one pass
// over the list, which leaves in place what is already right.
(function () {
  "use strict";

  const GROUP_MS = 5 * 60 * 1000;     // one author line for messages within five minutes
  const RELATIVE_MS = 60 * 60 * 1000; // under an hour old: "5 min ago"
  const REFRESH_MS = 30 * 1000;       // relative times and "Today" move on

  const clock = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
  const days = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  let list = null;        // the #messages shown
  let observer = null;
  let firstUnread = null; // id of the first message unread on entering the room, if any

  const $ = (id) => document.getElementById(id);
  const user = () => ($("chat-page") && $("chat-page").dataset.user) || "";
  const sameName = (a, b) => String(a || "").toLowerCase() === String(b || "").toLowerCase();
  const messagesOf = (el) => Array.from(el.querySelectorAll(":scope > .chat-message"));
  const idOf = (el) => Number(el.dataset.id);

  function createdOf(el) {
    const at = Date.parse(el.dataset.created || "");
    return Number.isFinite(at) ? at : null;
  }

  // The local calendar day, "2026-12-07", in the viewer's time zone.
  function dayKey(at) {
    const d = new Date(at);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }

  function startOfDay(at) {
    const d = new Date(at);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }

  const capitalised = (text) => text.charAt(0).toLocaleUpperCase() + text.slice(1);

  // "Today", "Yesterday" (in the viewer's language), else the date, with the year when not this one.
  function dayLabel(at) {
    const now = Date.now();
    const apart = Math.round((startOfDay(now) - startOfDay(at)) / 86400000);
    if (apart === 0 || apart === 1) return capitalised(days.format(-apart, "day"));
    const options = { weekday: "long", month: "long", day: "numeric" };
    if (new Date(at).getFullYear() !== new Date(now).getFullYear()) options.year = "numeric";
    return new Intl.DateTimeFormat(undefined, options).format(at);
  }

  // A message's own time: relative while under an hour old on its author line, else the clock.
  function timeText(at, continued) {
    const age = Date.now() - at;
    if (continued || age >= RELATIVE_MS || age < -60000) return clock.format(at);
    const minutes = Math.floor(Math.max(age, 0) / 60000);
    return minutes === 0 ? capitalised(relative.format(0, "second")) : relative.format(-minutes, "minute");
  }

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setAttr(el, name, value) { if (el.getAttribute(name) !== value) el.setAttribute(name, value); }

  function showTimes(message, at, continued) {
    const time = message.querySelector("time.chat-time");
    if (time && at !== null) {
      setText(time, timeText(at, continued));
      setAttr(time, "title", full.format(at));
    }
    const edited = message.querySelector("[data-edited]");
    const editedAt = edited && Date.parse(edited.dataset.edited);
    if (Number.isFinite(editedAt)) setAttr(edited, "title", `Edited ${full.format(editedAt)}`);
  }

  function cloned(id) {
    const template = $(id);
    return template ? template.content.firstElementChild.cloneNode(true) : null;
  }

  function separatorFor(day, at) {
    const separator = cloned("day-separator-template");
    if (!separator) return null;
    separator.dataset.day = day;
    separator.dataset.at = String(at);
    return separator;
  }

  // The "New messages" line goes before the first unread message still shown (the one it was
  // above may have been deleted since); none once there is none.
  function placeNewLine(messages) {
    let line = list.querySelector(':scope > [data-role="new-messages"]');
    const target = firstUnread === null ? null : messages.find((m) => idOf(m) >= firstUnread);
    if (!target) {
      if (line) line.remove();
      return null;
    }
    if (!line) line = cloned("new-messages-template");
    if (line && line.nextElementSibling !== target) list.insertBefore(line, target);
    return line;
  }

  function decorate() {
    if (!list || !list.isConnected) return;
    const messages = messagesOf(list);
    const line = placeNewLine(messages);
    const kept = new Set();
    let previous = null;
    let groupStart = null; // the first message of the current group: its author and time
    for (const message of messages) {
      const at = createdOf(message);
      const day = at === null ? "" : dayKey(at);
      const previousAt = previous && createdOf(previous);
      const newDay = !previous || previousAt === null || dayKey(previousAt) !== day;
      if (newDay && at !== null) {
        // Above the "New messages" line when both start at this message.
        const anchor = line && line.nextElementSibling === message ? line : message;
        let separator = anchor.previousElementSibling;
        if (!(separator && separator.dataset.role === "day-separator" && separator.dataset.day === day)) {
          separator = separatorFor(day, at);
          if (separator) list.insertBefore(separator, anchor);
        }
        if (separator) {
          kept.add(separator);
          setText(separator.querySelector(".chat-day-label") || separator, dayLabel(at));
        }
      }
      const continued = Boolean(
        !newDay && groupStart && at !== null &&
        !(line && line.nextElementSibling === message) &&
        sameName(groupStart.dataset.author, message.dataset.author) &&
        at - createdOf(groupStart) < GROUP_MS && at >= createdOf(groupStart)
      );
      if (!continued) groupStart = message;
      message.toggleAttribute("data-continued", continued);
      showTimes(message, at, continued);
      previous = message;
    }
    for (const separator of list.querySelectorAll(':scope > [data-role="day-separator"]')) {
      if (!kept.has(separator)) separator.remove();
    }
    // What this pass changed is no news to itself.
    if (observer) observer.takeRecords();
  }

  // The room shown: note its first unread message (not one's own) and follow its list.
  function pageShown() {
    const shown = $("messages");
    if (observer) observer.disconnect();
    list = shown;
    firstUnread = null;
    if (!list) return;
    const lastRead = list.dataset.lastRead ? Number(list.dataset.lastRead) : NaN;
    if (Number.isFinite(lastRead)) {
      const unread = messagesOf(list).find((m) => idOf(m) > lastRead && !sameName(m.dataset.author, user()));
      if (unread) firstUnread = idOf(unread);
    }
    observer = new MutationObserver(decorate);
    observer.observe(list, { childList: true });
    decorate();
  }

  // Read by message-scroll.js: where the conversation continues for this viewer.
  window.messageView = {
    newLine: () => (list ? list.querySelector(':scope > [data-role="new-messages"]') : null),
  };

  // A room link swapped the chat part of the page: decorated before it is first painted.
  for (const name of ["htmx:afterSwap", "htmx:afterSettle", "htmx:historyRestore"]) {
    document.addEventListener(name, () => { if ($("messages") !== list) pageShown(); });
  }
  setInterval(decorate, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") decorate();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", pageShown);
  else pageShown();
})();
