"""Type queries into the site's search box in Chromium, the ways readers do, and read what the
box shows: shared by tests/browser/test_search.py and tests/browser/measure_search.py.

The driver knows only Material's markup (.md-search__input, .md-search-result__list), which the
site's Pagefind box keeps, so the same code measures Material's own search as well.

Ways of entering a query (`MODES`):
- ime: on the desktop; text with Japanese in it is composed through an input method and
  committed (Chromium's Input.imeSetComposition, then Input.insertText, then the key-up of the
  Enter key that committed it); ASCII text is typed key by key.
- paste: on the desktop; the query is put on the clipboard and pasted with Ctrl+V.
- phone: on the phone screen; the search button in the header is tapped, then the query is
  composed letter by letter as a phone's on-screen keyboard does (every change a key-down and a
  key-up of key code 229, the code Android keyboards send) and committed.
"""

import json
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.support.pages import DEFAULT_LANGUAGE, DOCS, OTHER_LANGUAGE, ROOT, built_page

QUERIES = ROOT / "tests" / "browser" / "search_queries.yml"
MODES = ("ime", "paste", "phone")
SETTLE_MS = 300  # the list is taken as final after this long without a change
NONE_MS = 3000  # no result at all after this long: the search found nothing
LIMIT_MS = 15_000


@dataclass(frozen=True)
class Query:
    language: str
    query: str
    page: str  # source under docs/, without the language suffix
    kind: str
    first: bool = False
    miss: str = ""  # why the page is known not to be found (the row still counts in the share)

    @property
    def id(self) -> str:
        return f"{self.language}:{self.query}"

    @property
    def root(self) -> str:
        return "/" if self.language == DEFAULT_LANGUAGE else f"/{OTHER_LANGUAGE}/"

    @property
    def source(self) -> Path:
        path = DOCS / self.page
        if self.language == OTHER_LANGUAGE:
            path = path.with_suffix(f".{OTHER_LANGUAGE}{path.suffix}")
        return path

    @property
    def expected(self) -> str:
        """The URL path of the answering page."""
        folder = built_page(Path("/"), self.source).parent
        return str(folder).rstrip("/") + "/"


def load_queries() -> list[Query]:
    rows = yaml.safe_load(QUERIES.read_text("utf-8"))
    return [Query(language=language, **row) for language in rows for row in rows[language]]


@dataclass
class Answer:
    """What the search box showed for one query, entered one way."""

    pages: list[str]  # distinct result pages, URL paths, in order
    first_ms: float | None  # last key event to the first results drawn (in-page clock)
    marks: list[dict] = field(default_factory=list)  # <mark>s in the results, with context
    highlights: list[str] = field(default_factory=list)  # the words a result link carries
    meta: str = ""  # the count line above the list
    value: str = ""  # what the search box holds
    visible: bool = False  # the first result is on screen, not covered


WATCH_JS = """() => {
  const list = document.querySelector('.md-search-result__list');
  const input = document.querySelector('.md-search__input');
  const state = {start: null, first: null, last: null};
  const observer = new MutationObserver(() => {
    const now = performance.now();
    if (state.start !== null && list.children.length && state.first === null) state.first = now;
    state.last = now;
  });
  observer.observe(list, {childList: true, subtree: true, characterData: true});
  // The last key press: its key-down, or the input it made (an input method's commit, a
  // paste, a phone keyboard send input events whose key events say little).
  for (const type of ['keydown', 'input', 'compositionend']) {
    input.addEventListener(type, (event) => {
      if (!window.__searchArmed) return;
      state.start = event.timeStamp; state.first = null; state.last = performance.now();
    }, true);
  }
  window.__searchState = state;
  window.__searchArmed = false;
}"""

CLEAR_JS = """() => {
  const input = document.querySelector('.md-search__input');
  window.__searchArmed = false;
  input.value = '';
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: 'Backspace'}));
  const state = window.__searchState;
  state.start = null; state.first = null; state.last = null;
  window.__searchArmed = true;
}"""

STATE_JS = """() => ({...window.__searchState, now: performance.now(),
  items: document.querySelectorAll('.md-search-result__item').length})"""

