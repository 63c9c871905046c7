"""Error pages render for requests that matched no URL, including those whose Host header is not
a valid host name (Flask then has no URL adapter at all, so any url_for in the page would fail)."""

from types import SimpleNamespace

import pytest
from flask import request
from flask_limiter.errors import RateLimitExceeded
from limits import parse
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import BadRequest, MethodNotAllowed, NotFound, RequestEntityTooLarge

BAD_HOSTS = ["a..b", "a" * 64 + ".example", ".example"]


def _raise(status: int):
    if status == 400:
        raise BadRequest("That request could not be understood.")
    if status == 404:
        raise NotFound()
    if status == 405:
        raise MethodNotAllowed(valid_methods=["GET"])
    if status == 413:
        raise RequestEntityTooLarge()
    if status == 429:
        limit = SimpleNamespace(error_message="Too many tries.", limit=parse("1 per minute"))
        raise RateLimitExceeded(limit)
    if status == 503:
        raise OperationalError("SELECT 1", {}, Exception("the database is down"))
    raise RuntimeError("a bug")


@pytest.fixture
def failing_app(app):
    """The app, failing each request with the status its X-Fail header names, before routing
    could have matched anything (a hook of this test, not a route of the app)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 goes through the error handlers

    @app.before_request
    def fail():
        if "X-Fail" in request.headers:
            _raise(int(request.headers["X-Fail"]))

    return app


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_bad_host_gets_a_readable_400_page(client, host):
    for path in ("/", "/chat", "/login", "/table/rows", "/nowhere"):
        response = client.get(path, headers={"Host": host})
        page = response.get_data(as_text=True)
        assert response.status_code == 400, (path, page[:300])
        assert "The Host header of this request is not a valid host name." in page
        assert "<html" in page and 'href="/"' in page  # the page with its links
    fragment = client.get("/table/rows", headers={"Host": host, "HX-Request": "true"})
    assert fragment.status_code == 400 and "<html" not in fragment.get_data(as_text=True)
    api = client.get("/", headers={"Host": host, "Accept": "application/json"})
    assert api.status_code == 400 and api.get_json()["ok"] is False


@pytest.mark.parametrize("status", [400, 404, 405, 413, 429, 500, 503])
@pytest.mark.parametrize("host", ["localhost", "a..b"])
def test_every_error_page_renders_for_a_request_that_matched_no_url(failing_app, status, host):
    client = failing_app.test_client()
    for path in ("/no/such/page", "/"):
        headers = {"Host": host, "X-Fail": str(status)}
        page = client.get(path, headers=headers)
        body = page.get_data(as_text=True)
        assert page.status_code == status, body[:500]
        assert f"Something went wrong ({status})" in body and 'href="/"' in body
        fragment = client.get(path, headers={**headers, "HX-Request": "true"})
        assert fragment.status_code == status
        assert 'role="alert"' in fragment.get_data(as_text=True)
        api = client.get(path, headers={**headers, "Accept": "application/json"})
        assert api.status_code == status and api.get_json()["ok"] is False
