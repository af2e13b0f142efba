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
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from site_pages import DOCS, ROOT, japanese_pages, relative

JS = ROOT / "tests" / "js"
TEXTLINT = JS / "node_modules" / ".bin" / "textlint"
CONFIG = JS / ".textlintrc.yml"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})")
ADMONITION = re.compile(
    r"^(?P<indent> *)(?:!!!|\?\?\?\+?)[ \t]+[\w-]+(?:[ \t]+[\w-]+)*"
    r'(?:[ \t]+"(?P<title>[^"]*)")?[ \t]*$'
)
TAB = re.compile(r'^(?P<indent> *)===\+?[ \t]+"(?P<title>[^"]*)"[ \t]*$')
ATTRIBUTE_LIST = re.compile(r"\{:?[ \t]*[#.][^}\n]*\}|\{:?[ \t]*[\w-]+=[^}\n]*\}")
ABBREVIATION = re.compile(r"^\*\[[^\]]+\]:")
DISPLAY_MATH = re.compile(r"^\s*\$\$")
INLINE_CODE_OR_MATH = re.compile(r"(?P<code>(`+).+?\2)|\$(?P<math>[^$\n]+?)\$")


def _blank(text: str) -> str:
    return " " * len(text)


def _inline(line: str) -> str:
    """Inline math becomes inline code of the same width; attribute lists become blanks."""

    def replace(match: re.Match) -> str:
        if match["code"]:
            return match["code"]
        return "`" + match["math"].replace("`", "'") + "`"

    line = INLINE_CODE_OR_MATH.sub(replace, line)
    return ATTRIBUTE_LIST.sub(lambda m: _blank(m.group(0)), line)


def commonmark(markdown: str) -> str:
    """Rewrite MkDocs Material syntax line for line; see the module docstring."""
    out = []
    containers: list[int] = []  # body indentation of the open admonitions and tabs
    fence = None  # the closing fence we are waiting for, with its indentation
    in_math = False
    for line in markdown.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        # Close the containers this line is no longer inside (blank lines do not close).
        if stripped and fence is None:
            while containers and indent < containers[-1]:
                containers.pop()
        dedent = 4 * len(containers)
        line = line[min(dedent, indent) :] if stripped else ""
        if fence is not None:
            if re.match(rf"^\s*{re.escape(fence)}[`~]*\s*$", line):
                fence = None
            out.append(line)
            continue
        if in_math:
            in_math = not DISPLAY_MATH.match(line)
            out.append("")
            continue
        opening = FENCE.match(line)
        if opening:
            fence = opening["fence"]
            out.append(line)
            continue
        if DISPLAY_MATH.match(line):
            in_math = line.strip() == "$$" or not line.rstrip().endswith("$$")
            out.append("")
            continue
        container = ADMONITION.match(line) or TAB.match(line)
        if container:
            containers.append(indent + 4)
            title = container["title"]
            out.append(f"{container['indent']}#### {title}" if title else "")
            continue
        if ABBREVIATION.match(line):
            out.append("")
            continue
        out.append(_inline(line))
    return "\n".join(out) + "\n"


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
