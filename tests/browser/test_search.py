"""Search, in Chromium on the built site: each query of tests/browser/search_queries.yml,
typed into the search box of its language, lists the page that answers it among the first
three distinct pages (first, for the glossary's headwords), in the reader's language only; the
query gives the same results composed through an input method, pasted, or typed on a phone;
the highlights mark whole words; nothing is fetched from another host; the first results come
within 300 ms of the last key press on the phone.

The search box is Pagefind's (hooks/search_pagefind.py, docs/assets/search.js);
tests/browser/search_driver.py enters the queries. To run these tests against a site built
beforehand, set SEARCH_SITE to its folder; otherwise the session builds one.
"""

import functools
import http.server
import json
import os
import re
import statistics
import threading
import unicodedata
from pathlib import Path

import pytest

from tests.browser import chromium as setup  # the screens, pages and server of the visits
from tests.browser.search_driver import MODES, SearchBox, dump, load_queries, search_bytes
from tests.support.pages import DEFAULT_LANGUAGE, LANGUAGES, OTHER_LANGUAGE, ROOT, other_language

DESKTOP, PHONE, PAGES = setup.DESKTOP, setup.PHONE, setup.PAGES

pytestmark = pytest.mark.browser

QUERIES = load_queries()
TOP = 3
SHARE = 0.95  # of each language's queries, the answering page in the first three
PHONE_MS = 300
WORD = re.compile(r"[A-Za-z0-9_]")


@pytest.fixture(scope="module")
def search_site(request) -> Path:
    given = os.environ.get("SEARCH_SITE")
    return Path(given) if given else request.getfixturevalue("built_site")


