"""The browser side of the Chromium tests: the screens, the pages, the local server's handler,
and one visit per page and screen that gathers every fact the tests read (see conftest.py).
The JavaScript each visit runs in the page is in js/, one function a file, read at import.
"""

import http.server
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from tests.support.pages import (
    OTHER_LANGUAGE,
    ROOT,
    built_page,
    english_pages,
    english_twin,
    is_english,
    japanese_pages,
    japanese_twin,
    language_of,
    other_language,
    relative,
)

JS = Path(__file__).parent / "js"


def script(name: str) -> str:
    """The JavaScript function in js/<name>, as Playwright's evaluate() takes it."""
    return (JS / name).read_text(encoding="utf-8")


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every request to another host goes to a proxy that does not exist, so it fails (IP addresses
# included) and the site is tested as it works offline; Network below records each such request.
# Loopback addresses bypass the proxy: the site itself is served on 127.0.0.1.
BLACKHOLE_PROXY = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"}
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
NAVIGATION_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Screen:
    name: str
    width: int
    height: int
    color_scheme: str
    mobile: bool


PHONE = Screen("phone", 375, 812, "dark", True)
DESKTOP = Screen("desktop", 1280, 800, "light", False)
SCREENS = [PHONE, DESKTOP]


@dataclass(frozen=True)
class SitePage:
    """A page of the site in one language: its source and the URL path it is served at."""

    source: Path
    path: str  # URL path on the server, e.g. /en/basics/common_mistakes/
    language: str
    twin_path: str  # the same page in the other language

    @property
    def id(self) -> str:
        return relative(self.source)

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"


def _url_path(source: Path) -> str:
    # built_page() maps a source to its index.html under a site directory; use "/" as the site.
    index = built_page(Path("/"), source)
    return str(index.parent).rstrip("/") + "/"


def site_pages() -> list[SitePage]:
    sources = japanese_pages() + japanese_pages(".ipynb")
    sources += english_pages() + english_pages(".ipynb")
    return [
        SitePage(
            source=source,
            path=_url_path(source),
            language=language_of(source),
            twin_path=_url_path(
                japanese_twin(source) if is_english(source) else english_twin(source)
            ),
        )
        for source in sorted(sources)
    ]


PAGES = site_pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".ipynb": "application/x-ipynb+json",
        ".js": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".woff2": "font/woff2",
        ".xml": "application/xml",
    }

    def log_message(self, format, *args):
        pass


def new_context(browser, screen, base_url: str):
    """A tab group with the screen's size and colors, no service worker, the clipboard allowed."""
    context = browser.new_context(
        viewport={"width": screen.width, "height": screen.height},
        screen={"width": screen.width, "height": screen.height},
        is_mobile=screen.mobile,
        has_touch=screen.mobile,
        color_scheme=screen.color_scheme,
        service_workers="block",
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    return context


@dataclass
class Network:
    """What one tab asked for: requests to other hosts are blocked and recorded."""

    origin: str
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    in_flight: set = field(default_factory=set)
    recording: bool = True

    def is_external(self, url: str) -> bool:
        scheme = urlsplit(url).scheme
        if scheme in ("data", "blob", "about", "javascript"):
            return False
        return not (url == self.origin or url.startswith(self.origin + "/"))

    def attach(self, tab) -> None:
        tab.on("request", self._on_request)
        tab.on("requestfinished", self._on_finished)
        tab.on("requestfailed", self._on_failed)
        tab.on("response", self._on_response)
        tab.on("console", self._on_console)
        tab.on("pageerror", self._on_page_error)
        tab.on("websocket", lambda ws: self.external.append(f"websocket {ws.url}"))

    def settle(self, tab, quiet_ms: int = 150, limit_ms: int = 10_000) -> None:
        """Wait until no request has been in flight for `quiet_ms` (networkidle waits 500 ms)."""
        quiet = waited = 0
        while quiet < quiet_ms and waited < limit_ms:
            tab.wait_for_timeout(50)
            waited += 50
            quiet = 0 if self.in_flight else quiet + 50
        if self.in_flight:
            pending = [f"{r.url}: still loading after {limit_ms} ms" for r in self.in_flight]
            self.failed.extend(pending)

    def _on_request(self, request) -> None:
        self.in_flight.add(request)
        if self.recording and self.is_external(request.url):
            self.external.append(f"{request.resource_type} {request.url}")

    def _on_finished(self, request) -> None:
        self.in_flight.discard(request)

    def _on_failed(self, request) -> None:
        self.in_flight.discard(request)
        if self.recording and not self.is_external(request.url):
            self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _on_response(self, response) -> None:
        if response.request.redirected_to is not None:
            self.in_flight.discard(response.request)  # a redirect hop never "finishes"
        if self.recording and response.status >= 400 and not self.is_external(response.url):
            self.failed.append(f"{response.request.method} {response.url}: HTTP {response.status}")

    def _on_page_error(self, error) -> None:
        if self.recording:
            self.console_errors.append(f"uncaught: {error}")

    def _on_console(self, message) -> None:
        if self.recording and message.type == "error":
            location = message.location or {}
            where = location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)


