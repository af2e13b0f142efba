"""hooks/name_failing_page.py adds the page to markdown-exec's warning about a failing block.

The hook filters a logger that is private to markdown-exec. If an upgrade renames that logger or
rewords the warning, the filter would silently stop working; this test renders a failing block
through markdown-exec itself and fails then.
"""

import importlib.util
import logging
from types import SimpleNamespace

import markdown
from markdown_exec import formatter, validator

from tests.support.pages import ROOT

HOOK = ROOT / "hooks/name_failing_page.py"
spec = importlib.util.spec_from_file_location("name_failing_page", HOOK)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

FAILING_BLOCK = '```python exec="on"\nraise ValueError("broken on purpose")\n```\n'


def render(text: str) -> None:
    fence = {"name": "python", "class": "python", "validator": validator, "format": formatter}
    md = markdown.Markdown(
        extensions=["pymdownx.superfences"],
        extension_configs={"pymdownx.superfences": {"custom_fences": [fence]}},
    )
    md.convert(text)


def test_a_failing_block_is_reported_with_the_page_it_is_on(caplog):
    page = SimpleNamespace(file=SimpleNamespace(src_uri="losses/focal.md"))
    hook.on_page_markdown(FAILING_BLOCK, page=page)
    with caplog.at_level(logging.WARNING):
        render(FAILING_BLOCK)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("exited with errors on page docs/losses/focal.md" in w for w in warnings), warnings
    assert any("broken on purpose" in w for w in warnings)


def test_a_block_that_runs_is_not_reported(caplog):
    with caplog.at_level(logging.WARNING):
        render('```python exec="on"\nprint("fine")\n```\n')
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
