"""The team chat: rooms, messages, presence and typing, pushed to every member's tab."""

from flask import Blueprint

from ..realtime import streams
from . import services
from .broadcasts import ROOM_KIND, channel_of
from .text import message_html

bp = Blueprint("chat", __name__)
bp.add_app_template_filter(message_html, "message_html")
# A room's stream: read by those who may read the room; watched by its channel.
streams.register(ROOM_KIND, check_readable=services.check_stream_readable, channel=channel_of)

from . import events, routes  # noqa: F401  (they register on bp and socketio)
