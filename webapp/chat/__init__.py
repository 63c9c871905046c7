"""The team chat: rooms, messages, presence and typing, pushed to every member's tab."""

from flask import Blueprint

from . import presence
from .text import linkify

bp = Blueprint("chat", __name__)
bp.record_once(lambda state: presence.init_app(state.app))
bp.add_app_template_filter(linkify, "linkify")

from . import events, routes  # noqa: F401  (they register on bp and socketio)
