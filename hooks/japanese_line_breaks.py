"""Drop the line breaks inside Japanese sentences.

Markdown keeps a line break inside a paragraph as a newline, which browsers show as a
space. English needs that space; Japanese, written without spaces, does not: a paragraph
wrapped in the source would show stray gaps after 「。」 or between two words. This hook
removes a newline that stands between two Japanese characters, outside <pre> blocks.
"""

import re

JAPANESE = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60"
BREAK_BETWEEN_JAPANESE = re.compile(rf"(?<=[{JAPANESE}])\n[ \t]*(?=[{JAPANESE}])")
PREFORMATTED = re.compile(r"(<pre\b.*?</pre>)", re.DOTALL)


def join_japanese_lines(html: str) -> str:
    parts = PREFORMATTED.split(html)
    # split() with one capturing group puts the <pre> blocks at the odd positions.
    return "".join(
        part if n % 2 else BREAK_BETWEEN_JAPANESE.sub("", part) for n, part in enumerate(parts)
    )


def on_page_content(html, page, **kwargs):
    return join_japanese_lines(html)
