"""Writing your own loss: snippets/losses/writing_your_own.py and the claims of its page."""

import importlib
import inspect

import pytest
import torch
import torch.nn.functional as F
from losses.focal import focal_loss

from tests.support import loss_properties as props
from tests.support.copies import COPIES
from tests.support.pages import SNIPPETS
from tests.support.sections import run_sections

SNIPPET = SNIPPETS / "losses" / "writing_your_own.py"  # a script: run its sections


@pytest.fixture(scope="module")
def blog_focal_loss():
    return run_sections(SNIPPET, "broken")["blog_focal_loss"]


def test_gather_with_a_one_dimensional_index_fails(blog_focal_loss):
    logits, target = props.make_batch(4, 3)
    with pytest.raises(
        RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"
    ):
        blog_focal_loss(logits, target)


def test_unreduced_output_cannot_be_backpropagated(blog_focal_loss):
    logits, target = props.make_batch(4, 3)
    loss = blog_focal_loss(logits.requires_grad_(), target.view(-1, 1))
    assert loss.shape == (4, 1)
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        loss.backward()


def test_ignore_index_is_an_out_of_bounds_index_there(blog_focal_loss):
    logits, _ = props.make_batch(4, 3)
    with pytest.raises(
        RuntimeError, match="index -100 is out of bounds for dimension 1 with size 3"
    ):
        blog_focal_loss(logits, torch.tensor([[0], [2], [1], [-100]]))


def test_log_of_softmax_underflows_where_log_softmax_does_not(blog_focal_loss):
    confident = torch.tensor([[0.0, 120.0, 0.0]], requires_grad=True)
    broken = blog_focal_loss(confident, torch.tensor([[0]])).mean()
    broken.backward()
    assert torch.isinf(broken) and torch.isnan(confident.grad).all()
    confident.grad = None
    fixed = focal_loss(confident, torch.tensor([0]))
    fixed.backward()
    assert fixed.item() == 120.0
    torch.testing.assert_close(confident.grad, torch.tensor([[-1.0, 1.0, 0.0]]))


def test_scalar_alpha_is_the_same_factor_for_every_sample(blog_focal_loss):
    logits, target = props.make_batch(6, 3)
    ratio = blog_focal_loss(logits, target.view(-1, 1), alpha=0.25) / blog_focal_loss(
        logits, target.view(-1, 1), alpha=1.0
    )
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.25))


def test_gradcheck_passes_for_both_so_it_does_not_prove_a_loss_right(blog_focal_loss):
    logits = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[0], [3], [1], [2], [0]])
    assert torch.autograd.gradcheck(lambda x: blog_focal_loss(x, labels).mean(), (logits,))
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, labels.view(-1)), (logits,))


def test_extreme_logits_break_the_blog_version_only(blog_focal_loss):
    namespace = run_sections(SNIPPET, "broken", namespace={"focal_loss": focal_loss})
    namespace = run_sections(SNIPPET, "extreme", namespace=namespace)
    huge, labels = namespace["huge"], namespace["labels"]
    assert not torch.isfinite(blog_focal_loss(huge, labels.view(-1, 1)).mean())
    x = huge.detach().clone().requires_grad_()
    value = focal_loss(x, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_every_verification_section_prints_true(capsys):
    session = {"focal_loss": focal_loss}
    run_sections(SNIPPET, "broken", "gradcheck", "limits", "independent", namespace=session)
    printed = capsys.readouterr().out
    assert printed.count("True") == 5 and "False" not in printed


def test_the_gamma_zero_limit_holds_for_values_and_gradients_with_spatial_input():
    logits, target = props.make_batch(6, 4, 3, dtype=torch.float32)
    target[0, 0] = -100
    weight = torch.tensor([0.5, 1.0, 2.0, 1.0])
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    focal = focal_loss(a, target, gamma=0.0, weight=weight)
    ce = F.cross_entropy(b, target, weight=weight)
    torch.testing.assert_close(focal, ce)
    focal.backward()
    ce.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_sequence_logits_must_have_classes_on_dim_one():
    logits = torch.randn(2, 7, 11)  # (B, T, C): 11 classes on the last dim
    target = torch.randint(11, (2, 7))
    with pytest.raises(ValueError, match=r"^target must have shape \(2, 11\)"):
        focal_loss(logits, target)
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 11\], got \[2, 7\]"):
        F.cross_entropy(logits, target)
    permuted = focal_loss(logits.permute(0, 2, 1), target)
    torch.testing.assert_close(permuted, focal_loss(logits.reshape(14, 11), target.reshape(14)))


