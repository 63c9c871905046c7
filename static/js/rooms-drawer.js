// The room list as a drawer on a phone (Bootstrap offcanvas-md, templates/chat/_rooms_drawer.html):
// a room picked in it closes it. The link swaps the chat part of the page, drawer included, so
// it is closed before it goes, which takes its backdrop away with it.
(function () {
  "use strict";

  document.addEventListener("click", (e) => {
    const drawer = e.target.closest("#chat-rooms.show");
    if (!drawer || !e.target.closest("a[href]") || !window.bootstrap) return;
    window.bootstrap.Offcanvas.getOrCreateInstance(drawer).hide();
  });
})();
