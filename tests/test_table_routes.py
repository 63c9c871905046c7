import csv
import io

import pytest

from .conftest import CSRF_META, count_rows


def test_index_renders_table_with_csrf_meta_and_newest_id(browser, client):
    browser.post("/table/rows", {"a": "1", "b": "2"})
    page = client.get("/").get_data(as_text=True)
    assert CSRF_META.search(page)
    assert 'data-last-id="1"' in page
    assert 'id="row-1"' in page and "Add Row" in page
    assert 'data-role="row-count">1<' in page


def test_empty_table_page(client):
    page = client.get("/").get_data(as_text=True)
    assert "No rows yet" in page and 'data-last-id="0"' in page


def test_add_row_answers_201_and_every_socket_receives_it(browser, socket_client, app):
    watcher = socket_client()
    watcher.get_received()
    response = browser.post("/table/rows", {"a": "3", "b": "4"})
    assert response.status_code == 201
    assert "3 + 4 = 7" in response.get_data(as_text=True)
    [event] = watcher.get_received()
    assert event["name"] == "table:row"
    payload = event["args"][0]
    assert (payload["a"], payload["b"], payload["sum"]) == (3, 4, 7)
    assert 'id="row-1"' in payload["html"] and "csrf" not in payload["html"].lower()


def test_add_row_as_json_client(browser):
    response = browser.post(
        "/table/rows", {"a": "-3", "b": "10"}, htmx=False, headers={"Accept": "application/json"}
    )
    assert response.status_code == 201
    assert response.get_json()["sum"] == 7


def test_a_resend_with_the_same_client_id_answers_200_with_the_same_row(
    browser, socket_client, app
):
    watcher = socket_client()
    watcher.get_received()
    form = {"a": "\u22125", "b": "8", "client_id": "6F9619FF-8B86-4D11-B42D-00C04FC964FF"}
    first = browser.post("/table/rows", form, htmx=False, headers={"Accept": "application/json"})
    assert first.status_code == 201 and first.get_json()["sum"] == 3
    # The same UUID written another way is the same submission.
    resend = {**form, "client_id": form["client_id"].lower()}
    again = browser.post("/table/rows", resend, htmx=False, headers={"Accept": "application/json"})
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert browser.post("/table/rows", form).status_code == 200
    assert count_rows(app) == 1
    assert [event["name"] for event in watcher.get_received()] == ["table:row"]


@pytest.mark.parametrize(
    "form, message",
    [
        ({}, "A is required"),
        ({"a": "1"}, "B is required"),
        ({"a": "", "b": "2"}, "A is required"),
        ({"a": "one", "b": "2"}, "A must be a whole number"),
        ({"a": "1.5", "b": "2"}, "A must be a whole number"),
        ({"a": "1", "b": "2000000000"}, "B must be between"),
        ({"a": "1" * 10_000, "b": "2"}, "A is too long"),
        ({"a": "<script>alert(1)</script>", "b": "2"}, "A must be a whole number"),
    ],
)
def test_bad_input_answers_422_with_message_and_stores_nothing(
    browser, socket_client, app, form, message
):
    watcher = socket_client()
    watcher.get_received()
    response = browser.post("/table/rows", form)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'data-role="form-error"' in body
    assert "<script>" not in body
    assert count_rows(app) == 0
    assert watcher.get_received() == []


def test_bad_input_without_htmx_gets_the_page_with_the_error(browser, app):
    response = browser.post("/table/rows", {"a": "x", "b": "1"}, htmx=False)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "<html" in body and "A must be a whole number" in body


