"""The strict build of both languages succeeds and produces a complete, clean site."""

import json
import re

import pytest
from site_pages import (
    OTHER_LANGUAGE,
    built_page,
    english_pages,
    japanese_pages,
    relative,
)

SOURCES = japanese_pages() + english_pages() + japanese_pages(".ipynb") + english_pages(".ipynb")
NOTEBOOKS = japanese_pages(".ipynb") + english_pages(".ipynb")
# What a failed example leaves in a page: a Python traceback (plain, or split by the colour
# markup of a notebook's error output), or markdown-exec's failure notice.
FAILURE_MARKS = re.compile(r"Traceback(?:\s|<[^>]+>)*\(most recent call last\)|exited with errors")


@pytest.mark.parametrize("source", SOURCES, ids=relative)
def test_every_page_is_built_without_rendered_errors(built_site, source):
    page = built_page(built_site, source)
    assert page.is_file(), f"{relative(source)} was not built to {page}"
    html = page.read_text(encoding="utf-8")
    failure = FAILURE_MARKS.search(html)
    assert failure is None, f"{relative(source)} shows a failure: {failure.group(0)!r}"


def test_search_index_holds_both_languages(built_site):
    def docs(path):
        return json.loads(path.read_text(encoding="utf-8"))["docs"]

    japanese = docs(built_site / "search" / "search_index.json")
    english = docs(built_site / OTHER_LANGUAGE / "search" / "search_index.json")
    assert japanese and english
    assert not any(doc["location"].startswith(f"{OTHER_LANGUAGE}/") for doc in japanese)
    assert any("交差エントロピー" in doc["text"] for doc in japanese)
    assert any("cross-entropy" in doc["text"].lower() for doc in english)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=relative)
def test_notebook_is_rendered_with_its_outputs(built_site, notebook):
    html = built_page(built_site, notebook).read_text(encoding="utf-8")
    outputs = re.findall(r'class="[^"]*jp-OutputArea-output[^"]*"', html)
    assert outputs, f"{relative(notebook)} was rendered without executed outputs"
    download = built_page(built_site, notebook).parent / notebook.name
    assert download.is_file(), f"{relative(notebook)} is not downloadable from its page"
