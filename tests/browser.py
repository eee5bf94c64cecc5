"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for the browser
tests: one browser per test module, every page watched for console errors and for requests
that leave it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch():
    """(playwright, browser); close both with ``close``. Fails plainly without Chromium (`make
    test` installs it)."""
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def close(pw, browser) -> None:
    browser.close()
    pw.stop()


@dataclass
class Watched:
    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    aborted: list[str] = field(default_factory=list)  # the ones not allowed: stopped at the router


def open_page(browser, url: str, allow: str, width: int = 1280, height: int = 800) -> Watched:
    """A fresh page at ``url``: console errors and uncaught exceptions recorded; any request
    whose URL does not start with ``allow`` is aborted (and recorded)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    w = Watched(page)
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.on("request", lambda r: w.requests.append(r.url))

    def route(r):
        if r.request.url.startswith(allow):
            r.continue_()
        else:
            w.aborted.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.goto(url)
    return w