@dataclass
class Visit:
    """Everything gathered on one page at one screen size."""

    page: SitePage
    screen: Screen
    url: str
    status: int | None
    network: Network
    lang: str
    scroll_width: int
    client_width: int
    overflowing: list[str]
    math: dict
    axe: list[dict]
    screenshot: Path
    heading: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)
    copies: list[dict] = field(default_factory=list)
    notebook: dict = field(default_factory=dict)
    switched_to: str | None = None
    switched_lang: str | None = None

    def where(self) -> str:
        return f"{self.page.id} at {self.screen.width} px ({self.url})"


# JavaScript run in the page. Each returns plain JSON.
LAYOUT_JS = script("layout.js")

MATH_JS = script("math.js")

AXE_JS = script("axe.js")

# Where the header's title and the sidebar's title and entries are drawn, as the page opens.
GEOMETRY_JS = script("geometry.js")

CODE_TEXT_JS = script("code_text.js")

NOTEBOOK_JS = script("notebook.js")


def _screenshot_path(page: SitePage, screen: Screen) -> Path:
    name = page.path.strip("/").replace("/", "-") or "index"
    if not name.startswith(f"{OTHER_LANGUAGE}-") and name != OTHER_LANGUAGE:
        name = f"ja-{name}"
    return SCREENSHOTS / f"{name}-{screen.width}.png"


class Site:
    """Visits pages on demand and remembers each visit for the rest of the session."""

    def __init__(self, browser, base_url: str):
        self.base_url = base_url
        self.visits: dict[tuple[str, str], Visit | Exception] = {}
        self.contexts = {}
        for screen in SCREENS:
            context = new_context(browser, screen, base_url)
            context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
            self.contexts[screen.name] = context
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)
        SCREENSHOTS.mkdir(parents=True)

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()

    def visit(self, page: SitePage, screen: Screen) -> Visit:
        key = (page.id, screen.name)
        if key not in self.visits:
            try:
                self.visits[key] = self._visit(page, screen)
            except Exception as error:  # remembered: the other tests of the page fail fast
                self.visits[key] = error
        if isinstance(self.visits[key], Exception):
            pytest.fail(
                f"visiting {page.id} at {screen.width} px failed: {self.visits[key]!r}",
                pytrace=False,
            )
        return self.visits[key]

    def on_phone(self, page: SitePage) -> Visit:
        return self.visit(page, PHONE)

    def on_desktop(self, page: SitePage) -> Visit:
        return self.visit(page, DESKTOP)

    def search(self, path: str, query: str) -> tuple[list[str], str, Network]:
        """Type `query` into the search box of the page at `path` on the desktop, as a reader
        does; return the URL paths of the result pages in order, the result count line and
        what the tab logged."""
        tab, network, _ = self.open(DESKTOP, path)
        try:
            placeholder = tab.locator(".md-search-result__meta").text_content()
            field = tab.locator(".md-search__input")
            field.fill(query)
            # Material reads the query on keyup. Text typed through an input method (Japanese)
            # arrives when the composition is confirmed; a key press stands for that here.
            field.press("End")
            # The worker answers once its index is loaded; the count line then changes.
            tab.wait_for_function(
                "(before) => document.querySelector('.md-search-result__meta').textContent"
                " !== before",
                arg=placeholder,
            )
            network.settle(tab)
            meta = tab.locator(".md-search-result__meta").text_content()
            # Material shows ten results at a time and more as the list is scrolled.
            shown = -1
            items = tab.locator(".md-search-result__item")
            while items.count() != shown:
                shown = items.count()
                for top in ("0", "wrap.scrollHeight"):  # leave the bottom, then reach it again
                    tab.eval_on_selector(
                        ".md-search__scrollwrap", f"wrap => {{ wrap.scrollTop = {top}; }}"
                    )
                    tab.wait_for_timeout(100)
            links = tab.eval_on_selector_all(
                ".md-search-result__item > .md-search-result__link",
                "links => links.map(link => link.href)",
            )
        finally:
            tab.close()
        paths = []
        for link in links:
            path_of_result = urlsplit(link).path
            if path_of_result not in paths:
                paths.append(path_of_result)
        return paths, meta, network

    def open(self, screen: Screen, path: str):
        """A new tab showing `path` once it is fully loaded, with its network recorder."""
        tab = self.contexts[screen.name].new_page()
        network = Network(self.base_url)
        network.attach(tab)
        response = tab.goto(self.base_url + path, wait_until="load")
        network.settle(tab)
        tab.evaluate("document.fonts.ready.then(() => true)")
        return tab, network, response

    def _visit(self, page: SitePage, screen: Screen) -> Visit:
        tab, network, response = self.open(screen, page.path)
        try:
            layout = tab.evaluate(LAYOUT_JS)
            geometry = tab.evaluate(GEOMETRY_JS)
            math = tab.evaluate(MATH_JS)
            screenshot = _screenshot_path(page, screen)
            tab.screenshot(path=str(screenshot), full_page=True, animations="disabled")
            tab.add_script_tag(path=str(AXE))
            axe = tab.evaluate(AXE_JS)
            visit = Visit(
                page=page,
                screen=screen,
                url=tab.url,
                status=response.status if response else None,
                network=network,
                lang=layout["lang"],
                scroll_width=layout["scrollWidth"],
                client_width=layout["clientWidth"],
                overflowing=layout["overflowing"],
                math=math,
                axe=axe,
                screenshot=screenshot,
                geometry=geometry,
            )
            if screen is DESKTOP:
                visit.heading = _heading_fonts(tab)
                visit.copies = _copy_every_code_block(tab)
                if page.is_notebook:
                    visit.notebook = tab.evaluate(NOTEBOOK_JS)
                # Last, as it leaves the page: the reader's way to the other language.
                visit.switched_to, visit.switched_lang = _switch_language(tab, page, network)
            return visit
        finally:
            tab.close()


