from datetime import timedelta

import pytest
from sqlalchemy import func, select

from webapp.chat import services
from webapp.chat.models import Member, Message, Room
from webapp.clock import utcnow
from webapp.errors import NotFound, ValidationError
from webapp.extensions import db
from webapp.realtime import broadcasts, outbox


def count_messages(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Message.id)))


@pytest.fixture
def sent(monkeypatch):
    """What the services broadcast: (event, data, html, to)."""
    events = []

    def sent(event, data, html, to=None):
        events.append((event, data, html, to))

    # Numbered events go out through the outbox, the others straight from their declaration.
    monkeypatch.setattr(outbox, "broadcast", sent)
    monkeypatch.setattr(broadcasts, "broadcast", sent)
    return events


def only(sent, name):
    return [item for item in sent if item[0] == name]


@pytest.fixture
def alice(app, accounts):
    accounts("alice")
    with app.app_context():
        from webapp.auth.models import User

        return db.session.scalar(select(User).where(User.username == "alice")).id


def user(user_id):
    from webapp.auth.models import User

    return db.session.get(User, user_id)


def test_general_exists_from_the_migration_and_is_recreated_on_demand(app):
    with app.app_context():
        assert services.find_room("General").name == "general"
        db.session.delete(services.find_room("general"))
        db.session.commit()
        assert services.find_room("general").name_key == "general"


@pytest.mark.parametrize(
    "body, message",
    [
        (None, "must be text"),
        (5, "must be text"),
        (["x"], "must be text"),
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 2001, "too long"),
        ("a\x00b", "cannot be shown"),
        ("\ud800", "cannot be shown"),
    ],
)
def test_check_body_rejects(body, message):
    with pytest.raises(ValidationError, match=message):
        services.check_body(body)


def test_check_body_trims_and_keeps_line_breaks():
    assert services.check_body("  one\r\ntwo\n ") == "one\ntwo"
    assert services.check_body(" " + "x" * 2000 + " ") == "x" * 2000


def test_post_message_commits_then_broadcasts_to_the_room(app, alice, sent):
    with app.app_context():
        room = services.find_room("general")
        message, created = services.post_message(user(alice), room, " hello ")
        assert created and message.body == "hello"
        # A committed message: another connection sees it.
        with db.engine.connect() as other:
            assert other.execute(db.text("SELECT body FROM messages")).scalar() == "hello"
    [(_event, data, html, to)] = only(sent, "chat:message")
    assert to == "chat:general"
    assert set(data) == {"id", "room", "author", "body", "created_at", "stream", "seq"}
    # Numbered in the room's stream, in the message's transaction.
    assert (data["stream"], data["seq"]) == ("room:general", 1)
    assert (data["room"], data["author"], data["body"]) == ("general", "alice", "hello")
    assert data["created_at"].endswith("Z")
    assert 'hx-swap-oob="beforeend:#messages"' in html and f'id="message-{data["id"]}"' in html
    # alice was a member of general from registration on: posting changes no membership.
    assert only(sent, "chat:presence") == []


def test_resend_with_the_same_client_id_is_stored_once(app, alice, sent):
    client_id = "6f1c1a5e-58e4-4d2b-9d5b-2d6c0a0b8f11"
    with app.app_context():
        room = services.find_room("general")
        first, created = services.post_message(user(alice), room, "once", client_id)
        again, created_again = services.post_message(user(alice), room, "once", client_id.upper())
        assert created and not created_again and again.id == first.id
    assert count_messages(app) == 1 and len(only(sent, "chat:message")) == 1


def test_two_tabs_joining_a_room_at_once_make_one_membership(app, alice, sent, monkeypatch):
    """The other tab's membership is committed between this tab's lookup and its commit."""
    with app.app_context():
        services.join(user(alice), services.find_room("general"))  # the other tab
        db.session.remove()
        room = services.find_room("general")
        real_get = db.session.get
        seen = []

        def get(model, key, **kwargs):
            if model is Member and not seen:
                seen.append(key)
                return None  # what this tab saw a moment before the other tab's commit
            return real_get(model, key, **kwargs)

        monkeypatch.setattr(db.session, "get", get)
        services.join(user(alice), room)
        monkeypatch.undo()
        assert seen
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1


@pytest.mark.parametrize("client_id", [5, "not-a-uuid", "x" * 100, ["a"]])
def test_bad_client_id_is_refused(app, alice, sent, client_id):
    with app.app_context(), pytest.raises(ValidationError, match="client_id"):
        services.post_message(user(alice), services.find_room("general"), "hi", client_id)
    assert count_messages(app) == 0 and sent == []


