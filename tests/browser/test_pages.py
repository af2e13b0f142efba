"""Every page, in both languages, on a phone and on a desktop, in Debian's Chromium.

The facts come from one visit per page and screen (see chromium.py); each test reads them.
"""

import re

import pytest

from tests.support.markdown_blocks import code_blocks
from tests.support.pages import other_language
from tests.support.sections import included

pytestmark = pytest.mark.browser

BLOCKING_IMPACTS = {"serious", "critical"}
ANNOTATION_MARKER = re.compile(r"#\s*\(\d+\)!?\s*$", re.MULTILINE)
HIDDEN_LINE = re.compile(r"#\s*markdown-exec:\s*hide\s*$")  # markdown-exec leaves these out
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _fail_unless(ok: bool, message: str) -> None:
    """Fail with `message` alone: the page and what is wrong, without a Python traceback."""
    if not ok:
        pytest.fail(message, pytrace=False)


def _bullets(items) -> str:
    return "\n".join(f"  - {item}" for item in items)


def _fail_if_any(items, message: str) -> None:
    """Fail with `message` followed by `items`, one a line, when there are any."""
    _fail_unless(not items, f"{message}:\n{_bullets(items)}")


def test_page_loads_without_errors(site, site_page, screen):
    visit = site.visit(site_page, screen)
    _fail_unless(visit.status == 200, f"{visit.where()}: HTTP {visit.status}")
    problems = visit.network.console_errors + visit.network.failed
    _fail_if_any(problems, f"{visit.where()} logged console errors or had failed requests")


def test_page_requests_nothing_from_other_hosts(site, site_page, screen):
    visit = site.visit(site_page, screen)
    _fail_if_any(
        visit.network.external,
        f"{visit.where()} asked other hosts for these (blocked; the site must work offline)",
    )


def test_lang_attribute_matches_the_language(site, site_page, screen):
    visit = site.visit(site_page, screen)
    _fail_unless(
        visit.lang == site_page.language,
        f'{visit.where()}: <html lang="{visit.lang}">, expected "{site_page.language}"',
    )


def test_phone_screen_does_not_scroll_sideways(site, site_page):
    visit = site.on_phone(site_page)
    _fail_unless(
        visit.scroll_width <= visit.client_width,
        f"{visit.where()} scrolls sideways: the document is {visit.scroll_width} px wide in a "
        f"{visit.client_width} px viewport. Outermost elements sticking out:\n"
        f"{_bullets(visit.overflowing)}",
    )


def test_no_serious_accessibility_violation(site, site_page, screen):
    visit = site.visit(site_page, screen)
    blocking = [v for v in visit.axe if v["impact"] in BLOCKING_IMPACTS]
    report = []
    for violation in blocking:
        nodes = [f"{n['target']}: {' '.join(n['summary'].split())}" for n in violation["nodes"]]
        report.append(
            f"{violation['impact']} {violation['id']}: {violation['help']}\n"
            + "\n".join(f"      {node}" for node in nodes[:5])
            + (f"\n      ... and {len(nodes) - 5} more" if len(nodes) > 5 else "")
        )
    _fail_if_any(report, f"axe-core on {visit.where()}, {screen.color_scheme} color scheme")


def test_screenshot_is_saved(site, site_page, screen):
    visit = site.visit(site_page, screen)
    _fail_unless(
        visit.screenshot.is_file() and visit.screenshot.stat().st_size > 10_000,
        f"no usable screenshot of {visit.where()} at {visit.screenshot}",
    )


def test_title_is_drawn_with_real_glyphs(site, site_page):
    """Japanese text is drawn with a font that has its glyphs: no tofu boxes."""
    visit = site.on_desktop(site_page)
    text, fonts = visit.heading.get("text", ""), visit.heading.get("fonts", [])
    _fail_unless(bool(fonts), f"{visit.where()}: the page has no first-level heading")
    families = ", ".join(f"{f['familyName']} ({f['glyphCount']} glyphs)" for f in fonts)
    _fail_unless(
        sum(f["glyphCount"] for f in fonts) > 0,
        f"{visit.where()}: the title was drawn without glyphs: {families}",
    )
    if JAPANESE.search(text):
        _fail_unless(
            any(re.search(r"CJK|JP|Gothic|Mincho", f["familyName"]) for f in fonts),
            f"{visit.where()}: the Japanese title {text!r} was drawn without a Japanese font "
            f"({families}); install fonts-noto-cjk",
        )


