"""Statements about devices this site never runs on carry the marker "from the PyTorch docs".

The site is built and tested on the CPU only. A paragraph, list item, table row or admonition
of any page (both languages, notebooks' Markdown cells included) that names a GPU, CUDA, MPS,
NCCL or another accelerator must therefore say that it was not executed here, with a link to
the PyTorch documentation it rests on. The marker, defined once on the contributor guide:

- English: the words ``from the PyTorch docs, not executed here`` (usually as
  ``(from [the PyTorch docs](https://docs.pytorch.org/...), not executed here)``), or an
  admonition titled ``From the PyTorch docs, not executed here``;
- Japanese: ``このサイトでは実行していません`` (usually as
  ``（[PyTorch のドキュメント](https://docs.pytorch.org/...)による記述で、このサイトでは実行していません）``),
  or an admonition titled ``PyTorch のドキュメントによる記述で、このサイトでは実行していません``;

and in both cases a link to docs.pytorch.org (or pytorch.org) in the same block. An
admonition whose title is the marker marks everything inside it. Code (fences, inline code)
and headings are not prose and are not scanned.
"""

import json
import re
from pathlib import Path

import pytest

from tests.support.commonmark import ADMONITION, FENCE
from tests.support.pages import DOCS, relative

DEVICE_WORDS = re.compile(
    r"(?<![\w-])(CUDA|GPUs?|MPS|NCCL|ROCm|XPU|TPUs?|cuDNN|cuBLAS|Tensor Cores?|Ampere|"
    r"device-side|cuda:\d+|H100|A100|V100|pre-Ampere)(?![\w-])",
    re.IGNORECASE,
)
MARKER = re.compile(
    r"from (\[)?the PyTorch docs(\]\([^)]*\))?, not executed here|このサイトでは実行していません"
    r"|from its README, not executed here|not executed here",
    re.IGNORECASE,
)
JAPANESE_MARKER = "このサイトでは実行していません"  # also when a line break falls inside it
# The link to the source a statement rests on: the PyTorch docs, or a third-party README or paper.
PYTORCH_LINK = re.compile(r"\]\(https?://[^)]*\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
NEW_ITEM = re.compile(r"^\s*([-*+]|\d+\.)\s|^\s*\|")


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def blocks(text: str):
    """(first line number, text, marked_by_admonition) of every prose block outside code."""
    lines = text.splitlines()
    out, current, start, in_fence, admonition = [], [], 0, False, None

    def flush():
        if current:
            marked = admonition is not None and admonition["marked"]
            out.append((start + 1, "\n".join(current), marked))
            current.clear()

    for number, line in enumerate(lines):
        if FENCE.match(line):
            in_fence = not in_fence
            flush()
            continue
        if in_fence:
            continue
        if admonition is not None and line.strip() and not line.startswith("    "):
            flush()
            admonition = None
        match = ADMONITION.match(line)
        if match and not match["indent"]:  # an admonition at the top level
            flush()
            title = match.group("title") or ""
            admonition = {"title": title, "marked": False, "lines": []}
            admonition["marked"] = bool(MARKER.search(title)) or JAPANESE_MARKER in title
            current.append(title)
            start = number
            continue
        if admonition is not None:
            if line.strip():
                if not current:
                    start = number
                current.append(line)
            continue  # an admonition is one block, blank lines included
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("<!--"):
            flush()
            continue
        if NEW_ITEM.match(line):
            flush()
        if not current:
            start = number
        current.append(line)
    flush()
    return out


def unmarked_device_statements(text: str):
    problems = []
    for line, block, marked_by_admonition in blocks(text):
        block = " ".join(block.split())  # a marker or a link may be wrapped over lines
        prose = INLINE_CODE.sub(" ", block)
        words = sorted({m.group(0) for m in DEVICE_WORDS.finditer(prose)})
        if not words:
            continue
        if marked_by_admonition and PYTORCH_LINK.search(block):
            continue
        has_marker = MARKER.search(block) or JAPANESE_MARKER in re.sub(r"\s", "", block)
        if has_marker and PYTORCH_LINK.search(block):
            continue
        problems.append(f"line {line}: {', '.join(words)}: {block[:160]}")
    return problems


PAGES = sorted([*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")])


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_device_statements_carry_the_marker(page):
    problems = unmarked_device_statements(markdown_of(page))
    assert not problems, (
        f"{relative(page)}: statements about devices this site does not run on, without the "
        "marker 'from the PyTorch docs, not executed here' / 'このサイトでは実行していません' "
        "and a link to docs.pytorch.org in the same block:\n  " + "\n  ".join(problems)
    )


DOCS_LINK = "[the PyTorch docs](https://docs.pytorch.org/docs/stable/notes/cuda.html)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("On CUDA the copy is asynchronous.", 1),
        ("On CUDA the copy is asynchronous (from the PyTorch docs, not executed here).", 1),
        (f"On CUDA the copy is asynchronous (from {DOCS_LINK}, not executed here).", 0),
        ("GPU での挙動です（[PyTorch のドキュメント](https://docs.pytorch.org/x)による記述で、"
         "このサイトでは実行していません）。", 0),
        ("`torch.cuda.is_available()` is False on this machine.", 0),  # code, not prose
        ("```python\nx.to('cuda')\n```", 0),
        ("## On a GPU {#gpu}", 0),
        ('!!! note "From the PyTorch docs, not executed here"\n    NCCL is used. ' + DOCS_LINK, 0),
        ('!!! warning "The CUDA path"\n    NCCL is used. ' + DOCS_LINK, 1),
        ("Text.\n\n- a CPU item\n- an MPS item\n\nEnd.", 1),
        ("| CPU | CUDA |\n| --- | --- |", 1),
    ],
)  # fmt: skip
def test_the_scanner_finds_what_it_should(text, expected):
    assert len(unmarked_device_statements(text)) == expected
