// The only bridge from the socket to the DOM.
//
// Every server event carries `html`: a fragment whose elements have hx-swap-oob, rendered once
// on the server for everyone. This file applies it with one generic htmx swap, keeps keyed
// lists free of duplicates and in id order, and after every (re)connect catches each live list
// up from the database so the page equals a fresh load. A list that names its stream
// (data-stream, data-seq) is kept in its stream's seq order by streams.js: a gap is fetched from
// /events at once, and a reconnect replays the events missed; one without catches up by id.
(function () {
  "use strict";

  const INSERTING = /^(afterbegin|beforeend|beforebegin|afterend)\b/;
  // Set (in this tab only) when the server ended the socket because the user logged out.
  const ENDED_KEY = "realtime:logged-out";
  let connectedBefore = false;
  let catchingUp = 0;
  let queued = [];
  let streams = null; // streams.js, for the lists that name their stream
  const tracked = new Set(); // the streams of the lists shown
  const bound = new WeakSet(); // the lists whose stream is tracked from their own data-seq

  function setStatus(state, text) {
    const badge = document.getElementById("connection-status");
    if (!badge) return;
    const styles = { connected: "text-bg-success", reconnecting: "text-bg-warning", offline: "text-bg-danger" };
    badge.className = "badge " + (styles[state] || "text-bg-secondary");
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function numericId(el) {
    const value = Number(el.dataset.id);
    return Number.isFinite(value) ? value : null;
  }

  // Move an inserted element so that its list stays ordered by data-id.
  function placeInOrder(el) {
    const list = el.parentElement;
    const id = numericId(el);
    if (!list || !list.dataset.order || id === null) return;
    const desc = list.dataset.order === "desc";
    const before = (other) => (desc ? numericId(other) < id : numericId(other) > id);
    for (const other of list.children) {
      if (other === el || numericId(other) === null) continue;
      if (before(other)) {
        if (other !== el.nextElementSibling) list.insertBefore(el, other);
        return;
      }
    }
    if (el !== list.lastElementChild) list.appendChild(el);
  }

  // The element an out-of-band fragment changes: "<swap>:<selector>", else the one with its id.
  function oobTarget(wrapper, oob) {
    const colon = oob.indexOf(":");
    const selector = colon >= 0 ? oob.slice(colon + 1) : wrapper.id && "#" + CSS.escape(wrapper.id);
    return selector ? document.querySelector(selector) : null;
  }

  // Apply a server-rendered update: inserted elements the page already shows are dropped.
  function apply(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html;
    const inserted = [];
    for (const wrapper of Array.from(tpl.content.children)) {
      const oob = wrapper.getAttribute("hx-swap-oob") || "";
      // What this page does not show (another page's list, a message not loaded, what it
      // already deleted itself) is left alone: htmx would log an error for each.
      if (!oobTarget(wrapper, oob)) {
        wrapper.remove();
        continue;
      }
      if (!INSERTING.test(oob)) continue;
      for (const child of Array.from(wrapper.children)) {
        if (child.id && document.getElementById(child.id)) child.remove();
        else if (child.id) inserted.push(child.id);
      }
    }
    htmx.swap(document.body, tpl.innerHTML, { swapStyle: "none" });
    for (const id of inserted) {
      const el = document.getElementById(id);
      if (el) placeInOrder(el);
    }
  }

  function handle(event, data) {
    if (data && typeof data.html === "string") apply(data.html);
    document.dispatchEvent(new CustomEvent("realtime:" + event, { detail: data }));
  }

  // Numbered streams ----------------------------------------------------------------------------
  const isStreamed = (list) => Boolean(list.dataset.stream && list.dataset.seq);

  function streamList(stream) {
    return document.querySelector(`[data-live-list][data-stream="${CSS.escape(stream)}"]`);
  }

  // Track the stream of each live list shown, from the seq it was rendered with; a list htmx
  // put in place of another (a room switch, history) starts again from its own.
  function bindStreams() {
    const shown = new Set();
    for (const list of document.querySelectorAll("[data-live-list][data-stream]")) {
      if (!isStreamed(list)) continue;
      const stream = list.dataset.stream;
      shown.add(stream);
      if (bound.has(list) && tracked.has(stream)) continue;
      bound.add(list);
      tracked.add(stream);
      streams.track(stream, Number(list.dataset.seq) || 0);
    }
    for (const stream of tracked) {
      if (shown.has(stream)) continue;
      tracked.delete(stream);
      streams.untrack(stream);
    }
  }

  // GET /events: the stream's events after a seq, with their fragments.
  function fetchEvents(stream, afterSeq) {
    const list = streamList(stream);
    const base = (list && list.dataset.eventsUrl) || "/events";
    const query = new URLSearchParams({ stream: stream, after_seq: String(afterSeq) });
    return fetch(base + "?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => {
        if (response.status === 410) return { status: 410 };
        if (!response.ok) throw new Error("events fetch failed: " + response.status);
        return response.json().then((body) => ({ status: 200, ...body }));
      });
  }

  function catchUpStream(list) {
    return streams.catchUp(list.dataset.stream).then(() => {
      list.dispatchEvent(new CustomEvent("realtime:caught-up", { bubbles: true }));
    });
  }

  // A socket event: numbered ones of a tracked stream go through streams.js (in seq order, once);
  // the rest are applied now, or after the catch-up under way.
  function deliver(event, data) {
    bindStreams();
    if (event === "stream:head") return void streams.head(data);
    if (streams.receive(event, data)) return;
    if (catchingUp > 0) queued.push([event, data]);
    else handle(event, data);
  }

  function ids(list) {
    return Array.from(list.children).map(numericId).filter((id) => id !== null);
  }

  // A list without a stream, by id. First connect: fetch what was added between render and
  // subscribe. Reconnect: re-fetch the whole window the page shows (and anything newer) and
  // replace it, so that edits and deletions made while disconnected are caught too. The answer
  // is an out-of-band fragment applied like any socket event.
  function catchUp(list, reconnect) {
    const shown = ids(list);
    const replace = reconnect && shown.length > 0;
    const lastId = Math.max(Number(list.dataset.lastId || 0), ...shown);
    const after = replace ? Math.min(...shown) - 1 : lastId;
    const base = list.dataset.catchupUrl;
    const url = base + (base.includes("?") ? "&" : "?") + "after=" + after;
    return fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => {
        if (response.headers.get("HX-Refresh") === "true") {
          window.location.reload();
          return null;
        }
        if (!response.ok) throw new Error("catch-up failed: " + response.status);
        return response.text();
      })
      .then((html) => {
        if (html === null) return;
        if (replace) list.replaceChildren();
        apply(html);
        list.dispatchEvent(new CustomEvent("realtime:caught-up", { bubbles: true }));
      });
  }

  // Every live list (or those matching `selector`): a streamed one replays its stream's events
  // since its last seq, the others fetch by id as above.
  function catchUpAll(reconnect, selector) {
    bindStreams();
    const lists = Array.from(document.querySelectorAll("[data-live-list]"))
      .filter((list) => !selector || list.matches(selector));
    catchingUp += 1;
    Promise.allSettled(lists.map((list) => (isStreamed(list) ? catchUpStream(list) : catchUp(list, reconnect))))
      .then(() => {
        catchingUp -= 1;
        if (catchingUp > 0) return;
        const pending = queued;
        queued = [];
        for (const [event, data] of pending) deliver(event, data);
      });
  }

  // The page after a logout elsewhere (reached by the reload below) says why: the login page
  // carries the note, hidden; any page reads and forgets the mark.
  function showLoggedOutNote() {
    let ended = null;
    try {
      ended = sessionStorage.getItem(ENDED_KEY);
      sessionStorage.removeItem(ENDED_KEY);
    } catch (_) { /* storage disabled: no note */ }
    const note = document.querySelector('[data-role="logged-out-note"]');
    if (note && ended && Date.now() - Number(ended) < 60000) note.hidden = false;
  }

  // The tab's status as its socket (re)connects, "online" or "away"; chat.js sets tabStatus
  // (hidden or idle) and reports changes later. A tab that opens or reconnects hidden must not
  // count as someone looking at its room, not even until its first report arrives.
  function tabStatus() {
    const own = window.realtime && window.realtime.tabStatus;
    if (own) return own();
    return document.visibilityState === "hidden" ? "away" : "online";
  }

  function start() {
    showLoggedOutNote();
    streams = window.streams.createStreams({
      fetchEvents: fetchEvents,
      apply: handle,
      // The list shows its stream up to here (read again if htmx keeps it in its history).
      applied: (stream, seq) => {
        const list = streamList(stream);
        if (list) list.dataset.seq = String(seq);
      },
      // The server no longer keeps what this page misses: load it again, as when a catch-up by
      // id is too far behind (HX-Refresh).
      reload: () => window.location.reload(),
    });
    const socket = io({
      transports: ["websocket"],
      auth: (send) => {
        window.realtime.connectStatus = tabStatus();
        send({ status: window.realtime.connectStatus });
      },
    });
    // catchUp(selector): page scripts call it after joining a room, to close the gap since
    // render (every live list, or those matching the selector).
    // tabStatus: set by chat.js; connectStatus: the status the last connect sent.
    window.realtime = {
      socket: socket, catchUp: (selector) => catchUpAll(false, selector), tabStatus: null, connectStatus: null,
    };
    socket.on("connect", () => {
      setStatus("connected", "Live");
      catchUpAll(connectedBefore);
      connectedBefore = true;
      document.dispatchEvent(new CustomEvent("realtime:connect"));
    });
    // This worker's message-queue listener was away: events may have been missed. Catch up
    // like after a reconnect (the connection itself stayed up).
    socket.on("server:resync", () => catchUpAll(true));
    // This page is going away (the logout form itself, a link): nothing to reload.
    let leaving = false;
    window.addEventListener("beforeunload", () => { leaving = true; });
    socket.on("disconnect", (reason) => {
      setStatus("reconnecting", "Reconnecting…");
      // Only the server ends a socket on purpose, when the user logged out (in this browser or
      // another one): load the page again, as the logged-out visitor this browser now is, and
      // let that page say why. (Drafts are kept by drafts.js.)
      if (reason === "io server disconnect" && !leaving) {
        try { sessionStorage.setItem(ENDED_KEY, String(Date.now())); } catch (_) { /* no note */ }
        window.location.reload();
      }
    });
    // A connection the server refused (too many from this address) is not retried by
    // socket.io itself: try again once the wait it asked for is over, with some jitter.
    socket.on("connect_error", (error) => {
      if (socket.active) return;
      const wait = Number((/(\d+) seconds?/.exec(error.message) || [])[1]) || 30;
      setStatus("reconnecting", "Reconnecting…");
      setTimeout(() => socket.connect(), (wait + Math.random() * 5) * 1000);
    });
    socket.io.on("reconnect_attempt", () => setStatus("reconnecting", "Reconnecting…"));
    socket.io.on("reconnect_failed", () => setStatus("offline", "Offline"));
    socket.onAny(deliver);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
