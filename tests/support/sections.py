"""The named sections of a snippet file, as pymdownx.snippets includes them, and as a page's
markdown-exec session runs them. The one parser of `# --8<-- [start:name]` markers in the tests.

The marker is spelled out below so that this file holds none itself.
"""

import re
import textwrap
from pathlib import Path

from tests.support.pages import ROOT

MARK = "-" * 2 + "8<" + "-" * 2
MARKER_LINE = re.compile(rf"^[ \t]*#\s*{MARK}\s*\[(?P<kind>start|end):(?P<name>[\w-]+)\]\s*$")
TARGET = re.compile(r"^(?P<file>[^:]+?)(?::(?P<section>[\w-]+))?$")


def section(text: str, name: str, where: str = "the file") -> str:
    """The lines between the start and end markers of section `name`, without the markers of
    sections nested in it, dedented."""
    lines = text.splitlines()
    marks = [(i, m["kind"]) for i, line in enumerate(lines) if (m := MARKER_LINE.match(line))]
    starts = [i for i, kind in marks if kind == "start" and f"[start:{name}]" in lines[i]]
    ends = [i for i, kind in marks if kind == "end" and f"[end:{name}]" in lines[i]]
    assert len(starts) == len(ends) == 1 and starts[0] < ends[0], f"no section {name!r} in {where}"
    kept = [line for line in lines[starts[0] + 1 : ends[0]] if not MARKER_LINE.match(line)]
    return textwrap.dedent("\n".join(kept))


def included(target: str) -> str:
    """The text pymdownx.snippets includes for `file` or `file:section` (relative to the root)."""
    match = TARGET.match(target)
    text = (ROOT / match["file"]).read_text(encoding="utf-8")
    if match["section"]:
        return section(text, match["section"], match["file"])
    kept = [line for line in text.splitlines() if not MARKER_LINE.match(line)]
    return textwrap.dedent("\n".join(kept))


def run_sections(path, *names: str, namespace: dict | None = None) -> dict:
    """Run the named sections of a snippet file in order, in one namespace, as a page's
    markdown-exec session runs them; return the namespace (what the sections defined).

    `namespace` holds what earlier blocks of the page defined (a fresh one by default); like a
    page's session, it is updated in place, so later calls see what earlier calls defined.
    """
    text = Path(path).read_text(encoding="utf-8")
    namespace = {} if namespace is None else namespace
    namespace.setdefault("__name__", "__main__")
    for name in names:
        code = section(text, name, str(path))
        exec(compile(code, f"{path}:{name}", "exec"), namespace)
    return namespace
