"""Unbound Flask extensions, bound to an app in ``create_app``."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Ids are INTEGER columns (32-bit on PostgreSQL). The database refuses to compare them with a
# number out of that range, so a bound from a client is clamped into it first.
ID_MAX = 2**31 - 1


def clamp_id(bound: int) -> int:
    """``bound`` (an ?after= or ?before= id from a client) within the id columns' range."""
    return max(-ID_MAX, min(bound, ID_MAX))


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
socketio = SocketIO()
csrf = CSRFProtect()
login_manager = LoginManager()
