"""Both languages have every page, with the same code in the same order."""

import json
from collections import Counter

import pytest

from tests.support.markdown_blocks import code_blocks, inline_code, snippet_includes
from tests.support.pages import (
    english_pages,
    english_twin,
    japanese_pages,
    japanese_twin,
    relative,
)

PAGES = japanese_pages()
NOTEBOOKS = japanese_pages(".ipynb")
page_id = relative


@pytest.mark.parametrize("page", PAGES + NOTEBOOKS, ids=page_id)
def test_japanese_page_has_english_twin(page):
    assert english_twin(page).is_file(), f"{relative(page)} has no {relative(english_twin(page))}"


@pytest.mark.parametrize("page", english_pages() + english_pages(".ipynb"), ids=page_id)
def test_english_page_has_japanese_twin(page):
    assert japanese_twin(page).is_file(), f"{relative(page)} has no {relative(japanese_twin(page))}"


def _code(page):
    return [
        (b.info, b.body) for b in code_blocks(page) if b.language not in {"output", "transcript"}
    ]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_twins_include_the_same_snippets_in_the_same_order(page):
    assert snippet_includes(page) == snippet_includes(english_twin(page))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_twins_have_the_same_code_blocks_in_the_same_order(page):
    ja, en = _code(page), _code(english_twin(page))
    for n, (ja_block, en_block) in enumerate(zip(ja, en, strict=False), start=1):
        assert ja_block == en_block, f"code block {n} differs between {relative(page)} and its twin"
    assert len(ja) == len(en), f"{relative(page)} has {len(ja)} code blocks, its twin {len(en)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_twins_have_the_same_inline_code(page):
    # Word order differs between the languages, so the spans are compared as a multiset.
    ja, en = Counter(inline_code(page)), Counter(inline_code(english_twin(page)))
    assert ja == en, f"only in Japanese: {ja - en}; only in English: {en - ja}"


def _code_cells(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=page_id)
def test_notebook_twins_have_identical_code_cells(notebook):
    assert _code_cells(notebook) == _code_cells(english_twin(notebook))