# ---- the conventions table, the limits, and the rule for checks that read values ---------


def test_which_losses_take_which_convention_arguments():
    import inspect

    from losses import (
        focal,
        large_margin_softmax,
        ldam,
        logit_adjustment,
        margin,
        neighbors,
        noisy_labels,
        poly,
    )

    def takes(loss):
        parameters = inspect.signature(loss).parameters
        return {a for a in ("weight", "ignore_index", "reduction") if a in parameters}

    every = {"weight", "ignore_index", "reduction"}
    assert takes(focal.focal_loss) == takes(focal.FocalLoss) == every
    assert takes(poly.poly1_cross_entropy) == every
    assert takes(logit_adjustment.logit_adjusted_cross_entropy) == {"ignore_index", "reduction"}
    assert takes(focal.sigmoid_focal_loss) == {"weight", "reduction"}
    assert "pos_weight" in inspect.signature(focal.sigmoid_focal_loss).parameters
    assert takes(ldam.LDAMLoss) == {"weight"}
    assert (ldam.LDAMLoss.ignore_index, ldam.LDAMLoss.reduction) == (-100, "mean")
    for loss in (
        noisy_labels.generalized_cross_entropy,
        noisy_labels.symmetric_cross_entropy,
        margin.crammer_singer_loss,
    ):
        assert takes(loss) == {"reduction"}, loss.__name__
    assert takes(large_margin_softmax.margin_logits) == set()
    assert takes(neighbors.soft_nearest_neighbor_loss) == set()


def test_limits_named_on_the_page():
    from losses.large_margin_softmax import margin_logits
    from losses.noisy_labels import generalized_cross_entropy, symmetric_cross_entropy

    logits, target = props.make_batch(7, 4, scale=3.0)
    ce = F.cross_entropy(logits, target)
    sce = symmetric_cross_entropy(logits, target, alpha=1.0, beta=0.0)
    torch.testing.assert_close(sce, ce)
    cosine = torch.tanh(logits)
    cosface = margin_logits(cosine, target, kind="cosface", scale=16.0, margin=0.0)
    torch.testing.assert_close(cosface, 16.0 * cosine)
    # GCE tends to CE as q -> 0 (q = 0 itself is rejected)
    gaps = [
        (generalized_cross_entropy(logits, target, q=q) - ce).abs().item()
        for q in (1e-1, 1e-3, 1e-5)
    ]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-4
    with pytest.raises(ValueError, match="q must be in"):
        generalized_cross_entropy(logits, target, q=0.0)


def test_value_checks_section_shows_the_graph_break_and_the_errors(capsys):
    import losses.focal as focal_module

    namespace = {"F": F, "focal_loss": focal_module.focal_loss, "torch": torch}
    run_sections(SNIPPET, "value_checks", namespace=namespace)
    out = capsys.readouterr().out
    assert "checked_with_any: graph breaks = 1" in out
    assert "focal_loss: graph breaks = 0" in out
    assert "fullgraph=True: Data-dependent branching" in out
    assert "F.cross_entropy, eager, CPU: IndexError: Target 5 is out of bounds." in out
    assert "focal_loss, eager, CPU: IndexError: target 5 is out of bounds" in out
    # Inductor's own bound check ran first on this build (the page says so).
    assert "focal_loss, compiled, CPU: RuntimeError: index out of bounds" in out


def test_what_the_page_quotes_from_the_docstring_of_assert_async():
    doc = " ".join(torch._assert_async.__doc__.split())
    assert "for CUDA tensors, we DO NOT synchronize" in doc
    assert "a later CUDA kernel launch" in doc
    assert "NOT intended to be used for regular error checking" in doc
    assert "will trash your CUDA context" in doc


def test_what_the_page_quotes_from_the_docstring_of_set_sync_debug_mode():
    doc = " ".join(torch.cuda.set_sync_debug_mode.__doc__.split())
    assert "This is an experimental feature" in doc
    assert "not all synchronizing operations will trigger warning or error" in doc
    assert '"warn"' in doc or "warn" in doc


