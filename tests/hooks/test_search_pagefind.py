import importlib.util
import json
import re
import subprocess
import sys

from tests.support.pages import (
    DEFAULT_LANGUAGE,
    DOCS,
    LANGUAGES,
    OTHER_LANGUAGE,
    ROOT,
    english_pages,
    japanese_pages,
)

spec = importlib.util.spec_from_file_location("search_pagefind", ROOT / "hooks/search_pagefind.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

ARTICLE = '<article class="md-content__inner md-typeset">{}</article>'


def test_the_glossary_names_each_identifier_in_both_languages_with_its_variants():
    terms = hook.glossary_terms(str(DOCS))
    # Rows of docs/glossary.md: the Japanese headword, the English term, the other spellings.
    assert {"交差エントロピー損失", "cross-entropy", "交差エントロピー誤差"} <= set(
        terms["CrossEntropyLoss"]
    )
    assert terms["cross_entropy"] == terms["CrossEntropyLoss"]
    smoothing = set(terms["label_smoothing"])
    assert {"ラベル平滑化", "label smoothing"} <= smoothing
    # ラベルスムージング is no rejected variant: the pages gloss it at the first mention, so
    # their own text carries it.
    assert "ラベルスムージング" not in smoothing
    assert {"負の対数尤度", "negative log-likelihood"} <= set(terms["NLLLoss"])
    # Names too common to stand for one term are not keys.
    assert not {"weight", "target", "reduction", "nn"} & set(terms)


def test_a_heading_that_names_an_identifier_is_indexed_under_its_glossary_names():
    terms = {"CrossEntropyLoss": ["交差エントロピー損失", "cross-entropy"]}
    page = ARTICLE.format('<h1 id="a">NLLLoss と <code>CrossEntropyLoss</code></h1><p>x</p>')
    out = hook.add_heading_terms(page, terms)
    assert 'data-pagefind-index-attrs="data-search-terms"' in out
    assert 'data-search-terms="交差エントロピー損失 / cross-entropy"' in out
    added = ' data-pagefind-index-attrs="data-search-terms"'
    added += ' data-search-terms="交差エントロピー損失 / cross-entropy"'
    assert out.replace(added, "") == page  # nothing else changes


def test_a_heading_without_an_identifier_and_text_outside_the_article_are_left_alone():
    terms = {"CrossEntropyLoss": ["交差エントロピー損失"]}
    page = ARTICLE.format('<h2 id="b">定義</h2><h2 id="c">MyCrossEntropyLossy</h2>')
    assert hook.add_heading_terms(page, terms) == page
    nav = "<nav><h2>CrossEntropyLoss</h2></nav>"
    assert hook.add_heading_terms(nav, terms) == nav


def test_the_extended_pagefind_binary_ships_with_the_package():
    """The extended build is the one that segments Japanese; the wheel holds it."""
    done = subprocess.run(
        [sys.executable, "-m", "pagefind", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: pagefind_extended" in done.stdout


def test_the_built_site_has_one_pagefind_index_per_language(built_site):
    entry = json.loads((built_site / "pagefind" / "pagefind-entry.json").read_text("utf-8"))
    pages = {DEFAULT_LANGUAGE: japanese_pages() + japanese_pages(".ipynb")}
    pages[OTHER_LANGUAGE] = english_pages() + english_pages(".ipynb")
    for language, sources in pages.items():
        assert entry["languages"][language]["page_count"] == len(sources), language


def test_a_page_title_is_indexed_under_its_navigation_section_unless_the_page_says_it():
    page = "<nav>Choosing a loss</nav>" + ARTICLE.format('<h1 id="a">Which loss?</h1>')
    out = hook.add_section_title(page, "Choosing a loss")
    assert 'data-search-terms="Choosing a loss"' in out
    said = ARTICLE.format("<h1>Choosing a loss</h1>")
    assert hook.add_section_title(said, "Choosing a loss") == said
    assert hook.add_section_title(page, None) == page


def test_headings_of_the_article_weigh_more_than_its_text():
    page = "<h1>site</h1>" + ARTICLE.format("<h1>t</h1><h2>s</h2><h4>x</h4>")
    out = hook.weigh_headings(page)
    assert out.startswith("<h1>site</h1>")  # outside the article
    assert '<h1 data-pagefind-weight="10">t</h1><h2 data-pagefind-weight="7">s</h2><h4>' in out


def test_every_build_indexes_its_own_site_folder(tmp_path):
    """`mkdocs serve` builds into a temporary folder on every change and fires the same
    on_post_build; the hook indexes whatever folder the build wrote, offline."""
    for language, folder in (
        (DEFAULT_LANGUAGE, tmp_path),
        (OTHER_LANGUAGE, tmp_path / OTHER_LANGUAGE),
    ):
        folder.mkdir(exist_ok=True)
        page = ARTICLE.format(f"<h1>{language}</h1><p>交差エントロピー損失 cross-entropy</p>")
        (folder / "index.html").write_text(
            f'<html lang="{language}"><body>{page}</body></html>', encoding="utf-8"
        )

    class Config:
        site_dir = str(tmp_path)

    hook.on_post_build(Config())
    entry = json.loads((tmp_path / "pagefind" / "pagefind-entry.json").read_text("utf-8"))
    assert {
        language: index["page_count"] for language, index in entry["languages"].items()
    } == dict.fromkeys(LANGUAGES, 1)


def test_a_japanese_run_is_written_as_every_suffix_so_any_cut_of_it_matches():
    words = hook.suffixes("キャリブレーションと温度スケーリング NLLLoss")
    assert words[0] == "キャリブレーションと温度スケーリング"
    assert "NLLLoss" in words
    # The browser cuts the query into キ, ャ, …, ション, と, 温度, スケーリング: Pagefind matches
    # a query word with every indexed word that starts with it, so each cut needs a suffix.
    for cut in ["キ", "ャ", "リ", "ブ", "レ", "ー", "ション", "と", "温度", "スケーリング"]:
        assert any(word.startswith(cut) for word in words), cut
    # Latin words stay whole: "loss" must not match inside "nllloss".
    assert not [w for w in words if w.isascii() and w != "NLLLoss"]


def test_the_meta_fields_are_the_titles_glossary_names_the_title_and_the_sections():
    terms = {"CrossEntropyLoss": ["交差エントロピー損失"], "label_smoothing": ["ラベル平滑化"]}
    page = ARTICLE.format(
        '<h1 id="a">NLLLoss と <code>CrossEntropyLoss</code></h1><p>x</p>'
        '<h2 id="b"><code>label_smoothing</code></h2>'
    )
    out = hook.add_meta_keys(page, terms, "基礎", first_of_section=False)
    h1 = re.search(r"<h1[^>]*>", out)[0]
    fields = "names[data-search-names], keys[data-search-keys], topics[data-search-topics]"
    assert f'data-pagefind-meta="{fields}"' in h1
    names = re.search(r'data-search-names="([^"]*)"', h1)[1].split()
    keys = re.search(r'data-search-keys="([^"]*)"', h1)[1].split()
    topics = re.search(r'data-search-topics="([^"]*)"', h1)[1].split()
    assert {"交差エントロピー損失", "エントロピー損失", "損失"} <= set(names)
    assert {"NLLLoss", "と", "CrossEntropyLoss"} == set(keys)
    assert {"ラベル平滑化", "平滑化", "基礎"} <= set(topics)
    assert "ラベル平滑化" not in names + keys and "基礎" not in keys
    # The first page of a section is the section's own page: its title is one of its keys.
    first = hook.add_meta_keys(page, terms, "基礎", first_of_section=True)
    assert "基礎" in re.search(r'data-search-keys="([^"]*)"', first)[1].split()
    # Nothing else of the page changes; a page without a title is left alone.
    assert re.sub(r' data-(pagefind-meta|search-[a-z]+)="[^"]*"', "", out) == page
    assert hook.add_meta_keys(ARTICLE.format("<p>x</p>"), terms, None, False) == ARTICLE.format(
        "<p>x</p>"
    )