def test_post_without_csrf_token_is_refused(client, app):
    response = client.post("/table/rows", data={"a": "1", "b": "2"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = client.post("/table/rows", data={"a": "1", "b": "2", "csrf_token": "forged"})
    assert response.status_code == 400
    assert count_rows(app) == 0


def test_delete_row_removes_it_everywhere(browser, socket_client, app):
    browser.post("/table/rows", {"a": "1", "b": "1"})
    browser.post("/table/rows", {"a": "2", "b": "2"})
    watcher = socket_client()
    watcher.get_received()
    response = browser.delete("/table/rows/1")
    assert response.status_code == 200
    # htmx deletes the row on this page; the broadcast updates every page's footer.
    assert response.get_data(as_text=True) == ""
    [event] = watcher.get_received()
    assert event["name"] == "table:row-deleted" and event["args"][0]["id"] == 1
    assert 'hx-swap-oob="delete:#row-1"' in event["args"][0]["html"]
    assert 'data-role="row-count">1<' in event["args"][0]["html"]
    # A plain client gets the new footer.
    plain = browser.delete("/table/rows/2", htmx=False)
    assert plain.status_code == 200
    assert 'data-role="row-count">0<' in plain.get_data(as_text=True)
    assert count_rows(app) == 0


def test_delete_unknown_row_is_404(browser):
    assert browser.delete("/table/rows/999").status_code == 404


def test_delete_without_csrf_is_refused(browser, client, app):
    browser.post("/table/rows", {"a": "1", "b": "1"})
    assert client.delete("/table/rows/1").status_code == 400
    assert count_rows(app) == 1


def test_rows_after_returns_exactly_the_newer_rows(browser, client):
    for i in range(5):
        browser.post("/table/rows", {"a": str(i), "b": "0"})
    body = client.get("/table/rows?after=2").get_data(as_text=True)
    assert [i for i in range(1, 6) if f'id="row-{i}"' in body] == [3, 4, 5]
    assert body.index('id="row-5"') < body.index('id="row-3"')  # newest first, like the page
    assert 'id="table-footer"' in body


def test_rows_before_pages_back(browser, client, app):
    app.config["TABLE_PAGE_SIZE"] = 2
    for i in range(5):
        browser.post("/table/rows", {"a": str(i), "b": "0"})
    page = client.get("/").get_data(as_text=True)
    assert 'id="row-5"' in page and 'id="row-4"' in page and 'id="row-3"' not in page
    assert "Load older" in page
    older = client.get("/table/rows?before=4&limit=2").get_data(as_text=True)
    assert 'id="row-3"' in older and 'id="row-2"' in older and 'id="row-4"' not in older
    last = client.get("/table/rows?before=2&limit=2").get_data(as_text=True)
    assert 'id="row-1"' in last and "Load older" not in last


@pytest.mark.parametrize("query", ["after=abc", "before=x", "limit=1.5", "after=1&before=2"])
def test_malformed_query_is_400(client, query):
    response = client.get(f"/table/rows?{query}")
    assert response.status_code == 400
    assert "must" in response.get_data(as_text=True) or "either" in response.get_data(as_text=True)


@pytest.mark.parametrize("limit", ["-1", "0", "100000"])
def test_out_of_range_limit_is_clamped(browser, client, limit):
    browser.post("/table/rows", {"a": "1", "b": "1"})
    response = client.get(f"/table/rows?limit={limit}")
    assert response.status_code == 200 and 'id="row-1"' in response.get_data(as_text=True)


def test_catchup_too_far_behind_asks_for_a_reload(browser, client, app):
    app.config["LIVE_LIST_CATCHUP_MAX"] = 2
    for i in range(3):
        browser.post("/table/rows", {"a": str(i), "b": "0"})
    response = client.get("/table/rows?after=0")
    assert response.headers.get("HX-Refresh") == "true"


def test_csv_download(browser, client):
    browser.post("/table/rows", {"a": "1", "b": "2"})
    browser.post("/table/rows", {"a": "-5", "b": "5"})
    response = client.get("/table/rows.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "a", "b", "sum", "created_at"]
    assert [r[:4] for r in rows[1:]] == [["1", "1", "2", "3"], ["2", "-5", "5", "0"]]


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"db": "ok", "queue": "off"}


def test_healthz_reports_a_queue_that_is_down(client, app):
    app.config["MESSAGE_QUEUE_URL"] = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"db": "ok", "queue": "down"}


def test_cli_add_row(runner, socket_client, app):
    watcher = socket_client()
    watcher.get_received()
    result = runner.invoke(args=["table", "add-row", "-4", "10"])
    assert result.exit_code == 0, result.output
    assert "= 6" in result.output
    [event] = watcher.get_received()
    assert event["name"] == "table:row" and event["args"][0]["sum"] == 6


def test_cli_rejects_bad_numbers(runner, app):
    result = runner.invoke(args=["table", "add-row", "1", "two"])
    assert result.exit_code != 0 and "B must be a whole number" in result.output
    assert count_rows(app) == 0
