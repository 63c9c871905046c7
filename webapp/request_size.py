"""Request bodies over ``MAX_CONTENT_LENGTH`` are refused with 413, also when they do not announce
their length.

A body sent with ``Transfer-Encoding: chunked`` has no Content-Length to check up front. Werkzeug
then reads it through a stream capped at the limit, and a read that stops exactly at the cap
cannot tell a body of that size from a longer one: the form parser got the first 64 KiB of a
bigger body and the request went on with it (a row was stored, 201). Here the cap is one byte
higher, and reading that byte is the 413.
"""

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream


class BoundedStream(LimitedStream):
    """A body of unannounced length: at most ``limit`` bytes, and a 413 once it has more."""

    def __init__(self, stream, limit: int):
        super().__init__(stream, limit + 1, is_max=True)
        self.max_size = limit

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        if self.tell() > self.max_size:
            raise RequestEntityTooLarge()
        return count


class BoundedRequest(Request):
    """Flask's request, whose body is refused past ``max_content_length`` however it is sent.

    ``max_content_length`` is MAX_CONTENT_LENGTH unless a view raises it for its own request
    (Flask 3.1), which keeps working: the cap is read when the body is first read.
    """

    @cached_property
    def stream(self):
        limit = self.max_content_length
        # The server ends the stream itself (gevent and werkzeug do for chunked bodies), so
        # reading past the limit is safe and tells whether the body is longer.
        if (
            limit is not None
            and not self.shallow
            and self.content_length is None
            and "wsgi.input_terminated" in self.environ
        ):
            return BoundedStream(self.environ["wsgi.input"], limit)
        return super().stream
