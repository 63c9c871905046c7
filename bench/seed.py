"""Fill the table with old rows before a benchmark (``bench/run.py --seed-rows N``).

    PYTHONPATH=TREE python bench/seed.py DATABASE_URL COUNT

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


if __name__ == "__main__":
    seed_rows(sys.argv[1], int(sys.argv[2]))
