"""Who may open a socket: the page's own origin always, plus SOCKETIO_ALLOWED_ORIGINS."""

import pytest

from webapp import create_app
from webapp.config import TestConfig

HANDSHAKE = "/socket.io/?EIO=4&transport=websocket"
REFUSED = "Not an accepted origin."


def handshake(app, origin: str, **headers: str) -> str:
    """The answer to a websocket handshake from ``origin`` (the test client cannot upgrade, so
    an accepted origin gets as far as "Invalid websocket upgrade")."""
    response = app.test_client().get(
        HANDSHAKE, headers={"Origin": origin, **headers}, base_url="http://chat.example:8000"
    )
    assert response.status_code == 400
    return response.get_data(as_text=True).strip('"')


def app_allowing(*origins: str):
    return create_app(type("C", (TestConfig,), {"SOCKETIO_ALLOWED_ORIGINS": list(origins)}))


@pytest.mark.parametrize("listed", [(), ("https://partner.example", "http://10.0.0.7:8080/")])
def test_the_own_origin_is_always_accepted_and_a_foreign_one_never(listed):
    app = app_allowing(*listed)
    assert handshake(app, "http://chat.example:8000") != REFUSED
    assert handshake(app, "HTTP://Chat.Example:8000") != REFUSED  # hosts ignore case
    assert handshake(app, "http://evil.example") == REFUSED
    assert handshake(app, "http://chat.example") == REFUSED  # another port is another origin
    assert handshake(app, "https://chat.example:8000") == REFUSED  # and another scheme


def test_listed_origins_are_added_to_the_own_one():
    app = app_allowing("https://partner.example", "http://10.0.0.7:8080/")
    assert handshake(app, "https://partner.example") != REFUSED
    assert handshake(app, "http://10.0.0.7:8080") != REFUSED
    assert handshake(app, "http://partner.example") == REFUSED
    assert handshake(app_allowing(), "https://partner.example") == REFUSED


def test_behind_a_proxy_the_forwarded_origin_is_the_own_one():
    app = app_allowing("https://partner.example")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.com"}
    assert handshake(app, "https://chat.example.com", **forwarded) != REFUSED
    assert handshake(app, "https://partner.example", **forwarded) != REFUSED
    assert handshake(app, "https://evil.example", **forwarded) == REFUSED
    # Only the scheme forwarded (the proxy keeps Host): the own host with that scheme.
    assert handshake(app, "https://chat.example:8000", **{"X-Forwarded-Proto": "https"}) != REFUSED


@pytest.mark.parametrize(
    "bad", ["*", "partner.example", "https://partner.example/app", "https://*.example"]
)
def test_an_entry_that_is_not_an_origin_stops_the_app(bad):
    with pytest.raises(RuntimeError, match="SOCKETIO_ALLOWED_ORIGINS"):
        app_allowing("https://ok.example", bad)
