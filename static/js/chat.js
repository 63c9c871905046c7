// Chat page behaviour. It emits through window.realtime.socket (join, send, edit, delete,
// typing, presence) and toggles classes and attributes; it never inserts HTML: realtime.js
// applies every server-rendered fragment and tells us through "realtime:*" DOM events.
(function () {
  "use strict";

  const IDLE_MS = 5 * 60 * 1000;     // no input for this long: Away
  // At most one chat:typing a second; a little over the server's 1 s throttle, so that network
  // jitter never makes the server drop one.
  const TYPING_EVERY_MS = 1100;
  const TYPING_SHOWN_MS = 5000;       // an indicator goes 5 s after the last keystroke
  const ACK_TIMEOUT_MS = 10000;
  const RETRY_MS = [2000, 4000, 8000, 15000, 30000];   // resends after "retry" answers

  // client_id -> {room, body, client_id}: typed, not yet stored, in the order typed. They go
  // one at a time (so they are stored in that order), each under its client id until the
  // server answers: a resend of a stored one stores nothing new.
  const pending = new Map();
  let sending = false;                // a chat:send is waiting for its answer
  let sendLater = null;               // timer: the server asked us to wait (flood, busy)
  let retries = 0;
  const returned = new Map();         // room -> {body, error}: refused, for its composer
  let editExpiry = null;              // timer: the next own message whose Edit goes
  let skew = 0;                       // the server's clock minus this browser's, in ms
  const typingTimers = new Map();
  let joined = null;                  // the room this socket has joined
  let lastTyping = 0;
  let typingLater = null;             // a keystroke came within the second: tell it at its end
  let lastActivity = Date.now();
  let sentStatus = "online";
  let editing = null;                 // id of the own message being edited
  let ownSheet = null;

  const $ = (id) => document.getElementById(id);
  const page = () => $("chat-page");
  const currentRoom = () => (page() && page().dataset.room) || null;
  const socket = () => window.realtime && window.realtime.socket;
  const connected = () => Boolean(socket() && socket().connected);
  const sameName = (a, b) => String(a || "").toLowerCase() === String(b || "").toLowerCase();

  // The answer of an event through its acknowledgement; null when not connected or no answer.
  function emit(event, data) {
    return new Promise((resolve) => {
      if (!connected()) return resolve(null);
      socket().timeout(ACK_TIMEOUT_MS).emit(event, data, (err, ack) => resolve(err ? null : ack));
    });
  }

  function feedback(text, isError) {
    const el = $("composer-feedback");
    if (!el) return;
    el.textContent = text || "";
    el.classList.toggle("text-danger", Boolean(isError));
  }

  function showPending() {
    // The one on its way over a live connection is not waiting.
    const waiting = pending.size - (sending && connected() ? 1 : 0);
    if (waiting > 0) feedback(waiting === 1 ? "1 message waiting to be sent…" : `${waiting} messages waiting to be sent…`);
    else if (!$("composer-feedback")?.classList.contains("text-danger") && !editing) feedback("");
  }

  // Own messages and own typing are told apart by CSS on data-author, for this user only: a
  // mark beside own messages (chat.css --chat-own-mark) and their Edit and Delete.
  function styleOwn() {
    const user = page() && page().dataset.user;
    if (!user || ownSheet || !("adoptedStyleSheets" in document)) return;
    const who = `[data-author="${CSS.escape(user)}"]`;
    ownSheet = new CSSStyleSheet();
    ownSheet.replaceSync(
      `.chat-message${who} { border-left-color: var(--chat-own-mark); }\n` +
      `.chat-message${who} .chat-actions { display: flex; }\n` +
      `.chat-typing${who} { display: none; }`
    );
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, ownSheet];
  }

  // Rooms ----------------------------------------------------------------------------------
  function newestShown() {
    const list = $("messages");
    if (!list) return 0;
    const ids = Array.from(list.children, (el) => Number(el.dataset.id)).filter(Number.isFinite);
    return Math.max(Number(list.dataset.lastId || 0), 0, ...ids);
  }

  // True when the member list shown is not the one the server answered (name -> status).
  function membersDiffer(members) {
    if (!Array.isArray(members)) return false;
    const shown = new Map(Array.from(document.querySelectorAll("#members .chat-member"),
      (el) => [el.dataset.user, el.dataset.status]));
    return members.length !== shown.size || members.some((m) => shown.get(m.user) !== m.status);
  }

  function join() {
    if (!connected()) return;                    // realtime:connect will call us
    const room = currentRoom();
    if (sameName(room, joined)) return;
    if (joined && !room) emit("chat:leave", { room: joined });
    joined = room;
    if (!room) return;
    emit("chat:join", { room }).then((ack) => {
      if (!ack) return;
      if (!ack.ok && ack.retry) {
        // The server was busy (not a bad room): join again in a few seconds, unless the
        // page moved on or its socket went away (realtime:connect joins again then).
        joined = null;
        setTimeout(() => { if (sameName(currentRoom(), room)) join(); }, 2000 + Math.random() * 3000);
        return;
      }
      if (!ack.ok) return feedback(ack.error, true);
      // Messages posted, or presence changed, between this page's render and the join:
      // fetch them (realtime.js catches up every live list, the members too). A list with a
      // stream asks its stream anyway: an edit or a deletion does not move the newest id.
      const behind = ack.last_id > newestShown() || membersDiffer(ack.members);
      if (window.realtime.catchUp) {
        if (behind) window.realtime.catchUp();
        else window.realtime.catchUp("[data-stream]");
      }
      flush();
    });
  }

  // Sending: one at a time, resent under the same client id until the server has it -------
  function wait(ms) {
    clearTimeout(sendLater);
    sendLater = setTimeout(() => { sendLater = null; flush(); }, ms);
  }

  function flush() {
    const item = pending.values().next().value;
    // Not connected: realtime:connect flushes again. Told to wait: its timer does.
    if (item && !sending && !sendLater && connected()) send(item);
    showPending();
  }

  function send(item) {
    sending = true;
    emit("chat:send", item).then((ack) => {
      sending = false;
      if (!ack) {
        // No answer: not connected (sent again once it is), or the answer was lost.
        if (connected()) wait(RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)]);
        return showPending();
      }
      if (ack.ok || !(ack.retry_after || ack.retry)) {
        pending.delete(item.client_id);
        retries = 0;
        if (!ack.ok) handBack(item, ack.error);
        return flush();
      }
      showPending();
      // Flood control says when it is allowed (a little jitter: tabs of one user share the
      // limit); a busy server (the database briefly down), with back-off.
      if (ack.retry_after) wait(ack.retry_after * 1000 + Math.random() * 500);
      else wait(RETRY_MS[Math.min(retries++, RETRY_MS.length - 1)] * (0.75 + Math.random() / 2));
    });
  }

  // A message the server refused for good goes back into its room's composer, with the reason.
  function handBack(item, error) {
    const key = String(item.room || "").toLowerCase();
    const earlier = returned.get(key);
    returned.set(key, { body: earlier ? `${earlier.body}\n${item.body}` : item.body, error });
    restoreReturned();
  }

  function restoreReturned() {
    const box = $("composer-body");
    const key = String(currentRoom() || "").toLowerCase();
    const item = returned.get(key);
    if (!box || !item || editing) return;
    returned.delete(key);
    box.value = box.value.trim() ? `${item.body}\n${box.value}` : item.body;
    feedback(item.error, true);
  }

  function submit() {
    const box = $("composer-body");
    const body = box.value;
    if (!body.trim()) return feedback("Type a message first.", true);
    if (editing) {
      const id = editing;
      emit("chat:edit", { id, body }).then((ack) => {
        if (editing !== id) return;                  // cancelled meanwhile
        if (!ack) feedback("Not connected: the edit was not saved.", true);
        else if (ack.ok) stopEditing(true);
        else if (ack.retry || ack.retry_after) feedback(ack.error, true);   // may work in a moment
        else {
          // Refused for good (the edit window passed, say): the text stays in the composer.
          stopEditing(false);
          feedback(ack.error, true);
          expireEdits();
        }
      });
      return;
    }
    const item = { room: currentRoom(), body, client_id: window.clientId() };
    pending.set(item.client_id, item);
    box.value = "";
    clearTimeout(typingLater);
    typingLater = null;
    feedback("");
    flush();
    box.focus();
  }

  // Editing and deleting own messages -------------------------------------------------------
  function editableUntil(article) {
    const until = Date.parse(article.dataset.editableUntil || "");
    return Number.isFinite(until) ? until : Infinity;
  }

  // Edit is offered on own messages while the server allows it: hidden once their time is up,
  // by a timer set for the next one due (every viewer gets the same fragment, with its time).
  function expireEdits() {
    clearTimeout(editExpiry);
    const user = page() && page().dataset.user;
    if (!user) return;
    let next = Infinity;
    for (const article of document.querySelectorAll(`#messages > .chat-message[data-author="${CSS.escape(user)}"]`)) {
      const button = article.querySelector('[data-action="edit"]');
      if (!button || button.hidden) continue;
      const until = editableUntil(article);
      if (until <= Date.now() + skew) button.hidden = true;
      else next = Math.min(next, until);
    }
    // Checked again at least every minute: timers of a sleeping laptop or hidden tab run late.
    if (next < Infinity) editExpiry = setTimeout(expireEdits, Math.min(next - Date.now() - skew + 50, 60000));
  }

  function startEditing(article) {
    const box = $("composer-body");
    if (editableUntil(article) <= Date.now() + skew) {
      expireEdits();
      return feedback("Messages can only be edited within 10 minutes of posting.", true);
    }
    editing = Number(article.dataset.id);
    box.value = article.dataset.body ?? article.querySelector(".chat-body").textContent;
    $("composer").classList.add("is-editing");
    document.querySelector('[data-action="cancel-edit"]').hidden = false;
    feedback("Editing your message: Enter saves, Esc cancels.");
    box.focus();
  }

  function stopEditing(clear) {
    editing = null;
    $("composer")?.classList.remove("is-editing");
    const cancel = document.querySelector('[data-action="cancel-edit"]');
    if (cancel) cancel.hidden = true;
    if (clear && $("composer-body")) $("composer-body").value = "";
    feedback("");
    showPending();
    restoreReturned();
  }

  // Typing ---------------------------------------------------------------------------------
  function typed() {
    const room = currentRoom();
    const box = $("composer-body");
    if (!room || !box || editing || !box.value.trim()) return;
    // Keystrokes within a second of the last event are told once when that second is over:
    // a short word typed just after sending a message still shows.
    const wait = lastTyping + TYPING_EVERY_MS - Date.now();
    if (wait > 0) {
      if (!typingLater) typingLater = setTimeout(() => { typingLater = null; typed(); }, wait);
      return;
    }
    lastTyping = Date.now();
    emit("chat:typing", { room });
  }

  function typingOf(user) {
    return Array.from(document.querySelectorAll("#typing .chat-typing"))
      .find((el) => el.dataset.author === user);
  }

  function showTyping(user) {
    const el = typingOf(user);
    if (!el) return;
    el.hidden = false;
    clearTimeout(typingTimers.get(user));
    typingTimers.set(user, setTimeout(() => { el.hidden = true; }, TYPING_SHOWN_MS));
  }

  function hideTyping(user) {
    const el = typingOf(user);
    if (el) el.hidden = true;
    clearTimeout(typingTimers.get(user));
  }

  // Presence: this tab is away while hidden or idle. "Appear away" is the user's choice for
  // the account, kept by the server (every tab and browser shows it), not a tab's status.
  function wantedStatus() {
    if (document.visibilityState === "hidden") return "away";
    if (Date.now() - lastActivity > IDLE_MS) return "away";
    return "online";
  }
  // Asked by realtime.js when the socket (re)connects: a tab that opens hidden is away at once.
  if (window.realtime) window.realtime.tabStatus = wantedStatus;

  function showChosen(status) {
    const toggle = document.querySelector('[data-action="appear-away"]');
    if (toggle) toggle.checked = status === "away";
  }

  function reportStatus() {
    const status = wantedStatus();
    if (status === sentStatus || !connected()) return;
    sentStatus = status;
    emit("presence:set", { status });
  }

  function active() {
    lastActivity = Date.now();
    if (sentStatus === "away") reportStatus();
  }

  // Wiring ---------------------------------------------------------------------------------
  function pageShown() {
    styleOwn();
    const now = Date.parse($("messages")?.dataset.now || "");
    if (Number.isFinite(now)) skew = now - Date.now();
    stopEditing(false);
    $("composer-body")?.focus();
    restoreReturned();
    expireEdits();
    join();
  }

  document.addEventListener("realtime:connect", () => {
    joined = null;                 // a new socket has joined nothing yet
    // The server counts it as the status realtime.js sent when it connected.
    sentStatus = window.realtime.connectStatus || "online";
    reportStatus();
    join();
    flush();
  });
  // Just after a room switch, until the server has handled the new join, events of the room
  // left still arrive: take off what they put on this page.
  const otherRoom = (data) => Boolean(data && data.room && !sameName(data.room, currentRoom()));

  // Scrolling follows the list by itself (message-scroll.js).
  document.addEventListener("realtime:chat:message", (e) => {
    const message = e.detail || {};
    hideTyping(message.author);
    if (otherRoom(message)) $(`message-${message.id}`)?.remove();
  });
  document.addEventListener("realtime:chat:typing", (e) => {
    if (!e.detail) return;
    if (otherRoom(e.detail)) hideTyping(e.detail.user);
    else showTyping(e.detail.user);
  });
  // Messages came in or were replaced (live, catch-up, older history): their Edit too.
  for (const name of ["realtime:chat:message", "realtime:chat:message-edited", "realtime:caught-up", "htmx:oobAfterSwap"]) {
    document.addEventListener(name, expireEdits);
  }

  document.addEventListener("submit", (e) => {
    if (e.target.id !== "composer" || !socket()) return;   // without a socket the form posts
    e.preventDefault();
    submit();
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.id !== "composer-body") return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    } else if (e.key === "Escape" && editing) {
      stopEditing(true);
    }
  });
  document.addEventListener("input", (e) => { if (e.target.id === "composer-body") typed(); });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-action]");
    if (!button) return;
    const article = button.closest(".chat-message");
    const action = button.dataset.action;
    if (action === "edit" && article) startEditing(article);
    else if (action === "cancel-edit") stopEditing(true);
    else if (action === "delete" && article && window.confirm("Delete this message?")) {
      emit("chat:delete", { id: Number(article.dataset.id) }).then((ack) => {
        if (!ack) feedback("Not connected: the message was not deleted.", true);
        else if (!ack.ok) feedback(ack.error, true);
        // The button went with its message: keep the keyboard in the conversation.
        const lost = !document.activeElement || document.activeElement === document.body;
        if (lost) $("composer-body")?.focus();
      });
    }
  });
  document.addEventListener("change", (e) => {
    if (e.target.dataset.action !== "appear-away") return;
    const status = e.target.checked ? "away" : "online";
    emit("presence:set", { status, chosen: true }).then((ack) => {
      if (ack && ack.ok) return;
      showChosen(status === "away" ? "online" : "away");      // not changed: say so
      feedback(ack ? ack.error : "Not connected: your status was not changed.", true);
    });
  });
  // The choice made in another tab or browser of this user (the server tells each of them).
  document.addEventListener("realtime:presence:chosen", (e) => showChosen(e.detail && e.detail.status));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") lastActivity = Date.now();
    reportStatus();
  });
  for (const name of ["pointerdown", "keydown", "mousemove", "wheel", "touchstart", "focus"]) {
    window.addEventListener(name, active, { passive: true, capture: true });
  }
  setInterval(reportStatus, 15000);

  // A room link swapped the chat part of the page: join the room it shows.
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && e.target.id === "chat-page") pageShown();
  });
  document.addEventListener("htmx:historyRestore", pageShown);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", pageShown);
  else pageShown();
})();
