"""Parse the fenced code blocks, snippet includes and inline code of a Markdown page."""

import re
from dataclasses import dataclass
from pathlib import Path

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
EXEC_ATTRIBUTE = re.compile(r'\bexec="(?:on|1|true|yes)"')
SNIPPET_LINE = re.compile(r'^\s*-{2}8<-{2}\s+"(?P<target>[^"]+)"\s*$')


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str  # everything after the backticks, stripped
    body: str
    marker: str  # the HTML comment right before the fence, if any (pytest-codeblocks markers)

    @property
    def language(self) -> str:
        return self.info.split(maxsplit=1)[0].lstrip("{.").rstrip("}") if self.info else ""

    @property
    def executed_at_build(self) -> bool:
        return bool(EXEC_ATTRIBUTE.search(self.info))

    @property
    def snippet_targets(self) -> list[str]:
        return [m["target"] for m in map(SNIPPET_LINE.match, self.body.splitlines()) if m]

    @property
    def only_includes_snippets(self) -> bool:
        lines = [line for line in self.body.splitlines() if line.strip()]
        return bool(lines) and len(self.snippet_targets) == len(lines)


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of a page, including those indented inside tabs and admonitions."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE_OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        closing = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines))
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
        previous = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = previous if previous.startswith("<!--") else ""
        blocks.append(Block(path, i + 1, opening["info"].strip(), body, marker))
        i = end + 1
    return blocks


def prose(path: Path) -> str:
    """The page without its fenced blocks, for inline code and link checks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced = {
        n for b in code_blocks(path) for n in range(b.line - 1, b.line + b.body.count("\n") + 2)
    }
    return "\n".join(line for n, line in enumerate(lines) if n not in fenced)


def inline_code(path: Path) -> list[str]:
    return [m.group(2).strip() for m in INLINE_CODE.finditer(prose(path))]


def snippet_includes(path: Path) -> list[str]:
    """Every snippet include of a page in order, inside fences or not."""
    return [m["target"] for m in map(SNIPPET_LINE.match, path.read_text("utf-8").splitlines()) if m]
