"""Every fenced code block is run by a test, executed at build, or declared not to be code."""

import re
from pathlib import Path

import pytest

from tests.support.markdown_blocks import Block, code_blocks
from tests.support.pages import markdown_sources, relative

RUN_BY_PYTEST_CODEBLOCKS = {"python", "sh", "bash"}  # pytest-codeblocks runs exactly these infos
NOT_CODE = {"output", "transcript"}  # printed output; a terminal session shown, never run
EXECUTED_LANGUAGES = {"python", "pycon", "sh", "bash", "console"}


def classify(block: Block) -> str:
    """Say how a block is executed, or raise ValueError saying why it escapes execution."""
    if block.info in RUN_BY_PYTEST_CODEBLOCKS:
        if "skip" in block.marker:
            raise ValueError(f"skipped by {block.marker!r}")
        return "pytest-codeblocks"
    if block.executed_at_build:
        if block.language not in EXECUTED_LANGUAGES:
            raise ValueError(f"markdown-exec does not run {block.language!r} blocks here")
        return "markdown-exec"
    if block.language == "python" and block.only_includes_snippets:
        return "snippet include (snippet files are run by test_snippets_standalone)"
    if block.info in NOT_CODE:
        return "not code"
    raise ValueError(
        f"```{block.info} is neither run by pytest-codeblocks, nor executed at build, "
        f"nor tagged as one of {sorted(NOT_CODE)}"
    )


BLOCKS = [block for path in markdown_sources() for block in code_blocks(path)]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{relative(b.path)}:{b.line}")
def test_every_block_is_accounted_for(block):
    try:
        classify(block)
    except ValueError as problem:
        pytest.fail(f"{relative(block.path)}:{block.line}: {problem}")


def executed_fences(text: str) -> list[int]:
    """Lines that open an executed block, by a plain scan of fences (CommonMark's rule: a fence
    closes with at least as many of the same character; what is inside is not a fence)."""
    fence = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
    found, open_fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = fence.match(line)
        if not match:
            continue
        if open_fence is None:
            open_fence = match["fence"]
            if re.match(r"python\b.*\bexec=\"on\"", match["info"]):
                found.append(number)
        elif match["fence"][0] == open_fence[0] and len(match["fence"]) >= len(open_fence):
            if not match["info"].strip():
                open_fence = None
    return found


def test_the_inventory_sees_every_executed_block():
    """Every fence that opens an executed block, found by a plain scan of the lines of each
    Markdown source, is a block of the inventory, at the same line."""
    expected = {
        (path, number)
        for path in markdown_sources()
        for number in executed_fences(path.read_text(encoding="utf-8"))
    }
    seen = {(block.path, block.line) for block in BLOCKS if block.executed_at_build}
    assert expected, "the scan found no executed block"
    assert seen == expected, sorted(expected ^ seen)


def test_a_titled_python_block_passes_only_when_it_only_includes_snippets():
    # contributing/index: "a `python` block with a title, unless it only includes snippet files
    # (which tests/test_snippets_standalone.py runs)", as the ddp_check.py block of the
    # distributed page does.
    def block(body):
        return Block(Path("page.md"), 1, 'python title="ddp_check.py"', body, "")

    with pytest.raises(ValueError, match="neither run by pytest-codeblocks"):
        classify(block("import torch\nprint(torch.ones(2))"))
    with pytest.raises(ValueError):  # typed code next to an include still escapes
        classify(block('--8<-- "snippets/distributed/ddp_check.py:batch"\nprint(1)'))
    assert classify(block('--8<-- "snippets/distributed/ddp_check.py:batch"')).startswith(
        "snippet include"
    )
    titled = [
        b
        for b in BLOCKS
        if b.language == "python"
        and "title=" in b.info
        and b.path.parts[-2:]
        in {("distributed", "global_loss.md"), ("distributed", "global_loss.en.md")}
    ]
    assert len(titled) == 2 and all(b.only_includes_snippets for b in titled)
