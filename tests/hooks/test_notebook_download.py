"""hooks/notebook_download.py: the downloaded notebook carries the snippets/ modules it imports.

That the downloaded file really runs alone in an empty folder is checked on the built site in
tests/test_site_build.py.
"""

import copy
import importlib.util
import json

import pytest

from tests.support.pages import DEFAULT_LANGUAGE, DOCS, LANGUAGES, ROOT, SNIPPETS

spec = importlib.util.spec_from_file_location(
    "notebook_download", ROOT / "hooks/notebook_download.py"
)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

NOTEBOOK = DOCS / "training" / "train_digits.ipynb"
FOLDER = SNIPPETS / "training"  # the snippets/ folder that mirrors the notebook's


def load(path=NOTEBOOK):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook):
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def test_imports_are_read_from_the_code():
    source = "import os, numpy as np\nfrom torch import nn\nfrom . import sibling\nimport a.b"
    assert hook.imported_modules(source) == ["os", "numpy", "torch", "a"]


def test_the_notebook_ships_the_script_it_imports():
    assert hook.shipped_modules(load(), FOLDER) == [FOLDER / "train_digits.py"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_first_code_cell_writes_the_script_then_the_notebook_follows(language):
    notebook = load()
    original = copy.deepcopy(notebook)
    download = hook.self_contained(notebook, FOLDER, language)
    assert notebook == original  # the repository's notebook is not changed
    first, *rest = code_cells(download)
    script = (FOLDER / "train_digits.py").read_text(encoding="utf-8")
    assert first == f"%%writefile train_digits.py\n{script}"
    assert rest == code_cells(original)
    ids = [cell["id"] for cell in download["cells"]]
    assert len(set(ids)) == len(ids)
    note = next(c for c in download["cells"] if c["id"] == "download-note")
    assert "`train_digits.py`" in "".join(note["source"])
    japanese = any("\u3040" <= ch <= "\u30ff" for ch in "".join(note["source"]))
    assert japanese == (language == DEFAULT_LANGUAGE)  # the default language is Japanese


def test_a_notebook_that_imports_no_snippet_is_downloaded_as_it_is():
    notebook = load(DOCS / "contributing" / "notebook_check.ipynb")
    assert hook.self_contained(notebook, FOLDER, DEFAULT_LANGUAGE) is notebook
