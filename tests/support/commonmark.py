"""MkDocs Material Markdown rewritten, line for line, into the CommonMark a reader effectively sees
(so that a line number stays the page's own), for the tools that read CommonMark (textlint,
tests/prose/test_japanese_prose.py; the style checks, tests/prose/test_japanese_style.py):
- admonitions (``!!! note "title"``, ``??? example``) and content tabs (``=== "title"``) become a
  heading with their title, and their indented body is dedented (otherwise it would be an
  indented code block, which textlint skips, or glued to the title as one sentence);
- math (``$...$``, ``$$...$$``) becomes inline code or blank lines (TeX is not prose);
- attribute lists (``{#id}``, ``{ .class }``) and abbreviation definitions are blanked.
Code blocks and inline code are left alone.

FENCE and ADMONITION are also how the other Markdown readers of the tests find fences and
admonitions.
"""

import re

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
