"""Class-balanced weights: snippets/losses/class_balanced.py and docs/losses/class_balanced.md."""

import pytest
import torch
import torch.nn.functional as F
from losses.class_balanced import class_balanced_weights
from losses.focal import focal_loss

from tests.support import loss_properties as props
from tests.support.pages import SNIPPETS
from tests.support.sections import run_sections

COUNTS = [5000, 500, 50, 5]


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999])
def test_matches_the_formula_and_sums_to_the_number_of_classes(beta):
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    raw = (1 - beta) / (1 - beta**counts)
    expected = raw * len(COUNTS) / raw.sum()
    weights = class_balanced_weights(COUNTS, beta=beta)
    torch.testing.assert_close(weights, expected.float())
    torch.testing.assert_close(weights.sum(), torch.tensor(float(len(COUNTS))))


def test_default_beta_and_dtype():
    torch.testing.assert_close(
        class_balanced_weights(COUNTS), class_balanced_weights(COUNTS, 0.999)
    )
    assert class_balanced_weights(COUNTS).dtype == torch.get_default_dtype()
    assert class_balanced_weights(torch.tensor(COUNTS)).dtype == torch.float32


def test_beta_zero_gives_uniform_weights_and_plain_cross_entropy():
    assert torch.equal(class_balanced_weights(COUNTS, beta=0.0), torch.ones(4))
    for beta in (1e-3, 1e-6):  # and beta -> 0 approaches them
        torch.testing.assert_close(
            class_balanced_weights(COUNTS, beta=beta), torch.ones(4), atol=2e-3, rtol=0
        )
    logits, target = props.make_batch(8, 4, dtype=torch.float32)
    uniform = class_balanced_weights(COUNTS, beta=0.0)
    torch.testing.assert_close(
        F.cross_entropy(logits, target, weight=uniform), F.cross_entropy(logits, target)
    )
    torch.testing.assert_close(
        focal_loss(logits, target, weight=uniform), focal_loss(logits, target)
    )


def test_beta_to_one_approaches_inverse_frequency():
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    inverse = (1 / counts) * len(COUNTS) / (1 / counts).sum()
    weights = class_balanced_weights(COUNTS, beta=1 - 1e-9)
    torch.testing.assert_close(weights.double(), inverse, rtol=1e-4, atol=0)


def test_rarer_classes_get_larger_weights():
    for beta in (0.9, 0.99, 0.999, 0.9999):
        weights = class_balanced_weights(COUNTS, beta=beta)
        assert torch.all(weights.diff() >= 0)
    # Small beta saturates: the two most frequent classes get the same weight at beta = 0.9.
    weights = class_balanced_weights(COUNTS, beta=0.9)
    torch.testing.assert_close(weights[0], weights[1])


def test_effective_number_saturates_at_one_over_one_minus_beta():
    beta = 0.999
    effective = lambda n: (1 - beta**n) / (1 - beta)  # noqa: E731
    assert effective(1) == pytest.approx(1.0)
    assert effective(100_000) == pytest.approx(1 / (1 - beta))
    assert effective(1000) == pytest.approx(632.30, abs=0.01)  # the page's table


def test_accurate_for_beta_close_to_one():
    # (1 - beta**n) in float64 loses digits when n * (1 - beta) is small; expm1 keeps them.
    weights = class_balanced_weights([10**7, 10**6, 1], beta=1 - 1e-12)
    counts = torch.tensor([10**7, 10**6, 1], dtype=torch.float64)
    inverse = (1 / counts) * 3 / (1 / counts).sum()
    torch.testing.assert_close(weights.double(), inverse, rtol=1e-4, atol=1e-9)


def test_accepts_lists_and_tensors_of_any_numeric_dtype():
    expected = class_balanced_weights(COUNTS)
    for counts in (
        torch.tensor(COUNTS),
        torch.tensor(COUNTS, dtype=torch.int32),
        torch.tensor(COUNTS, dtype=torch.float64),
        tuple(COUNTS),
    ):
        torch.testing.assert_close(class_balanced_weights(counts), expected)


