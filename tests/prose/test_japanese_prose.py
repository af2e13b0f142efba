"""The Japanese pages pass textlint with preset-ja-technical-writing (tests/js/.textlintrc.yml).

textlint reads CommonMark. Before it runs, each page is rewritten line for line (so reported
line numbers are the page's own) into the CommonMark a reader effectively sees:
- admonitions (``!!! note "title"``, ``??? example``) and content tabs (``=== "title"``) become a
  heading with their title, and their indented body is dedented (otherwise it would be an
  indented code block, which textlint skips, or glued to the title as one sentence);
- math (``$...$``, ``$$...$$``) becomes inline code or blank lines (TeX is not prose);
- attribute lists (``{#id}``, ``{ .class }``) and abbreviation definitions are blanked.
Code blocks and inline code are left alone: textlint does not check them.

Run by hand, with the file:line of every problem:
    .venv/bin/pytest tests/prose/test_japanese_prose.py
"""

import json
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.support.commonmark import commonmark
from tests.support.pages import DOCS, ROOT, japanese_pages, relative

JS = ROOT / "tests" / "js"
TEXTLINT = JS / "node_modules" / ".bin" / "textlint"
CONFIG = JS / ".textlintrc.yml"


@cache
def textlint_results(workdir: Path) -> dict[Path, list[dict]]:
    """Run textlint once over every Japanese page; map each page to its problems."""
    copies = {}
    for page in japanese_pages():
        copy = workdir / page.relative_to(DOCS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(commonmark(page.read_text("utf-8")), encoding="utf-8")
        copies[copy.resolve()] = page
    result = subprocess.run(
        [str(TEXTLINT), "--config", str(CONFIG), "--format", "json", *map(str, copies)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode not in (0, 1) or not result.stdout.startswith("["):
        pytest.fail(f"textlint did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    problems = {page: [] for page in copies.values()}
    for entry in json.loads(result.stdout):
        problems[copies[Path(entry["filePath"]).resolve()]].extend(entry["messages"])
    return problems


@pytest.fixture(scope="module")
def textlint(tmp_path_factory):
    if not TEXTLINT.exists():
        pytest.fail(f"{relative(TEXTLINT)} is missing: run `npm ci` in tests/js (.ci/run does)")
    return textlint_results(tmp_path_factory.mktemp("textlint"))


@pytest.mark.parametrize("page", japanese_pages(), ids=relative)
def test_japanese_page_passes_textlint(textlint, page):
    problems = textlint[page]
    if problems:
        report = "\n".join(
            f"{relative(page)}:{p['line']}:{p['column']}: {' '.join(p['message'].split())} "
            f"({p['ruleId']})"
            for p in problems
        )
        pytest.fail(f"textlint found {len(problems)} problems:\n{report}", pytrace=False)


def test_rewriting_keeps_lines_and_exposes_admonition_bodies():
    page = "\n".join(
        [
            "# 見出し {#top}",
            "",
            '!!! tip "題名です"',
            "    本文です。$p_y$ を使います。",
            "",
            "    ```python",
            "    x = 1",
            "    ```",
            "",
            "$$",
            r"\frac{1}{2}",
            "$$",
            "後の段落です。",
        ]
    )
    lines = commonmark(page).splitlines()
    assert len(lines) == len(page.splitlines())
    assert lines[0].rstrip() == "# 見出し"
    assert lines[2] == "#### 題名です"
    assert lines[3] == "本文です。`p_y` を使います。"
    assert lines[5:8] == ["```python", "x = 1", "```"]
    assert lines[9:12] == ["", "", ""]
    assert lines[12] == "後の段落です。"
