"""mkdocs.yml's navigation: every page is in `nav` once, and every section title in it has its
English name in the English language's `nav_translations`.

The strict build also fails on a page left out of `nav` (validation.omitted_files: warn); a
missing translation fails nothing there: the English site would show the Japanese title.
"""

import yaml

from tests.support.pages import DOCS, OTHER_LANGUAGE, ROOT, is_english

CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def walk(nav):
    """(section titles, page paths) of a `nav` list, in order."""
    sections, pages = [], []
    for entry in nav:
        if isinstance(entry, str):
            pages.append(entry)
            continue
        ((title, value),) = entry.items()
        if isinstance(value, list):
            sections.append(title)
            inner_sections, inner_pages = walk(value)
            sections += inner_sections
            pages += inner_pages
        else:
            pages.append(value)
    return sections, pages


def english_translations() -> dict:
    (i18n,) = [p["i18n"] for p in CONFIG["plugins"] if isinstance(p, dict) and "i18n" in p]
    (english,) = [lang for lang in i18n["languages"] if lang["locale"] == OTHER_LANGUAGE]
    return english.get("nav_translations", {})


def test_every_page_is_in_nav_once():
    _, pages = walk(CONFIG["nav"])
    sources = [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
    expected = sorted(p.relative_to(DOCS).as_posix() for p in sources if not is_english(p))
    assert sorted(pages) == expected


def test_every_section_title_has_its_english_name_and_no_other():
    sections, _ = walk(CONFIG["nav"])
    translations = english_translations()
    assert sorted(translations) == sorted(sections)
    assert all(name.isascii() and name.strip() for name in translations.values()), translations