def test_the_shared_helpers_table_is_the_copy_rule_of_the_chapter(capsys):
    # The page renders which files share which helper; tests/support/copies.py states the
    # copies (COPIES) and tests/losses/test_index.py checks that they are identical.
    run_sections(SNIPPET, "shared_helpers")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    rendered = {}
    for row in rows:
        helper, files = (cell.strip() for cell in row.strip("|").split("|"))
        rendered[helper.strip("`")] = {
            name.strip("` ").removesuffix(".py") for name in files.split(",")
        }
    assert rendered == {helper: set(files) for helper, files in COPIES.items()}


# The chapter's losses that take logits and class indices: (file, name, call with logits, target)
CLASS_INDEX_LOSSES = {
    "focal_loss": ("focal", lambda loss, x, y: loss(x, y)),
    "poly1_cross_entropy": ("poly", lambda loss, x, y: loss(x, y)),
    "logit_adjusted_cross_entropy": (
        "logit_adjustment",
        lambda loss, x, y: loss(x, y, torch.full((x.shape[1],), 1 / x.shape[1])),
    ),
    "LDAMLoss": ("ldam", lambda loss, x, y: loss([5, 4, 3, 2])(x, y)),
    "generalized_cross_entropy": ("noisy_labels", lambda loss, x, y: loss(x, y)),
    "symmetric_cross_entropy": ("noisy_labels", lambda loss, x, y: loss(x, y)),
    "crammer_singer_loss": ("margin", lambda loss, x, y: loss(x, y)),
}


@pytest.mark.parametrize("name", CLASS_INDEX_LOSSES)
def test_class_probability_targets_and_label_smoothing_are_not_taken(name):
    # The page: unlike F.cross_entropy, the chapter's losses that take class indices accept no
    # class-probability targets and have no label_smoothing.
    file, call = CLASS_INDEX_LOSSES[name]
    loss = getattr(importlib.import_module(f"losses.{file}"), name)
    logits = torch.randn(6, 4)
    probabilities = torch.softmax(torch.randn(6, 4), dim=1)
    assert torch.isfinite(F.cross_entropy(logits, probabilities))  # F.cross_entropy takes them
    with pytest.raises(ValueError, match="target"):
        call(loss, logits, probabilities)
    assert "label_smoothing" not in inspect.signature(loss).parameters
    assert "label_smoothing" in inspect.signature(F.cross_entropy).parameters


def test_scalar_alpha_with_sgd_momentum_is_a_smaller_learning_rate():
    # The page: without weight decay, SGD with or without momentum (Nesterov too) is linear in
    # the gradient, so alpha * loss at lr is the loss at alpha * lr.
    def train(alpha, lr, **kwargs):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 4)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, **kwargs)
        x, y = torch.randn(16, 3), torch.randint(4, (16,))
        for _ in range(5):
            optimizer.zero_grad()
            (alpha * focal_loss(model(x), y)).backward()
            optimizer.step()
        return model.weight.detach()

    for kwargs in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}):
        torch.testing.assert_close(train(0.25, 0.1, **kwargs), train(1.0, 0.025, **kwargs))
    # with weight decay the decay term is not scaled: not the same
    decayed = train(0.25, 0.1, momentum=0.9, weight_decay=0.1)
    assert not torch.allclose(decayed, train(1.0, 0.025, momentum=0.9, weight_decay=0.1))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"weight": [1.0, 1.0, 1.0]}, AttributeError), ({"gamma": "2"}, TypeError)],
)
def test_an_argument_of_the_wrong_python_type_fails_with_pythons_own_error(kwargs, error):
    # The conventions table: the named ValueError/IndexError covers wrong tensors, hyperparameter
    # values and reduction; a wrong Python type fails with Python's own error instead.
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(error):
        focal_loss(logits, target, **kwargs)
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(logits, target, gamma=-1.0)


def test_of_the_tensor_values_only_the_targets_are_checked():
    # The conventions table: a weight with a negative entry is not rejected; a bad target is.
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.isfinite(focal_loss(logits, target, weight=torch.tensor([2.0, -1.0, 1.0])))
    with pytest.raises(IndexError, match="target"):
        focal_loss(logits, torch.tensor([0, 1, 3, 0]))
