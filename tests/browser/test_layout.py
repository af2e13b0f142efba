"""Where Chromium draws the header's title and the sidebar: nothing covers anything, nothing is cut.

The boxes come from the visit of each page (chromium.py, js/geometry.js), measured as the page
opens; the screenshots of those visits are in test-artifacts/screenshots/.
"""

import pytest
import yaml

from tests.support.pages import DEFAULT_LANGUAGE, ROOT

pytestmark = pytest.mark.browser


def _fail_unless(ok: bool, message: str) -> None:
    if not ok:
        pytest.fail(message, pytrace=False)


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


def _site_names() -> dict[str, set[str]]:
    """The names the header may show in each language: the site name and its short form."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    names = {DEFAULT_LANGUAGE: {config["site_name"]}}
    i18n = next(p["i18n"] for p in config["plugins"] if isinstance(p, dict) and "i18n" in p)
    for language in i18n["languages"]:
        if not language.get("default"):
            names[language["locale"]] = {language["site_name"]}
    for language, short in config["extra"]["short_site_name"].items():
        names[language].add(short)
    return names


SITE_NAMES = _site_names()


def test_sidebar_title_covers_no_navigation_entry(site, site_page):
    visit = site.on_desktop(site_page)
    title = visit.geometry["sidebar_title"]
    _fail_unless(title is not None, f"{visit.where()}: the sidebar shows no title")
    entries = visit.geometry["sidebar_entries"]
    _fail_unless(bool(entries), f"{visit.where()}: the sidebar shows no navigation entry")
    covered = [e["text"] for e in entries if _overlap(title["box"], e["box"])]
    _fail_unless(
        not covered,
        f"{visit.where()}: the sidebar's title {title['text']!r} ({title['box']}) is drawn over "
        f"these navigation entries: {covered}",
    )


def test_header_shows_the_whole_site_name(site, site_page, screen):
    visit = site.visit(site_page, screen)
    names = visit.geometry["header_names"]
    _fail_unless(
        len(names) == 1,
        f"{visit.where()}: the header shows {len(names)} site names: {[n['text'] for n in names]}",
    )
    name = names[0]
    _fail_unless(
        name["text"] in SITE_NAMES[site_page.language],
        f"{visit.where()}: the header shows {name['text']!r}, not one of "
        f"{sorted(SITE_NAMES[site_page.language])}",
    )
    _fail_unless(
        name["scrollWidth"] <= name["clientWidth"],
        f"{visit.where()}: the header's title {name['text']!r} is cut: it needs "
        f"{name['scrollWidth']} px and has {name['clientWidth']} px",
    )