def test_language_switcher_lands_on_the_same_page(site, site_page):
    visit = site.on_desktop(site_page)
    other = other_language(site_page.language)
    _fail_unless(visit.switched_to is not None, f"{visit.where()} has no language switcher")
    _fail_unless(
        visit.switched_to == site_page.twin_path and visit.switched_lang == other,
        f"the language switcher on {visit.where()} landed on {visit.switched_to} "
        f'(lang="{visit.switched_lang}"), expected {site_page.twin_path} (lang="{other}")',
    )


def test_math_is_rendered(site, site_page):
    visit = site.on_desktop(site_page)
    math = visit.math
    _fail_unless(not math["errors"], f"{visit.where()}: KaTeX could not render {math['errors']}")
    _fail_unless(
        math["unrendered"] == 0,
        f"{visit.where()}: {math['unrendered']} of {math['arithmatex']} formulas not rendered",
    )
    _fail_unless(
        not math["leftovers"],
        f"{visit.where()} shows raw TeX to the reader:\n{_bullets(math['leftovers'])}",
    )


def _pasted(code: str) -> str:
    """Code as a reader pastes it: annotation markers gone, no trailing blanks."""
    code = ANNOTATION_MARKER.sub("", code)
    return "\n".join(line.rstrip() for line in code.splitlines()).strip("\n")


def source_code_shown(source) -> list[str]:
    """The code a page shows as source (not output), from its Markdown and its snippets."""
    shown = []
    for block in code_blocks(source):
        if block.info in ("output", "transcript"):
            continue
        if block.executed_at_build and "source=" not in block.info:
            continue  # only the result is shown
        targets = block.snippet_targets
        code = "\n".join(map(included, targets)) if targets else block.body
        if block.executed_at_build:
            code = "\n".join(line for line in code.splitlines() if not HIDDEN_LINE.search(line))
        shown.append(_pasted(code))
    return shown


def test_copy_buttons_copy_exactly_the_code(site, site_page):
    visit = site.on_desktop(site_page)
    copied = []
    for copy in visit.copies:
        where = f"{visit.where()}, the copy button of {copy['target']}"
        _fail_unless(copy["copied"] != copy["sentinel"], f"{where} copied nothing")
        _fail_unless(copy["shown"] is not None, f"{where}: the block does not exist")
        _fail_unless(
            _pasted(copy["copied"]) == _pasted(copy["shown"]),
            f"{where} copied\n{copy['copied']!r}\nbut the block shows\n{copy['shown']!r}",
        )
        _fail_unless(
            not ANNOTATION_MARKER.search(copy["copied"]),
            f"{where} copied an annotation marker:\n{copy['copied']}",
        )
        copied.append(_pasted(copy["copied"]))
    if site_page.is_notebook:
        return
    missing = [code for code in source_code_shown(site_page.source) if code not in copied]
    _fail_unless(
        not missing,
        f"{visit.where()}: no copy button copies exactly this code of the page "
        f"({len(copied)} copy buttons):\n" + "\n-----\n".join(missing),
    )


def test_notebook_shows_outputs_and_can_be_downloaded(site, notebook_page):
    visit = site.on_desktop(notebook_page)
    notebook = visit.notebook
    _fail_unless(
        notebook["visible_outputs"] > 0,
        f"{visit.where()} shows no cell output ({notebook['outputs']} output areas in the HTML)",
    )
    name = notebook_page.source.name
    own = [d for d in notebook["downloads"] if d["href"].endswith("/" + name)]
    _fail_unless(
        bool(own),
        f"{visit.where()} has no download link to {name} "
        f"(links to notebooks: {[d['href'] for d in notebook['downloads']]})",
    )
    for download in own:
        _fail_unless(download["visible"], f"{visit.where()}: the download link is hidden")
        _fail_unless(
            download.get("status") == 200 and bool(download.get("cells")),
            f"{visit.where()}: downloading {download['href']} gave {download}",
        )
