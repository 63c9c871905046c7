// Where the message list is scrolled. Entering a room shows the "New messages" line near the
// top when what is unread does not fit (with "Jump to latest"), else the newest message. At the bottom, the view follows
// what arrives; scrolled up, it stays put and "Jump to latest" appears when something new
// arrives (it goes on reaching the bottom). One's own new message always brings the view down.
// "Load older" prepends: what the reader looks at stays in place.
(function () {
  "use strict";

  const NEAR_PX = 48;        // this close to the bottom counts as at the bottom
  const LINE_MARGIN_PX = 24; // room above the "New messages" line when it is scrolled to

  let stick = true;          // keep the view at the bottom
  let keepScroll = null;     // distance from the bottom while older messages load
  let newest = 0;            // the newest message id shown: tells arrivals from older history
  let observer = null;
  let entered = null;        // the #messages entered
  const bound = new WeakSet();

  const $ = (id) => document.getElementById(id);
  const scroller = () => $("message-scroller");
  const user = () => ($("chat-page") && $("chat-page").dataset.user) || "";
  const sameName = (a, b) => String(a || "").toLowerCase() === String(b || "").toLowerCase();
  const atBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_PX;

  function newestMessage() {
    let found = null;
    for (const el of document.querySelectorAll("#messages > .chat-message")) {
      if (!found || Number(el.dataset.id) > Number(found.dataset.id)) found = el;
    }
    return found;
  }

  function showJump(shown) {
    const button = $("jump-to-latest");
    if (button && button.hidden === shown) button.hidden = !shown;
  }

  function toBottom() {
    const el = scroller();
    if (el) el.scrollTop = el.scrollHeight;
    stick = true;
    showJump(false);
  }

  // The list changed (live, caught up, deleted, edited, older loaded).
  function changed() {
    const el = scroller();
    if (!el) return;
    const last = newestMessage();
    const id = last ? Number(last.dataset.id) : 0;
    const arrived = id > newest;
    newest = Math.max(newest, id);
    // Scrolled up just now, before the scroll event came (they come with the next frame): the
    // message that was last before this one is already below the view.
    const before = arrived && last.previousElementSibling;
    if (stick && before && before.getBoundingClientRect().bottom
        > el.getBoundingClientRect().bottom + NEAR_PX) stick = false;
    if (keepScroll !== null && !arrived) {
      el.scrollTop = el.scrollHeight - keepScroll;
      keepScroll = null;
      return;
    }
    if (stick || (arrived && sameName(last.dataset.author, user()))) toBottom();
    else if (arrived) showJump(true);
  }

  // Entering a room: the first unread message, else the newest.
  function enter() {
    const el = scroller();
    const list = $("messages");
    entered = list;
    if (!el || !list) return;
    keepScroll = null;
    const last = newestMessage();
    newest = last ? Number(last.dataset.id) : 0;
    toBottom();
    const line = window.messageView && window.messageView.newLine();
    if (line && line.offsetTop - LINE_MARGIN_PX < el.scrollTop) {
      el.scrollTop = Math.max(0, line.offsetTop - LINE_MARGIN_PX);
      stick = atBottom(el);
      showJump(!stick);   // more that is new below
    }
    if (!bound.has(el)) {
      bound.add(el);
      el.addEventListener("scroll", () => {
        stick = atBottom(el);
        if (stick) showJump(false);
      }, { passive: true });
      // The box changes size (a phone's keyboard opens, the window is resized): stay at the bottom.
      new ResizeObserver(() => { if (stick) el.scrollTop = el.scrollHeight; }).observe(el);
    }
    if (observer) observer.disconnect();
    observer = new MutationObserver(changed);
    observer.observe(list, { childList: true });
  }

  document.addEventListener("click", (e) => {
    if (!e.target.closest('[data-action="jump-to-latest"]')) return;
    toBottom();
    // The button goes: from the keyboard (no pointer, detail 0), the composer takes the focus;
    // a tap does not open a phone's keyboard.
    if (e.detail === 0) $("composer-body")?.focus();
  });
  document.addEventListener("htmx:beforeRequest", (e) => {
    const el = scroller();
    if (el && e.target.dataset && e.target.dataset.action === "load-older") {
      keepScroll = el.scrollHeight - el.scrollTop;
    }
  });
  // A room link swapped the chat part of the page: in place before it is first painted.
  for (const name of ["htmx:afterSwap", "htmx:afterSettle", "htmx:historyRestore"]) {
    document.addEventListener(name, () => { if ($("messages") !== entered) enter(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enter);
  else enter();
})();
