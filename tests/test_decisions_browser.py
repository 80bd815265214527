"""The decision pages in a real browser: Debian's Chromium driven by Playwright, against the proxy
served by uvicorn on a loopback port. Skipped, with the reason, where either is missing (never a
downloaded browser). ``REIN_SCREENSHOT_DIR=docs`` keeps the screenshots (the README's picture)."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from middleware.config import Settings
from middleware.decisions import DecisionLog, Filters, open_decision_store
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from tests.decision_traffic import REPLIES, send_all

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The proxy in shadow mode with a decision log that real traffic filled, on a loopback port."""
    import uvicorn

    monkeypatch.setenv("REIN_LOG_CONTENT", "1")
    log = DecisionLog(open_decision_store(str(tmp_path / "d.db")))
    engine = Engine(ScriptedModel(REPLIES * 4), "structural", decisions=log, shadow=True)
    app = create_app(Settings(policy="structural", admin_key="op-secret"), engine)
    for _ in range(3):
        asyncio.run(send_all(app))
    log.flush()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", log.store
    server.should_exit = True
    thread.join(timeout=10)


def test_review_a_decision_in_chromium(served, tmp_path):
    base, store = served
    keep = os.environ.get("REIN_SCREENSHOT_DIR")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            denied = browser.new_context().request.get(f"{base}/rein/")
            assert denied.status == 401 and denied.headers["www-authenticate"].startswith("Basic")  # no key, no page
            context = browser.new_context(http_credentials={"username": "operator", "password": "op-secret"},
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            assert page.goto(f"{base}/rein/").status == 200
            assert page.locator("#decisions tr.row").count() == 9
            assert "detect:ambiguous_request/vague_reference" in page.locator("#per-rule").inner_text()
            page.screenshot(path=str(tmp_path / "decisions-list.png"), full_page=True)

            page.fill("input[name=rule]", "detect:*")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            assert page.locator("#decisions tr.row").count() == 6
            page.select_option("select[name=mode]", "shadow")  # the script submits on change
            page.wait_for_url("**mode=shadow**")
            assert page.locator("#decisions tr.row").count() == 6

            page.locator("#decisions tr.row", has_text="vague_reference").first.click()
            page.wait_for_url("**/rein/decisions/**")
            assert "W1001, W1002" in page.locator("#evidence").inner_text()
            assert page.locator("li.msg.decided").count() == 1
            page.check("input[value=wrong]")
            page.fill("input[name=note]", "'it' is the order named last")
            page.click("#mark button[type=submit]")
            page.wait_for_selector("#saved")
            assert "marked wrong" in page.locator("h1").inner_text()
            page.screenshot(path=str(tmp_path / "decision.png"), full_page=True)
        finally:
            browser.close()
    (wrong,) = store.page(Filters(verdict="wrong"))
    assert wrong["rule"] == "detect:ambiguous_request/vague_reference" and wrong["note"] == "'it' is the order named last"
    if keep:
        for name in ("decisions-list.png", "decision.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)
