"""Drive Debian's Chromium against the strictly built site, the way readers use it.

One local HTTP server and one browser serve the whole session. Each page is visited once per
screen: on a phone (375 px, dark color scheme) and on a desktop (1280 px, light color scheme).
A visit gathers every fact the tests look at -- console errors, failed requests, requests to
other hosts, the ``lang`` attribute, horizontal scrolling, rendered math, axe-core violations,
what the copy buttons copy, where the language switcher lands -- and saves a screenshot into
test-artifacts/screenshots/. The tests are parametrized over pages and only read these facts, so
a page is loaded twice however many tests look at it.

This file holds the fixtures and the parametrization; the screens, the pages and the visits are
in chromium.py, and the JavaScript a visit runs in the page is in js/, one function a file.
"""

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest

from tests.browser.chromium import (
    AXE,
    BLACKHOLE_PROXY,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGES,
    SCREENS,
    Site,
    _QuietHandler,
)
from tests.support.pages import OTHER_LANGUAGE, relative


def pytest_generate_tests(metafunc):
    """Parametrize over the pages: `site_page` (every page), `notebook_page`, `screen`."""
    if "site_page" in metafunc.fixturenames:
        metafunc.parametrize("site_page", PAGES, ids=[p.id for p in PAGES])
    if "notebook_page" in metafunc.fixturenames:
        notebooks = [p for p in PAGES if p.is_notebook]
        metafunc.parametrize("notebook_page", notebooks, ids=[p.id for p in notebooks])
    if "screen" in metafunc.fixturenames:
        metafunc.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])


@pytest.fixture(scope="session")
def site_url(built_site):
    """The built site served on 127.0.0.1 at a free port, for the whole session."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, proxy=BLACKHOLE_PROXY
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def site(browser, site_url):
    if not AXE.is_file():
        pytest.fail(
            f"{relative(AXE)} is missing: run `npm ci` in tests/js (.ci/run does)", pytrace=False
        )
    visits = Site(browser, site_url)
    yield visits
    visits.close()


@pytest.fixture(scope="session")
def search_index(built_site) -> list[dict]:
    """The documents of the site's search index or indexes, locations relative to the site."""
    docs = json.loads((built_site / "search" / "search_index.json").read_text("utf-8"))["docs"]
    other = built_site / OTHER_LANGUAGE / "search" / "search_index.json"
    if other.is_file():  # one index per language
        for doc in json.loads(other.read_text("utf-8"))["docs"]:
            docs.append({**doc, "location": f"{OTHER_LANGUAGE}/{doc['location']}"})
    return docs