@pytest.fixture(scope="module")
def search_url(search_site):
    handler = functools.partial(setup._QuietHandler, directory=str(search_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


class Boxes:
    """One search box per way of entering a query and per language; every answer remembered."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts = {}
        self.boxes: dict[tuple[str, str], SearchBox] = {}
        self.answers = {}

    def context(self, screen):
        if screen.name not in self.contexts:
            context = setup.new_context(self.browser, screen, self.base_url)
            self.contexts[screen.name] = context
        return self.contexts[screen.name]

    def box(self, mode: str, language: str) -> SearchBox:
        if (mode, language) not in self.boxes:
            screen = PHONE if mode == "phone" else DESKTOP
            root = "/" if language == DEFAULT_LANGUAGE else f"/{OTHER_LANGUAGE}/"
            self.boxes[mode, language] = SearchBox(self.context(screen), self.base_url, root, mode)
        return self.boxes[mode, language]

    def answer(self, query, mode: str = "ime"):
        key = (mode, query.id)
        if key not in self.answers:
            self.answers[key] = self.box(mode, query.language).search(query.query)
        return self.answers[key]

    def record(self, path: Path) -> None:
        """What every query showed, in measure_search.py's format (for the numbers on a page)."""
        queries = {}
        for (mode, query_id), answer in self.answers.items():
            query = next(q for q in QUERIES if q.id == query_id)
            entry = queries.setdefault(
                query_id,
                {
                    "language": query.language,
                    "query": query.query,
                    "expected": query.expected,
                    "first": query.first,
                    "kind": query.kind,
                    "modes": {},
                },
            )
            entry["modes"][mode] = {**answer.__dict__, "marks": answer.marks[:20]}
        data = {
            "design": "pagefind (tests/browser/test_search.py)",
            "queries": queries,
            "bytes": {f"{m}:{k}": search_bytes(b.requests) for (m, k), b in self.boxes.items()},
            "external": [url for box in self.boxes.values() for url in box.external],
            "errors": [error for box in self.boxes.values() for error in box.errors],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        dump(path, data)

    def close(self):
        for context in self.contexts.values():
            context.close()


@pytest.fixture(scope="module")
def boxes(search_url, browser):
    """On conftest's session browser: a second sync_playwright() in one process is refused."""
    opened = Boxes(browser, search_url)
    yield opened
    opened.record(ROOT / "test-artifacts" / "search" / "answers.json")
    opened.close()


def _rank(query, pages: list[str]) -> int | None:
    return pages.index(query.expected) + 1 if query.expected in pages else None


# --------------------------------------------------------------------------- the query set


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_answers_a_query(language):
    """A page without a query row is a page nobody checked search can find."""
    pages = {p.path for p in PAGES if p.language == language}
    expected = {q.expected for q in QUERIES if q.language == language}
    assert not expected - pages, f"rows name pages that do not exist: {sorted(expected - pages)}"
    missing = sorted(pages - expected)
    assert not missing, f"no {language} query in search_queries.yml answers {missing}"
    assert len([q for q in QUERIES if q.language == language]) >= 40


# --------------------------------------------------------------------------- ranking


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_query_finds_its_page_in_the_first_three(boxes, query):
    answer = boxes.answer(query)
    rank = _rank(query, answer.pages)
    where = f"{query.query!r} on {query.root}: {query.expected} is "
    where += f"result {rank}" if rank else "not among the results"
    assert not answer.pages or answer.visible, f"{query.query!r}: the results are not on screen"
    problem = None
    if rank is None or rank > TOP:
        problem = f"{where}; first results: {answer.pages[:5]}"
    elif query.first and rank != 1:
        problem = f"{where}, not the first (a glossary headword); {answer.pages[:5]}"
    if query.miss:
        assert problem, f"{query.query!r} is found now: remove its `miss` ({query.miss})"
        pytest.xfail(f"known miss: {query.miss}")
    assert problem is None, problem


@pytest.mark.parametrize("language", LANGUAGES)
def test_share_of_queries_answered_in_the_first_three(boxes, language):
    rows = [q for q in QUERIES if q.language == language]
    ranks = [_rank(q, boxes.answer(q).pages) for q in rows]
    share = sum(1 for r in ranks if r and r <= TOP) / len(rows)
    assert share >= SHARE, f"{language}: {share:.0%} of {len(rows)} queries in the first three"


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_results_are_in_the_readers_language(boxes, query):
    pages = boxes.answer(query).pages
    english = query.language == OTHER_LANGUAGE
    other = [p for p in pages if p.startswith(f"/{OTHER_LANGUAGE}/") != english]
    assert not other, f"{query.query!r} on {query.root} lists pages of the other language: {other}"


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize("mode", [m for m in MODES if m != "ime"])
@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_each_way_of_entering_gives_the_same_results(boxes, query, mode):
    typed = boxes.answer(query, "ime")
    other = boxes.answer(query, mode)
    assert other.value == query.query, f"{mode}: the box holds {other.value!r}"
    assert other.pages == typed.pages, (
        f"{query.query!r} {mode} lists {other.pages[:5]}, through the input method "
        f"{typed.pages[:5]}"
    )


# --------------------------------------------------------------------------- highlights


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_highlights_mark_whole_words(boxes, query):
    answer = boxes.answer(query)
    text = unicodedata.normalize("NFKC", query.query).lower()
    for mark in answer.marks:
        marked = mark["text"].strip()
        problem = None
        if marked[:1] and WORD.match(marked[0]) and WORD.match(mark["before"] or " "):
            problem = f"{query.query!r}: a mark starts inside a word: {mark}"
        if marked[-1:] and WORD.match(marked[-1]) and WORD.match(mark["after"] or " "):
            problem = f"{query.query!r}: a mark ends inside a word: {mark}"
        if problem:
            pytest.fail(problem)
    # The words the result links carry to the page, which marks them there: the query's own
    # words, not the pieces a segmenter cut them into (交 of 交差エントロピー, 集 of 用語集).
    if answer.pages:
        assert [w.lower() for w in answer.highlights] == text.split(), (
            f"{query.query!r}: the result links highlight {answer.highlights}"
        )


# --------------------------------------------------------------------------- network, speed


def test_no_request_to_another_host_and_no_error(boxes):
    for query in QUERIES:
        boxes.answer(query)
    for (mode, language), box in boxes.boxes.items():
        assert not box.external, f"{mode} {language}: requests to other hosts: {box.external}"
        assert not box.errors, f"{mode} {language}: console errors: {box.errors}"


def test_first_results_within_300_ms_on_the_phone(boxes):
    times = {q.id: boxes.answer(q, "phone").first_ms for q in QUERIES}
    found = [t for t in times.values() if t is not None]
    assert found, "no query showed results on the phone"
    slow = {q: t for q, t in times.items() if t is not None and t > PHONE_MS}
    median = statistics.median(found)
    assert not slow, f"slower than {PHONE_MS} ms on the phone (median {median} ms): {slow}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_index_is_built_per_language(search_site, boxes, language):
    entry = json.loads((search_site / "pagefind" / "pagefind-entry.json").read_text("utf-8"))
    pages = [p for p in PAGES if p.language == language]
    index = entry["languages"].get(language)
    assert index, f"pagefind-entry.json has no {language} index: {entry['languages']}"
    assert index["page_count"] >= len(pages)
    downloaded = search_bytes(boxes.box("ime", language).requests)
    other = other_language(language)
    fetched_other = [p for p in downloaded if f"/{other}_" in p or f".{other}_" in p]
    assert not fetched_other, f"the {language} pages downloaded the {other} index: {fetched_other}"
