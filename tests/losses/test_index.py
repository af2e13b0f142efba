"""The chapter's copy rule (docs/losses/index.md): each loss file needs only PyTorch, so the
helpers several losses use are copied into each file. The copies are stated once, in
tests/support/copies.py, and must stay identical; a helper that appears in two files without
being listed there fails too.
"""

import ast
import inspect
import itertools
import re

import pytest
import torch
from losses import focal, ldam, logit_adjustment, margin, noisy_labels, poly

from tests.support import loss_properties as props
from tests.support.copies import COPIES
from tests.support.pages import SNIPPETS

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
    assert FUNCTIONS["focal"]["_reduce"] == inspect.getsource(focal._reduce).rstrip("\n")


# Every loss of the chapter that takes (input, target) as F.cross_entropy does, called on 3 classes.
PRIOR = torch.tensor([0.5, 0.3, 0.2])
CLASS_COUNTS = [50, 30, 20]
TARGET_LOSSES = {
    "focal_loss": focal.focal_loss,
    "poly1_cross_entropy": poly.poly1_cross_entropy,
    "logit_adjusted_cross_entropy": lambda x, t, **kw: (
        logit_adjustment.logit_adjusted_cross_entropy(x, t, PRIOR, **kw)
    ),
    "LDAMLoss": lambda x, t, **kw: ldam.LDAMLoss(CLASS_COUNTS, **kw)(x, t),
    "crammer_singer_loss": margin.crammer_singer_loss,
    "generalized_cross_entropy": noisy_labels.generalized_cross_entropy,
    "symmetric_cross_entropy": noisy_labels.symmetric_cross_entropy,
}


NO_REDUCTION = {"LDAMLoss"}  # it takes no reduction: it is always the (weighted) mean


@pytest.mark.parametrize(
    ("loss", "case"),
    [
        (loss, case)
        for loss in TARGET_LOSSES
        for case in props.BAD_INPUT
        if not (loss in NO_REDUCTION and case == "unknown reduction")
    ],
)
def test_the_same_bad_input_gets_the_same_error_in_every_loss(loss, case):
    props.check_bad_input(TARGET_LOSSES[loss], case)


WEIGHTED_LOSSES = {
    "focal_loss": focal.focal_loss,
    "poly1_cross_entropy": poly.poly1_cross_entropy,
    "LDAMLoss": lambda x, t, weight: ldam.LDAMLoss(CLASS_COUNTS, weight=weight)(x, t),
}


@pytest.mark.parametrize("weight", [torch.ones(2), torch.ones(3, 1)], ids=["(2,)", "(3, 1)"])
@pytest.mark.parametrize("loss", WEIGHTED_LOSSES)
def test_a_class_weight_of_another_shape_gets_the_same_error_in_every_loss(loss, weight):
    logits, target = props.make_batch(4, 3, dtype=torch.float32)
    shape = re.escape(str(tuple(weight.shape)))
    message = rf"^weight must have one value per class, shape \(3,\), got {shape}$"
    with pytest.raises(ValueError, match=message):
        WEIGHTED_LOSSES[loss](logits, target, weight=weight)


# The losses with ignore_index and weight, on 4 classes (check_all_ignored_like_cross_entropy's).
IGNORING_LOSSES = {
    "focal_loss": focal.focal_loss,
    "poly1_cross_entropy": poly.poly1_cross_entropy,
    "logit_adjusted_cross_entropy": lambda x, t, **kw: (
        logit_adjustment.logit_adjusted_cross_entropy(
            x, t, torch.tensor([0.4, 0.3, 0.2, 0.1]), **kw
        )
    ),
}
WEIGHT4 = torch.tensor([0.2, 1.0, 3.0, 0.7])


@pytest.mark.parametrize(
    ("loss", "weighted"),
    [(loss, False) for loss in IGNORING_LOSSES]
    + [(loss, True) for loss in IGNORING_LOSSES if loss != "logit_adjusted_cross_entropy"],
)
def test_an_all_ignored_batch_behaves_like_cross_entropy(loss, weighted):
    kwargs = {"weight": WEIGHT4} if weighted else {}  # logit_adjusted_cross_entropy: no weight
    props.check_all_ignored_like_cross_entropy(IGNORING_LOSSES[loss], **kwargs)
