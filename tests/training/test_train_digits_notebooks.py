"""docs/training/train_digits.ipynb and its English twin: stored clean, same code, code lives once.

The build executes both notebooks (mkdocs-jupyter, allow_errors: false) and
tests/test_site_build.py checks their outputs are rendered; their claims about training are
asserted in test_train_digits.py (ce vs nll, raw logits into NLLLoss).
"""

import json

import pytest

from tests.support.pages import DOCS, english_twin, relative

JAPANESE = DOCS / "training" / "train_digits.ipynb"
NOTEBOOKS = [JAPANESE, english_twin(JAPANESE)]


def cells(notebook):
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def code(notebook):
    return ["".join(c["source"]) for c in cells(notebook) if c["cell_type"] == "code"]


def test_the_two_notebooks_have_identical_code_cells():
    assert code(JAPANESE) == code(english_twin(JAPANESE))
    # ... and the same structure: the prose cells sit between the same code cells.
    assert [c["cell_type"] for c in cells(JAPANESE)] == [
        c["cell_type"] for c in cells(english_twin(JAPANESE))
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=relative)
def test_stored_without_outputs_with_cell_ids_and_the_python3_kernel(notebook):
    data = json.loads(notebook.read_text(encoding="utf-8"))
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    assert (data["nbformat"], data["nbformat_minor"]) >= (4, 5)
    ids = [c.get("id") for c in data["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)
    for cell in data["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_the_notebook_imports_the_script_instead_of_copying_it():
    source = "\n".join(code(JAPANESE))
    # Executed with the notebook's folder as the working directory (mkdocs-jupyter, nbclient).
    assert 'Path("../../snippets/training")' in source
    assert (JAPANESE.parent / "../../snippets/training/train_digits.py").resolve().is_file()
    assert "import train_digits as td" in source
    assert "def train_one_epoch" not in source and "class MLP" not in source
    assert "%matplotlib inline" in source  # figures show even where MPLBACKEND=Agg is set