def test_flood_control_allows_ten_in_ten_seconds(app, alice, sent):
    with app.app_context():
        room = services.find_room("general")
        for i in range(10):
            services.post_message(user(alice), room, f"message {i}")
        with pytest.raises(services.SlowDown, match="Slow down"):
            services.post_message(user(alice), room, "one too many")
    assert count_messages(app) == 10 and len(only(sent, "chat:message")) == 10


def test_edit_own_message_within_ten_minutes(app, accounts, alice, sent):
    accounts("bob")
    with app.app_context():
        from webapp.auth.models import User

        bob = db.session.scalar(select(User).where(User.username == "bob"))
        message, _ = services.post_message(user(alice), services.find_room("general"), "helo")
        edited = services.edit_message(user(alice), message.id, "hello")
        assert edited.body == "hello" and edited.edited_at is not None
        with pytest.raises(ValidationError, match="your own"):
            services.edit_message(bob, message.id, "hijacked")
        with pytest.raises(ValidationError, match="your own"):
            services.delete_message(bob, message.id)
        message.created_at = utcnow() - timedelta(minutes=11)
        db.session.commit()
        with pytest.raises(ValidationError, match="within 10 minutes"):
            services.edit_message(user(alice), message.id, "too late")
        assert db.session.get(Message, message.id).body == "hello"
    [(_event, data, html, to)] = only(sent, "chat:message-edited")
    assert data["body"] == "hello" and data["edited_at"] and to == "chat:general"
    assert (data["stream"], data["seq"]) == ("room:general", 2)
    assert 'hx-swap-oob="true"' in html and 'data-role="edited"' in html
    assert only(sent, "chat:message-deleted") == []


def test_delete_own_message(app, alice, sent):
    with app.app_context():
        room = services.find_room("general")
        message, _ = services.post_message(
            user(alice), room, "oops", "0a6e0b52-3d1c-4f55-8b7a-111111111111"
        )
        services.delete_message(user(alice), message.id)
        assert services.messages(room).newest(50) == []
        with pytest.raises(NotFound):
            services.delete_message(user(alice), message.id)
        with pytest.raises(NotFound):
            services.edit_message(user(alice), message.id, "back")
        # A late resend of the deleted message is still recognised, not stored again.
        again, created = services.post_message(
            user(alice), room, "oops", "0a6e0b52-3d1c-4f55-8b7a-111111111111"
        )
        assert again.id == message.id and not created
    event, data, html, _to = sent[-1]
    assert event == "chat:message-deleted"
    assert data == {"id": message.id, "room": "general", "stream": "room:general", "seq": 2}
    assert f'<article id="message-{message.id}" hx-swap-oob="delete">' in html


def test_history_paging_in_display_order(app, alice, sent):
    with app.app_context():
        room = services.find_room("general")
        app.extensions["presence"].allow = lambda *a: True  # no flood control here
        ids = [services.post_message(user(alice), room, str(i))[0].id for i in range(7)]
        assert [m.id for m in services.messages(room).newest(3)] == ids[-3:]
        assert [m.id for m in services.messages(room).before(ids[4], 3)] == ids[1:4]
        assert [m.id for m in services.messages(room).after(ids[2], 10)] == ids[3:]
        assert [m.id for m in services.messages(room).after(ids[2], 2)] == ids[3:5]


def test_rooms_unread_counts(app, accounts, alice, sent):
    accounts("bob")
    with app.app_context():
        from webapp.auth.models import User

        bob = db.session.scalar(select(User).where(User.username == "bob"))
        general = services.find_room("general")
        services.create_room("random")
        services.join(user(alice), general)
        for i in range(3):
            services.post_message(bob, general, f"hi {i}")
        services.post_message(user(alice), general, "my own is never unread")
        counts = {e.room.name: e.unread for e in services.rooms_with_unread(user(alice))}
        assert counts == {"general": 3, "random": 0}
        services.mark_read(user(alice), general)
        assert {e.room.name: e.unread for e in services.rooms_with_unread(user(alice))}[
            "general"
        ] == 0


@pytest.mark.parametrize(
    "name, message",
    [
        ("General", "already exists"),
        ("ab", "3 to 32"),
        ("a/b", "3 to 32"),
        (None, "room name"),
        ("", "required"),
    ],
)
def test_create_room_rejects(app, name, message):
    with app.app_context(), pytest.raises(ValidationError, match=message):
        services.create_room(name)
    with app.app_context():
        assert db.session.scalar(select(func.count(Room.id))) == 1


def test_typing_is_throttled_to_once_a_second(app, alice, sent):
    with app.app_context():
        room = services.find_room("general")
        assert services.typing(user(alice), room) is True
        assert services.typing(user(alice), room) is False
    [(event, data, html, _to)] = sent
    assert event == "chat:typing" and data == {"room": "general", "user": "alice"}
    assert 'data-author="alice"' in html and "alice is typing" in html