def test_weighted_cross_entropy_properties():
    # As weight= of the focal loss, the focal loss keeps every property.
    weight = class_balanced_weights([50, 20, 5], beta=0.99).double()
    props.check_gradcheck(focal_loss, weight=weight)
    logits, target = props.make_batch(6, 3)
    target[1] = -100
    valid = target != -100
    props.check_reductions(
        focal_loss,
        logits,
        target,
        denominator=weight[target.clamp_min(0)][valid].sum(),
        weight=weight,
    )
    props.check_ignore_index(focal_loss, logits, target, weight=weight)
    props.check_all_ignored_like_cross_entropy(focal_loss, c=3, weight=weight.float())
    props.check_extreme_logits(focal_loss, c=3, weight=weight.float())
    props.check_low_precision(
        focal_loss, torch.bfloat16, weight=class_balanced_weights([9, 8, 7, 3, 1])
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_counts": [100, 0, 5]}, r"^class_counts must be positive"),
        ({"class_counts": [100, -3, 5]}, r"^class_counts must be positive"),
        ({"class_counts": [100, float("inf")]}, r"^class_counts must be positive"),
        ({"class_counts": [[100, 10], [5, 1]]}, r"^class_counts must be a 1-D"),
        ({"class_counts": []}, r"^class_counts must be a 1-D"),
        ({"class_counts": [100, 10], "beta": 1.0}, r"^beta must be in \[0, 1\)"),
        ({"class_counts": [100, 10], "beta": -0.1}, r"^beta must be in"),
        ({"class_counts": [100, 10], "beta": float("nan")}, r"^beta must be in"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        class_balanced_weights(**kwargs)


def test_inverse_frequency_gives_the_rarest_class_1000_times_the_weight():
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    inverse = 1 / counts
    assert inverse[3] / inverse[0] == pytest.approx(1000)
    weights = class_balanced_weights(COUNTS, beta=0.999)
    assert weights[0] < 1 < weights[3]  # the plot: far below and far above the CE curve


def test_expm1_keeps_digits_that_one_minus_beta_to_the_n_loses():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    beta = 1 - 1e-12
    for n in (10, 1000):
        exact = 1 - mpmath.mpf(beta) ** n
        naive = 1 - beta**n
        careful = -torch.expm1(n * torch.tensor(beta, dtype=torch.float64).log()).item()
        assert abs((careful - exact) / exact) < 1e-15  # about full float64 precision
        assert abs((naive - exact) / exact) > 1e-13  # several digits lost


def test_scaling_every_weight_leaves_the_weighted_mean_unchanged():
    logits, target = props.make_batch(8, 4, dtype=torch.float32)
    weight = class_balanced_weights(COUNTS, beta=0.99)
    torch.testing.assert_close(
        F.cross_entropy(logits, target, weight=7.5 * weight),
        F.cross_entropy(logits, target, weight=weight),
    )
    summed = F.cross_entropy(logits, target, weight=7.5 * weight, reduction="sum")
    assert not torch.allclose(
        summed, F.cross_entropy(logits, target, weight=weight, reduction="sum")
    )


def test_weighted_cross_entropy_scales_loss_and_gradient_by_the_class_weight():
    logits, target = props.make_batch(6, 4)
    weight = class_balanced_weights(COUNTS, beta=0.999).double()
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    weighted = F.cross_entropy(a, target, weight=weight, reduction="none")
    plain = F.cross_entropy(b, target, reduction="none")
    torch.testing.assert_close(weighted, weight[target] * plain)
    weighted.sum().backward()
    plain.sum().backward()
    torch.testing.assert_close(a.grad, weight[target].unsqueeze(1) * b.grad)


@pytest.mark.parametrize("beta", [0.9, 0.999, 0.9999, 1 - 1e-6, 1 - 1e-12])
def test_naive_one_minus_beta_to_the_n_gives_the_same_float32_weights(beta):
    # The page: in float64 the naive formula is off by very little, and after the cast to
    # float32 the weights are the same.
    counts = [5000, 500, 50, 5, 1, 10**7]
    n = torch.tensor(counts, dtype=torch.float64)
    naive = 1 / ((1 - beta**n) / (1 - beta))
    naive = (naive * len(counts) / naive.sum()).to(torch.get_default_dtype())
    assert torch.equal(naive, class_balanced_weights(counts, beta=beta))


def test_weighted_mean_does_not_reweight_a_batch_of_one_class(capsys):
    # The page: with "mean" a batch of one class is not down-weighted at all; "sum" / N gives
    # the paper's scaling (weight[y] times the plain mean). The block's printed numbers.
    namespace = run_sections(
        SNIPPETS / "losses" / "class_balanced.py",
        "class_balanced_weights",
        "example",
        "usage",
        "one_class_batch",
    )
    weighted, plain, paper = namespace["weighted_mean"], namespace["plain_mean"], namespace["paper"]
    torch.testing.assert_close(weighted, plain)
    torch.testing.assert_close(paper, namespace["weight"][0] * plain)
    assert namespace["weight"][0] < 0.1  # the frequent class: far from 1, so the two differ
    out = capsys.readouterr().out
    assert f"weighted 'mean' = {weighted.item():.4f}" in out
    assert f"plain mean      = {weighted.item():.4f}" in out
    assert f"'sum' / N       = {paper.item():.4f}" in out
