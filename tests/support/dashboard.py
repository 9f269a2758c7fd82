"""The dashboard as browser tests reach it: uvicorn on a loopback port, headless Chromium."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.support.net import LOOPBACK, free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"


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
