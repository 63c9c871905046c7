"""Changing one's password: the current one is checked, and every other session ends."""

from .conftest import PASSWORD, Account, Browser

NEW = "a brand new passphrase"


def change(account, current, new, **kwargs):
    return account.browser.post(
        "/account/password",
        {"current_password": current, "new_password": new},
        htmx=False,
        **kwargs,
    )


def test_the_form_is_reachable_from_the_user_menu(app):
    alice = Account(app, "alice")
    page = alice.client.get("/chat").get_data(as_text=True)
    assert 'href="/account/password"' in page
    form = alice.client.get("/account/password")
    assert form.status_code == 200 and 'name="current_password"' in form.get_data(as_text=True)
    # Logged out: to the login page first.
    assert app.test_client().get("/account/password").status_code == 302


def test_a_wrong_current_password_or_a_weak_new_one_is_422_and_changes_nothing(app):
    alice = Account(app, "alice")
    for current, new, reason in (
        ("not my password", NEW, "The current password is wrong."),
        (PASSWORD, "short", "Password must be at least 8 characters."),
        (PASSWORD, PASSWORD, "The new password is the same as the current one."),
    ):
        answer = change(alice, current, new)
        assert answer.status_code == 422 and reason in answer.get_data(as_text=True)
    # Still logged in, and the old password still logs in elsewhere.
    assert alice.client.get("/chat").status_code == 200
    other = Browser(app.test_client())
    assert (
        other.post("/login", {"username": "alice", "password": PASSWORD}, htmx=False).status_code
        == 303
    )


def test_changing_it_ends_every_other_session_and_keeps_this_one(app):
    alice = Account(app, "alice")
    laptop = app.test_client()
    laptop_browser = Browser(laptop)
    page = laptop_browser.post("/login", {"username": "alice", "password": PASSWORD}, htmx=False)
    assert page.status_code == 303 and laptop.get("/chat").status_code == 200

    answer = change(alice, PASSWORD, NEW)
    assert answer.status_code == 303 and answer.headers["Location"] == "/chat"
    shown = alice.client.get("/chat")  # this browser stays logged in, and is told
    assert shown.status_code == 200 and "Your password is changed" in shown.get_data(as_text=True)
    assert laptop.get("/chat").status_code == 302  # the other one is logged out

    # Only the new password logs in now.
    fresh = Browser(app.test_client())
    wrong = fresh.post("/login", {"username": "alice", "password": PASSWORD}, htmx=False)
    assert wrong.status_code == 422
    fresh._token = None
    right = fresh.post("/login", {"username": "alice", "password": NEW}, htmx=False)
    assert right.status_code == 303


def test_the_other_browsers_sockets_are_closed_as_at_logout(app):
    from webapp.chat.events import LOGIN_NEEDED

    from .test_auth_sessions import second_login

    laptop = Account(app, "alice")
    phone = second_login(app, "alice")
    sock = phone.socket()
    assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"] is True

    assert change(laptop, PASSWORD, NEW).status_code == 303

    assert not sock.is_connected()
    again = phone.socket()
    ack = again.emit("chat:send", {"room": "general", "body": "still me?"}, callback=True)
    assert ack == {"ok": False, "error": LOGIN_NEEDED}
    # The browser that changed it goes on chatting.
    mine = laptop.socket()
    assert mine.emit("chat:send", {"room": "general", "body": "new password"}, callback=True)["ok"]
