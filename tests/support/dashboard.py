"""The dashboard as browser tests reach it: uvicorn on a loopback port, headless Chromium."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.support.net import LOOPBACK, free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"  # every test user's password


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields its base URL, stops it afterwards."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning",
                                        lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (the system's, as CI installs it) for Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, name: str = "owner", password: str = PASSWORD, *, wait: bool = True) -> None:
    """Log in through the form; ``wait`` for the overview (not when the login should fail)."""
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")
    if wait:
        page.wait_for_url("**/")


def logged_in_state(browser: Any, server: str, name: str = "owner") -> dict:
    """A user's logged-in cookies, made once per module: argon2 is slow on purpose."""
    context = browser.new_context(base_url=server)
    login(context.new_page(), name)
    state = context.storage_state()
    context.close()
    return state


@contextlib.contextmanager
def user_page(browser: Any, server: str, state: dict | None = None, *,
              locale: str | None = "de-DE", **options: Any) -> Iterator[Any]:  # fmt: skip
    """A page in a browser context of its own (with ``state``: already logged in)."""
    context = browser.new_context(base_url=server, locale=locale, storage_state=state, **options)
    try:
        yield context.new_page()
    finally:
        context.close()
