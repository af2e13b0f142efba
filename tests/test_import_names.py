"""Every file of snippets/ is imported under one name: its path from the snippets root
(snippets/losses/focal.py is `losses.focal`, snippets/training/train_digits.py is
`training.train_digits`), in the pages, the snippets and the tests alike.

A second name (`focal`, through a folder put on sys.path) would load the file a second time in
the same process: two module objects, two copies of every class and constant, and isinstance
checks and monkeypatches that see only one of them. The build runs every page in one process,
so a page that imported `focal` and another that imported `losses.focal` would do exactly that.

The one exception is the training notebook (docs/training/*.ipynb): it runs in its own Jupyter
kernel, and its download ships train_digits.py next to the notebook, so there the script is
`train_digits` (hooks/notebook_download.py), and nowhere else in that process.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.imports import imported_names as names_in
from tests.support.markdown_blocks import code_blocks
from tests.support.pages import DOCS, ROOT, SNIPPETS, relative

TESTS = ROOT / "tests"
FOLDERS = sorted(p for p in SNIPPETS.rglob("*") if p.is_dir() and p.name != "__pycache__")


def python_sources() -> dict[str, str]:
    """Every Python file of snippets/ and tests/, and every Python block the pages run."""
    sources = {
        relative(path): path.read_text(encoding="utf-8")
        for folder in (SNIPPETS, TESTS)
        for path in sorted(folder.rglob("*.py"))
        if "node_modules" not in path.parts
    }
    for page in sorted(DOCS.rglob("*.md")):
        for block in code_blocks(page):
            if block.language == "python" and not block.only_includes_snippets:
                sources[f"{relative(page)}:{block.line}"] = block.body
    return sources


def imported_names(code: str) -> set[str]:
    try:
        return names_in(ast.parse(code))
    except SyntaxError:
        return set()


def snippet_file(name: str, base) -> str | None:
    path = base.joinpath(*name.split(".")).with_suffix(".py")
    return relative(path) if path.is_file() else None


def other_names(code: str) -> list[tuple[str, str]]:
    """(name, file) for each import of a snippets/ file under a name other than its path from
    the snippets root: the name it has when one of snippets/' folders is on sys.path."""
    found = []
    for name in sorted(imported_names(code)):
        if snippet_file(name, SNIPPETS):
            continue
        found += [(name, file) for folder in FOLDERS if (file := snippet_file(name, folder))]
    return found


def test_other_names_finds_a_folder_import():
    # The check itself: `focal` is snippets/losses/focal.py through snippets/losses on sys.path.
    assert other_names("import focal\nfrom losses import focal\n") == [
        ("focal", "snippets/losses/focal.py")
    ]
    assert other_names("from training.train_digits import fit\nimport torch\n") == []


SOURCES = python_sources()


@pytest.mark.parametrize("source", SOURCES)
def test_snippets_are_imported_by_their_path_from_the_snippets_root(source):
    wrong = other_names(SOURCES[source])
    assert not wrong, "\n".join(
        f"{source} imports {file} as `{name}`: import it as "
        f"`{file.removeprefix('snippets/').removesuffix('.py').replace('/', '.')}`"
        for name, file in wrong
    )


def test_importing_every_imported_snippet_loads_each_file_once():
    """Import, in one process, every snippet module that a page, a snippet or a test imports
    (what those modules import, they import too), then look for a file loaded twice."""
    names = sorted(
        {
            name
            for code in SOURCES.values()
            for name in imported_names(code)
            if snippet_file(name, SNIPPETS)
        }
    )
    program = textwrap.dedent(
        """
        import importlib, json, sys
        from pathlib import Path

        sys.path[:0] = ["snippets"]  # as pytest's pythonpath, and the pages' sys.path line
        for name in json.loads(sys.argv[1]):
            importlib.import_module(name)
        files = {}
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and Path(file).resolve().is_relative_to(Path("snippets").resolve()):
                files.setdefault(str(Path(file).resolve()), []).append(name)
        print("\\nFILES", json.dumps(files))  # after what the modules print
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": "", "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = json.loads(result.stdout.rpartition("\nFILES ")[2])
    assert len(files) >= len({snippet_file(n, SNIPPETS) for n in names})
    twice = {relative(SNIPPETS.parent / f): n for f, n in files.items() if len(n) > 1}
    assert not twice, f"loaded under two names: {twice}"
