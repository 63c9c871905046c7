"""The room list of chat pages: bounded however many rooms exist; "All rooms" pages by name."""

from sqlalchemy import select

from webapp.auth.models import User
from webapp.chat import services
from webapp.chat.models import Room
from webapp.extensions import db

from .conftest import Account


def names(rooms) -> list[str]:
    return [entry.room.name for entry in rooms]


def test_a_page_lists_general_own_active_and_newest_rooms_up_to_a_bound(app):
    app.config.update(CHAT_ROOM_LIST_OTHERS_MAX=3, CHAT_ROOMS_PAGE_SIZE=4)
    Account(app, "alice")
    Account(app, "bob")
    with app.app_context():
        alice, bob = (
            db.session.scalar(select(User).where(User.username == n)) for n in ("alice", "bob")
        )
        rooms = [services.create_room(f"room{i:02d}") for i in range(12)]
        services.join(alice, rooms[5])
        services.join(bob, rooms[2])
        services.post_message(bob, rooms[2], "busy")
        services.join(bob, rooms[5])
        services.post_message(bob, rooms[5], "hello alice")
        listed, more = services.room_list(alice)
        # general, her room, the active one, then the newest two: by name.
        assert names(listed) == ["general", "room02", "room05", "room10", "room11"] and more
        # Unread counts are for members: room02 is only listed for its activity.
        assert {e.room.name: e.unread for e in listed}["room05"] == 1
        assert {e.room.name: e.unread for e in listed}["room02"] == 0
        # The current room is listed even when it is none of those.
        assert "room00" in names(services.room_list(alice, rooms[0])[0])
        # Every room, a page at a time, in name order.
        seen, after = [], None
        while True:
            page, after = services.all_rooms(alice, after, 4)
            seen += names(page)
            if after is None:
                break
        assert seen == ["general"] + [f"room{i:02d}" for i in range(12)]
        assert db.session.query(Room).count() == 13


def test_a_small_install_lists_every_room(app):
    Account(app, "alice")
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice"))
        for name in ("design", "ops"):
            services.create_room(name)
        listed, more = services.room_list(alice)
        assert names(listed) == ["design", "general", "ops"] and not more
