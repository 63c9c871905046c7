// The member list of a room page: a member's entry is one fragment for every viewer (it is
// broadcast), so the page hides the "Message" button in the viewer's own entry.
(() => {
  "use strict";

  function hideOwnButton() {
    const page = document.getElementById("chat-page");
    const me = page?.dataset.user;
    if (!me) return;
    for (const button of document.querySelectorAll('#members [data-action="direct-message"]')) {
      button.hidden = button.closest(".chat-member")?.dataset.user === me;
    }
  }

  document.addEventListener("DOMContentLoaded", hideOwnButton);
  // A room link swaps the page; presence updates replace members' entries.
  document.addEventListener("htmx:afterSettle", hideOwnButton);
  document.addEventListener("htmx:oobAfterSwap", hideOwnButton);
})();
