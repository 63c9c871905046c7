"""Hot reload exists only in debug mode: no script, no route, no watcher in production."""

import os
import time

from webapp import create_app
from webapp.config import TestConfig
from webapp.devreload import BOOT_ID, changed, snapshot


def debug_app(tmp_path):
    config = type(
        "DebugConfig",
        (TestConfig,),
        {"DEBUG": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dev.db'}"},
    )
    return create_app(config)


def test_production_pages_have_no_reload_script_and_no_dev_routes(client):
    page = client.get("/").get_data(as_text=True)
    assert "devreload" not in page and "data-boot-id" not in page and "/_dev/" not in page
    assert client.get("/_dev/boot").status_code == 404
    assert client.get("/_dev/static/devreload.js").status_code == 404
    assert not any(
        rule.rule.startswith("/_dev") for rule in client.application.url_map.iter_rules()
    )


def test_debug_pages_load_the_reload_script_with_the_server_boot_id(tmp_path):
    app = debug_app(tmp_path)
    assert app.debug
    client = app.test_client()
    # Any full page carries it; the 404 page needs no database.
    page = client.get("/no-such-page").get_data(as_text=True)
    assert f'data-boot-id="{BOOT_ID}"' in page
    assert 'src="/_dev/static/devreload.js"' in page
    assert client.get("/_dev/boot").get_json() == {"boot_id": BOOT_ID}
    script = client.get("/_dev/static/devreload.js")
    assert script.status_code == 200 and b"realtime:dev:reload" in script.data
    script.close()


def test_the_watcher_sees_edited_added_and_removed_files_but_not_vendor(tmp_path):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "lib.js").write_text("1")
    page = tmp_path / "page.html"
    page.write_text("<p>one</p>")
    style = tmp_path / "app.css"
    style.write_text("p {}")
    before = snapshot([tmp_path])
    assert set(before) == {page, style}

    later = time.time() + 5
    os.utime(page, (later, later))
    style.unlink()
    (tmp_path / "new.js").write_text("//")
    (tmp_path / "vendor" / "lib.js").write_text("2")
    (tmp_path / "notes.txt").write_text("not part of a page")
    assert changed(before, snapshot([tmp_path])) == sorted([page, style, tmp_path / "new.js"])