READ_JS = """() => {
  const links = [...document.querySelectorAll(
    '.md-search-result__item > .md-search-result__link, .md-search-result__item > a')];
  const marks = [...document.querySelectorAll('.md-search-result__list mark')].map(mark => {
    const text = mark.parentElement ? mark.parentElement.textContent : '';
    const before = mark.previousSibling ? mark.previousSibling.textContent : '';
    const after = mark.nextSibling ? mark.nextSibling.textContent : '';
    return {text: mark.textContent, before: before.slice(-1), after: after.slice(0, 1),
            context: text.slice(0, 160)};
  });
  // Whether a reader sees the first result: it is what the browser finds at its centre.
  let visible = false;
  if (links.length) {
    const box = links[0].getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    visible = box.height > 0 && !!hit && links[0].contains(hit);
  }
  return {links: links.map(link => link.href), marks, visible,
          meta: document.querySelector('.md-search-result__meta').textContent.trim(),
          value: document.querySelector('.md-search__input').value};
}"""


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class SearchBox:
    """One tab showing a page of one language, whose search box takes query after query."""

    def __init__(self, context, base_url: str, path: str, mode: str, cpu_throttle: float = 1):
        self.mode = mode
        self.base_url = base_url
        self.tab = context.new_page()
        self.requests: list[dict] = []
        self.external: list[str] = []
        self.errors: list[str] = []
        self.tab.on("requestfinished", self._finished)
        self.tab.on("request", self._request)
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.cdp = context.new_cdp_session(self.tab)
        if cpu_throttle != 1:
            self.cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu_throttle})
        self.tab.goto(base_url + path, wait_until="load")
        self.tab.evaluate(WATCH_JS)
        if mode == "phone":
            self.tab.locator("label.md-header__button[for='__search']").first.tap()
        else:
            self.tab.locator(".md-search__input").click()
        self.tab.wait_for_timeout(200)

    def _request(self, request) -> None:
        if not (request.url == self.base_url or request.url.startswith(self.base_url + "/")):
            if urlsplit(request.url).scheme not in ("data", "blob", "about"):
                self.external.append(request.url)

    def _finished(self, request) -> None:
        try:
            size = request.sizes()["responseBodySize"]
        except Exception:  # the tab closed first
            return
        self.requests.append({"url": request.url, "bytes": size})

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        self.tab.close()

    # ---------------------------------------------------------------- entering a query

    def _compose(self, text: str, android: bool) -> None:
        for end in range(1, len(text) + 1):
            if android:
                self._key("keyDown", "Unidentified", 229)
            self.cdp.send(
                "Input.imeSetComposition",
                {"text": text[:end], "selectionStart": end, "selectionEnd": end},
            )
            if android:
                self._key("keyUp", "Unidentified", 229)
        if not android:
            self._key("keyDown", "Process", 229)
        self.cdp.send("Input.insertText", {"text": text})
        if android:
            self._key("keyUp", "Unidentified", 229)
        else:
            self._key("keyUp", "Enter", 13)

    def _key(self, kind: str, key: str, code: int) -> None:
        self.cdp.send(
            "Input.dispatchKeyEvent",
            {"type": kind, "key": key, "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code},
        )

    def enter(self, query: str) -> None:
        self.tab.evaluate(CLEAR_JS)
        self.tab.wait_for_timeout(50)
        if self.mode == "ime":
            if query.isascii():
                self.tab.keyboard.type(query)
            else:
                self._compose(query, android=False)
        elif self.mode == "paste":
            self.tab.evaluate("(text) => navigator.clipboard.writeText(text)", query)
            self.tab.keyboard.press("Control+V")
        elif self.mode == "phone":
            self._compose(query, android=True)
        else:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")

    def search(self, query: str) -> Answer:
        self.enter(query)
        started = time.monotonic()
        while True:
            self.tab.wait_for_timeout(50)
            state = self.tab.evaluate(STATE_JS)
            waited = (time.monotonic() - started) * 1000
            if state["first"] is not None and state["now"] - state["last"] >= SETTLE_MS:
                break
            if state["first"] is None and waited >= NONE_MS:
                break
            if waited >= LIMIT_MS:
                raise TimeoutError(f"the results for {query!r} kept changing for {LIMIT_MS} ms")
        read = self.tab.evaluate(READ_JS)
        pages, highlights = [], []
        for link in read["links"]:
            parts = urlsplit(link)
            if parts.path not in pages:
                pages.append(parts.path)
            if not highlights:
                highlights = [v for k, v in parse_qsl(parts.query) if k in ("h", "highlight")]
        first_ms = None
        if state["first"] is not None and state["start"] is not None:
            first_ms = round(state["first"] - state["start"], 1)
        return Answer(
            pages=pages,
            first_ms=first_ms,
            marks=read["marks"],
            highlights=highlights,
            meta=read["meta"],
            value=read["value"],
            visible=read["visible"],
        )


def search_bytes(requests: list[dict]) -> dict:
    """Bytes the tab downloaded for search (Pagefind's bundle, Material's index and worker)."""
    out = {}
    for request in requests:
        path = urlsplit(request["url"]).path
        if "/pagefind/" in path or "/search/" in path or "/workers/" in path or "/lunr/" in path:
            out[path] = max(out.get(path, 0), request["bytes"])
    return out


def dump(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
