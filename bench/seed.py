"""Fill the database before a benchmark: old table rows (``bench/run.py --seed-rows N``), or
the accounts and rooms of the chat members scenario.

    PYTHONPATH=TREE python bench/seed.py DATABASE_URL COUNT
    PYTHONPATH=TREE python bench/seed.py members DATABASE_URL ROOM COUNT OTHER_ROOMS PASSWORD

Run as a script with the tree to seed first on PYTHONPATH, so that the baseline's database is
filled by the baseline's own models and services, and this tree's by its own.
"""

import sys
from datetime import UTC, datetime


def seed_rows(database_url: str, count: int) -> None:
    """Fill the table with ``count`` old rows, so per-event queries meet a long table."""
    from sqlalchemy import func, insert, select

    from webapp import create_app
    from webapp.config import Config
    from webapp.extensions import db
    from webapp.table import services
    from webapp.table.models import Row

    config = type(
        "BenchConfig",
        (Config,),
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench", "MESSAGE_QUEUE_URL": None},
    )
    app = create_app(config)
    with app.app_context():
        have = db.session.scalar(select(func.count(Row.id)))
        stamp = datetime(2020, 1, 1, tzinfo=UTC)
        for start in range(have, count, 10_000):
            db.session.execute(
                insert(Row),
                [
                    {"a": i, "b": 1, "sum": i + 1, "created_at": stamp}
                    for i in range(start, min(count, start + 10_000))
                ],
            )
        # Older commits (a --baseline) count the totals on every read instead of keeping them.
        if hasattr(services, "recount_totals"):
            services.recount_totals()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def seed_members(database_url: str, room: str, count: int, others: int, password: str) -> None:
    """``count`` accounts (``<room>_<i>``), each a member of ``room`` and of ``others`` more
    rooms (``<room>_r<j>``), with a password hash cheap to check: logging a thousand people in
    must not take the benchmark minutes (the app's own hash is slow on purpose)."""
    from sqlalchemy import insert, select
    from werkzeug.security import generate_password_hash

    from webapp import create_app
    from webapp.auth.models import User
    from webapp.chat.models import Member, Room
    from webapp.config import Config
    from webapp.extensions import db

    config = type(
        "BenchConfig",
        (Config,),
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench", "MESSAGE_QUEUE_URL": None},
    )
    app = create_app(config)
    secret = generate_password_hash(password, method="pbkdf2:sha256:1")
    names = [room] + [f"{room}_r{j}" for j in range(others)]
    with app.app_context():
        db.session.execute(insert(Room), [{"name": n, "name_key": n.lower()} for n in names])
        db.session.execute(
            insert(User),
            [
                {
                    "username": f"{room}_{i}",
                    "username_key": f"{room}_{i}".lower(),
                    "password_hash": secret,
                }
                for i in range(count)
            ],
        )
        room_ids = list(db.session.scalars(select(Room.id).where(Room.name_key.in_(names))))
        prefix = f"{room}_".lower()
        user_ids = list(
            db.session.scalars(
                select(User.id).where(User.username_key.startswith(prefix, autoescape=True))
            )
        )
        for room_id in room_ids:
            db.session.execute(
                insert(Member), [{"room_id": room_id, "user_id": u} for u in user_ids]
            )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    if sys.argv[1] == "members":
        seed_members(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        seed_rows(sys.argv[1], int(sys.argv[2]))