def _heading_fonts(tab) -> dict:
    """The title and the fonts Chromium really drew it with (tofu: a font without the glyphs)."""
    cdp = tab.context.new_cdp_session(tab)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        document = cdp.send("DOM.getDocument", {"depth": 0})
        node = cdp.send(
            "DOM.querySelector",
            {"nodeId": document["root"]["nodeId"], "selector": ".md-content h1"},
        )
        if not node.get("nodeId"):
            return {"text": "", "fonts": []}
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
        text = tab.evaluate("document.querySelector('.md-content h1').textContent")
        return {"text": text, "fonts": fonts.get("fonts", [])}
    finally:
        cdp.detach()


COPY_BUTTONS = ".md-content [data-md-type='copy'], .md-content .md-clipboard"
COPY_BY_SCRIPT_JS = script("copy_by_script.js")


def _copy_every_code_block(tab) -> list[dict]:
    """Press each code block's copy button and read what landed on the clipboard.

    The first visible button is clicked with the mouse, as a reader does (so it must be visible
    and not covered); the others, including those in closed <details> or inactive tabs, are
    clicked from JavaScript, which runs the same handler ten times faster.
    """
    # A reader opens a collapsed block (<details>) before copying from it.
    tab.evaluate(
        "document.querySelectorAll('.md-content details').forEach(d => { d.open = true; })"
    )
    buttons = tab.locator(COPY_BUTTONS)
    visible = [i for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    mouse = visible[0] if visible else -1
    copies = tab.evaluate(COPY_BY_SCRIPT_JS, [COPY_BUTTONS, mouse])
    if mouse >= 0:
        copy = copies[mouse]
        tab.evaluate("(text) => navigator.clipboard.writeText(text)", copy["sentinel"])
        buttons.nth(mouse).scroll_into_view_if_needed()
        buttons.nth(mouse).click()
        copy["copied"] = tab.evaluate("() => navigator.clipboard.readText()")
    for copy in copies:
        copy["shown"] = tab.evaluate(CODE_TEXT_JS, copy["target"]) if copy["target"] else None
    return copies


def _switch_language(tab, page: SitePage, network: Network) -> tuple[str | None, str | None]:
    other = other_language(page.language)
    start = tab.url
    link = tab.locator(f".md-header .md-select__link[hreflang='{other}']")
    if link.count() == 0:
        return None, None
    tab.hover(".md-header .md-select")
    # What happens from here on belongs to the page the switcher leads to, checked by its own
    # visit (the sitemap.xml Material fetches for the switcher is fetched on load, before).
    network.recording = False
    link.first.click()
    tab.wait_for_url(lambda url: url != start, wait_until="domcontentloaded")
    lang = tab.evaluate("document.documentElement.getAttribute('lang')")
    return urlsplit(tab.url).path, lang
