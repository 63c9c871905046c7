"""The team chat: rooms, messages, presence and typing, pushed to every member's tab."""

from flask import Blueprint

from .text import message_html

bp = Blueprint("chat", __name__)
bp.add_app_template_filter(message_html, "message_html")

from . import events, routes  # noqa: F401  (they register on bp and socketio)
