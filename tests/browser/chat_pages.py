"""What a person sees and does in the chat, for the browser tests."""

import re
from urllib.parse import quote

from playwright.sync_api import Page, expect

from .pages import open_live, wait_live

PASSWORD = "correct horse battery"


def fill_account_form(page: Page, username: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)


def register(page: Page, base_url: str, username: str, next_path: str | None = None) -> Page:
    """Register through the form (which logs in); lands on ``next_path`` or the room list."""
    query = f"?next={quote(next_path, safe='')}" if next_path else ""
    page.goto(f"{base_url}/register{query}")
    fill_account_form(page, username)
    page.get_by_role("button", name="Register").click()
    expect(page.locator('[data-role="nav-user"]')).to_have_text(username)
    return page


def log_in(page: Page, username: str) -> None:
    """Log in through the form the page shows."""
    fill_account_form(page, username)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator('[data-role="nav-user"]')).to_have_text(username)


def csrf_headers(page: Page) -> dict:
    """Headers a script on this page would send with a POST (the page's CSRF token)."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    return {"X-CSRFToken": token, "Accept": "application/json"}


class ChatPage:
    """A room page (``/chat/<room>``) as one logged-in person sees it."""

    def __init__(self, page: Page):
        self.page = page
        self.composer = page.get_by_label("Message", exact=True)
        self.messages = page.locator("#messages > .chat-message")
        self.feedback = page.locator("#composer-feedback")

    @classmethod
    def open(cls, page: Page, base_url: str, room: str, join: bool = True) -> "ChatPage":
        """Open a room; ``join``: also join it when the page offers Join (one is not a member)."""
        open_live(page, f"{base_url}/chat/{room}")
        chat = cls(page)
        if not join:
            wait_live(page)
            return chat
        if page.locator('[data-action="join-room"]').count():
            chat.join()
        chat.wait_joined()
        return chat

    def join(self) -> None:
        """Click Join: the composer takes the button's place."""
        self.page.locator('[data-action="join-room"]').click()
        expect(self.composer).to_be_visible()

    @property
    def user(self) -> str:
        return self.page.locator("#chat-page").get_attribute("data-user")

    def wait_joined(self) -> None:
        """The page is live and lists its own user among the members, Online."""
        wait_live(self.page)
        expect(self.member_status(self.user)).to_have_text("Online")

    # Messages --------------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Type ``text`` into the composer and press Enter (a newline is typed as Shift+Enter)."""
        self.composer.click()
        for number, line in enumerate(text.split("\n")):
            if number:
                self.page.keyboard.press("Shift+Enter")
            self.page.keyboard.type(line)
        self.page.keyboard.press("Enter")

    def post(self, text: str) -> None:
        """Put ``text`` into the composer at once (long or odd text) and press Enter."""
        self.composer.fill(text)
        self.composer.press("Enter")

    def message(self, message_id: int):
        return self.page.locator(f"#message-{message_id}")

    def message_with(self, text: str):
        """The message whose body is exactly ``text``."""
        exact = re.compile(r"^" + re.escape(text) + r"$")
        return self.messages.filter(has=self.page.locator(".chat-body").filter(has_text=exact))

    def id_of(self, text: str) -> int:
        found = self.message_with(text)
        expect(found).to_have_count(1)
        return int(found.get_attribute("data-id"))

    def wait_count(self, count: int) -> None:
        expect(self.messages).to_have_count(count)

    def snapshot(self) -> list[tuple[int, str, str, bool]]:
        """(id, author, body, edited) of every message shown, in display order."""
        rows = self.page.eval_on_selector_all(
            "#messages > .chat-message",
            "els => els.map(el => [Number(el.dataset.id), el.dataset.author,"
            " el.querySelector('.chat-body').textContent,"
            " el.querySelector('[data-role=edited]') !== null])",
        )
        return [tuple(row) for row in rows]

    def bodies(self) -> list[str]:
        return [row[2] for row in self.snapshot()]

    def edit(self, message_id: int, text: str) -> None:
        """Edit one's own message: Edit, replace the text in the composer, Enter."""
        self.message(message_id).hover()
        self.message(message_id).get_by_role("button", name="Edit").click()
        expect(self.composer).to_be_focused()
        self.composer.fill(text)
        self.composer.press("Enter")

    def delete(self, message_id: int) -> None:
        """Delete one's own message and confirm the browser's question."""
        self.page.once("dialog", lambda dialog: dialog.accept())
        self.message(message_id).hover()
        self.message(message_id).get_by_role("button", name="Delete").click()

    # People ----------------------------------------------------------------------------

    def member_status(self, username: str):
        return self.page.locator(f'#members [data-user="{username}"] [data-role="status"]')

    def typing(self, username: str):
        """The "<user> is typing…" line of ``username``."""
        return self.page.locator(f'#typing .chat-typing[data-author="{username}"]')

    # Rooms -----------------------------------------------------------------------------

    def room_link(self, room: str):
        return self.page.get_by_role("navigation", name="Rooms").locator(f'[data-room="{room}"]')

    def unread(self, room: str):
        return self.room_link(room).locator('[data-role="unread"]')

    def switch_to(self, room: str) -> None:
        """Click a room in the room list; only the chat part of the page changes."""
        self.room_link(room).click()
        expect(self.page).to_have_url(re.compile(rf"/chat/{re.escape(room)}$"))
        expect(self.page.locator("#chat-page")).to_have_attribute("data-room", room)
        expect(self.page.get_by_role("heading", level=1)).to_have_text(f"# {room}")

    def create_room(self, room: str) -> None:
        """Create a room with the "New room" form; the page goes there."""
        self.page.get_by_label("New room").fill(room)
        self.page.get_by_role("button", name="Create").click()


def mark_document(page: Page) -> None:
    """Leave a mark on the current document: gone if the page is ever reloaded."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")
