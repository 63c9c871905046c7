// The live sidebar: each room's unread and mention counts, and the tab title "(3) …".
//
// The server tells every page of a user about every new message in their rooms
// (chat:activity: room, id, author); this page raises that room's count unless it shows the
// room. What differs per user comes rendered: chat:unread (read in another tab, "Mark all
// read") and chat:mention replace the room's entry, chat:room adds one; realtime.js swaps those
// fragments in. After every (re)connect the sidebar is fetched again (GET /chat/sidebar), so
// that nothing missed while disconnected stays wrong. No HTML is built here: a first badge is
// cloned from a <template> the server rendered.
(function () {
  "use strict";

  const TITLE_COUNT = /^\(\d+\) /;
  let hiddenUnread = 0; // messages of others in the room shown here while the tab was hidden

  const $ = (id) => document.getElementById(id);
  const page = () => $("chat-page");
  const me = () => (page() && page().dataset.user) || "";
  const shownRoom = () => (page() && page().dataset.room) || "";
  const sameName = (a, b) => String(a || "").toLowerCase() === String(b || "").toLowerCase();

  function entries() {
    return Array.from(document.querySelectorAll("#room-list [data-room]"));
  }

  function entryOf(room) {
    return entries().find((el) => sameName(el.dataset.room, room)) || null;
  }

  // An entry's counts (data-unread, data-mentions, data-last-id and their badges).
  const countsOf = (entry) => entry.querySelector(".chat-room-badges");

  // The badge of a count ("unread" or "mentions"): shown with its number, or gone at zero.
  function setBadge(holder, role, count) {
    holder.dataset[role] = String(count);
    let badge = holder.querySelector(`[data-role="${role}"]`);
    if (!count) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      const template = $(`${role}-badge-template`);
      if (!template) return;
      badge = template.content.firstElementChild.cloneNode(true);
      // Mentions first, then unread, as the server renders them.
      if (role === "mentions") holder.prepend(badge);
      else holder.append(badge);
    }
    badge.textContent = role === "mentions" ? `@${count}` : String(count);
    badge.title = role === "mentions" ? `${count} mention${count === 1 ? "" : "s"}` : `${count} unread`;
  }

  // The room this page shows is marked, whatever the fragment that drew its entry said.
  function markShown() {
    const room = shownRoom();
    for (const el of entries()) {
      const shown = Boolean(room) && sameName(el.dataset.room, room);
      el.classList.toggle("active", shown);
      if (shown) el.setAttribute("aria-current", "page");
      else el.removeAttribute("aria-current");
    }
  }

  function updateTitle() {
    const base = document.title.replace(TITLE_COUNT, "");
    let count = hiddenUnread;
    for (const el of entries()) {
      const counts = countsOf(el);
      if (counts && !sameName(el.dataset.room, shownRoom())) count += Number(counts.dataset.unread) || 0;
    }
    const title = count > 0 ? `(${count}) ${base}` : base;
    if (document.title !== title) document.title = title;
  }

  // The room shown to someone looking at it is read as it arrives: counts the server sent
  // for it before it knew (a mention while it is on screen) are not shown.
  function clearShown() {
    const entry = shownRoom() && entryOf(shownRoom());
    const counts = entry && countsOf(entry);
    if (!counts || document.visibilityState === "hidden") return;
    setBadge(counts, "unread", 0);
    setBadge(counts, "mentions", 0);
  }

  function refresh() {
    markShown();
    clearShown();
    updateTitle();
  }

  // A message in the room shown here: read as it arrives while the tab is looked at, counted
  // in the title while it is hidden. (The server sends chat:activity only to the sockets that
  // do not show the room.)
  function shownMessage(data) {
    if (!data || !sameName(data.room, shownRoom()) || sameName(data.author, me())) return;
    if (document.visibilityState !== "hidden") return;
    hiddenUnread += 1;
    updateTitle();
  }

  // A new message in one of the user's rooms that this page does not show.
  function activity(data) {
    if (!data || !data.room || sameName(data.author, me())) return;
    if (sameName(data.room, shownRoom())) return;  // the room was switched to just now
    const entry = entryOf(data.room);
    const counts = entry && countsOf(entry);
    const id = Number(data.id);
    if (!counts || !Number.isFinite(id) || id <= (Number(counts.dataset.lastId) || 0)) return;
    counts.dataset.lastId = String(id);
    setBadge(counts, "unread", (Number(counts.dataset.unread) || 0) + 1);
    updateTitle();
  }

  // GET /chat/sidebar: the sidebar as the server counts it now. Only the counts that differ
  // are put in place of those shown (a link is never swapped under a click); new rooms are added.
  const SAME = ["unread", "mentions", "lastId"];

  function reload() {
    const list = $("room-list");
    if (!list || !list.dataset.sidebarUrl) return;
    fetch(list.dataset.sidebarUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        const shownList = $("room-list");
        if (html === null || !shownList) return;
        const tpl = document.createElement("template");
        tpl.innerHTML = html;
        for (const entry of Array.from(tpl.content.querySelectorAll("[data-room][id]"))) {
          const fresh = countsOf(entry);
          const shown = fresh && document.getElementById(fresh.id);
          if (!document.getElementById(entry.id)) {
            $(entry.dataset.direct ? "room-list-direct" : "room-list-rooms").append(entry);
            if (window.htmx) htmx.process(entry);
          } else if (shown && !SAME.every((key) => shown.dataset[key] === fresh.dataset[key])) {
            shown.replaceWith(fresh);
          }
        }
        refresh();
      })
      .catch(() => { /* offline again: the next connect fetches it */ });
  }

  document.addEventListener("realtime:chat:activity", (e) => activity(e.detail));
  document.addEventListener("realtime:chat:message", (e) => shownMessage(e.detail));
  for (const name of ["realtime:chat:unread", "realtime:chat:mention", "realtime:chat:room"]) {
    document.addEventListener(name, refresh);
  }
  document.addEventListener("realtime:connect", reload);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      hiddenUnread = 0;
      refresh();
    }
  });
  // A room link swapped the chat part of the page (and its sidebar), or history came back.
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && (e.target.id === "chat-page" || e.target.id === "room-list")) {
      hiddenUnread = 0;
      refresh();
    }
  });
  document.addEventListener("htmx:historyRestore", refresh);

  window.sidebar = { entryOf: entryOf };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", refresh);
  else refresh();
})();
