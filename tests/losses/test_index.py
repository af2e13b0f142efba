"""The chapter's copy rule (docs/losses/index.md): each loss file needs only PyTorch, so the
helpers several losses use are copied into each file. The copies are stated here, once, and
must stay identical; a helper that appears in two files without being listed here fails too.
"""

import ast
import inspect
import itertools

import pytest

from tests.support.pages import SNIPPETS

# helper: the files that carry a copy of it (the first is the one the others copy)
COPIES = {
    "_check_inputs": ("focal", "poly", "logit_adjustment", "ldam"),
    "_reduce": ("focal", "poly", "logit_adjustment"),
    "_true_class_log_prob": ("focal", "poly", "logit_adjustment"),
    "describe": ("margin", "noisy_labels", "large_margin_softmax", "neighbors"),
    "check_logits_and_target": ("margin", "noisy_labels"),
    "check_reduction": ("margin", "noisy_labels"),
    "reduce": ("margin", "noisy_labels"),
}
# Names that several files define on purpose with different code: each file's own entry point.
OWN_PER_FILE = {"main"}
LOSS_FILES = sorted(
    p for p in (SNIPPETS / "losses").glob("*.py") if p.stem not in {"benchmark", "index"}
)


def top_level_functions(path) -> dict[str, str]:
    """Each top-level function of a file and its source, read without importing the file."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    return {
        node.name: ast.get_source_segment(text, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


FUNCTIONS = {path.stem: top_level_functions(path) for path in LOSS_FILES}


@pytest.mark.parametrize("helper", COPIES)
def test_every_copy_of_a_helper_is_identical_to_the_first(helper):
    original, *copies = COPIES[helper]
    source = FUNCTIONS[original][helper]
    for name in copies:
        assert FUNCTIONS[name].get(helper) == source, (
            f"{helper} in {name}.py differs from {original}.py"
        )


def test_a_helper_defined_in_two_loss_files_is_a_listed_copy():
    shared = {}
    for (a, fa), (b, fb) in itertools.combinations(FUNCTIONS.items(), 2):
        for helper in (set(fa) & set(fb)) - OWN_PER_FILE:
            shared.setdefault(helper, set()).update({a, b})
    unlisted = {
        h: sorted(files) for h, files in shared.items() if set(files) - set(COPIES.get(h, ()))
    }
    assert not unlisted, f"copied helpers missing from COPIES: {unlisted}"


def test_the_listed_files_are_the_ones_that_hold_the_helper():
    for helper, files in COPIES.items():
        holders = {name for name, functions in FUNCTIONS.items() if helper in functions}
        assert holders == set(files), (helper, sorted(holders))


def test_ast_source_is_what_inspect_reads():
    """The check reads the files as text; it sees what an import would run."""
    from losses import focal

    assert FUNCTIONS["focal"]["_reduce"] == inspect.getsource(focal._reduce).rstrip("\n")
