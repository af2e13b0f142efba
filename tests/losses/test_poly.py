"""Poly-1: snippets/losses/poly.py and the claims of docs/losses/poly.md."""

import pytest
import torch
import torch.nn.functional as F
from losses.poly import poly1_cross_entropy

from tests.support import loss_properties as props

EPSILONS = (-1.0, 0.0, 1.0, 2.0)
WEIGHT = torch.tensor([0.2, 1.0, 3.0, 0.7], dtype=torch.float64)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_gradcheck_float64(epsilon):
    props.check_gradcheck(poly1_cross_entropy, epsilon=epsilon)
    props.check_gradcheck(poly1_cross_entropy, epsilon=epsilon, weight=WEIGHT[:3])
    props.check_gradcheck(poly1_cross_entropy, epsilon=epsilon, spatial=(2,), reduction="none")


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_matches_an_independent_formula(epsilon):
    logits, target = props.make_batch(7, 4, scale=3.0)
    target[3] = -100
    valid = target != -100
    safe = target.clamp_min(0)
    p_y = torch.softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    w_y = WEIGHT[safe] * valid
    per_element = w_y * (-torch.log(p_y) + epsilon * (1 - p_y))
    actual = poly1_cross_entropy(logits, target, epsilon=epsilon, weight=WEIGHT, reduction="none")
    torch.testing.assert_close(actual, per_element)
    mean = poly1_cross_entropy(logits, target, epsilon=epsilon, weight=WEIGHT)
    torch.testing.assert_close(mean, per_element.sum() / w_y.sum())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_epsilon_zero_is_cross_entropy(reduction, spatial):
    logits, target = props.make_batch(5, 4, *spatial, dtype=torch.float32)
    target.view(-1)[::3] = 255
    kwargs = {"weight": WEIGHT.float(), "ignore_index": 255, "reduction": reduction}
    torch.testing.assert_close(
        poly1_cross_entropy(logits, target, epsilon=0.0, **kwargs),
        F.cross_entropy(logits, target, **kwargs),
    )


def test_default_epsilon_adds_mean_of_one_minus_p_y():
    logits, target = props.make_batch(6, 5, dtype=torch.float32)
    p_y = torch.softmax(logits, dim=1)[torch.arange(6), target]
    difference = poly1_cross_entropy(logits, target) - F.cross_entropy(logits, target)
    torch.testing.assert_close(difference, (1 - p_y).mean())


def test_weight_multiplies_both_terms_and_mean_is_weighted():
    logits, target = props.make_batch(6, 4)
    plain = poly1_cross_entropy(logits, target, epsilon=2.0, reduction="none")
    weighted = poly1_cross_entropy(logits, target, epsilon=2.0, weight=WEIGHT, reduction="none")
    torch.testing.assert_close(weighted, WEIGHT[target] * plain)
    mean = poly1_cross_entropy(logits, target, epsilon=2.0, weight=WEIGHT)
    torch.testing.assert_close(mean, weighted.sum() / WEIGHT[target].sum())


def test_loss_decreases_in_p_y_exactly_when_epsilon_is_at_least_minus_one():
    # dL/dp = -1/p - epsilon <= 0 on (0, 1] for every p iff epsilon >= -1.
    p_y = torch.linspace(0.5, 0.999999, 200, dtype=torch.float64)
    logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1)
    target = torch.zeros(len(p_y), dtype=torch.long)
    for epsilon in (-1.0, 0.0, 1.0, 2.0):
        loss = poly1_cross_entropy(logits, target, epsilon=epsilon, reduction="none")
        assert torch.all(loss.diff() < 0), epsilon
    # Below -1 the same formula would rise again as p_y approaches 1, so it is refused.
    below = -torch.log(p_y) - 1.5 * (1 - p_y)
    assert torch.any(below.diff() > 0)
    with pytest.raises(ValueError, match=r"^epsilon must be a finite number >= -1"):
        poly1_cross_entropy(logits, target, epsilon=-1.5)


def test_loss_at_p_y_one_is_zero_for_every_epsilon():
    logits = torch.tensor([[40.0, 0.0]], dtype=torch.float64)
    for epsilon in EPSILONS:
        assert poly1_cross_entropy(logits, torch.tensor([0]), epsilon=epsilon) < 1e-15


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_finite_for_float32_logits_of_magnitude_1e4(epsilon):
    props.check_extreme_logits(poly1_cross_entropy, magnitude=1e4, epsilon=epsilon)


@pytest.mark.parametrize("spatial", [(), (2, 3)])
def test_reductions_are_consistent(spatial):
    props.check_reductions_with_an_ignored_element(poly1_cross_entropy, *spatial, weight=WEIGHT)


@pytest.mark.parametrize("ignore_index", [-100, 255])
def test_ignore_index_masks_loss_and_gradient(ignore_index):
    logits, target = props.make_batch(8, 4)
    props.check_ignore_index(poly1_cross_entropy, logits, target, ignore_index=ignore_index)
    props.check_ignore_index(
        poly1_cross_entropy, logits, target, ignore_index=ignore_index, weight=WEIGHT, epsilon=2.0
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_low_precision_input(dtype, reduction):
    props.check_low_precision(poly1_cross_entropy, dtype, reduction=reduction)
    props.check_low_precision(poly1_cross_entropy, dtype, spatial=(2,), reduction=reduction)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_spatial_input(reduction):
    props.check_spatial(poly1_cross_entropy, reduction=reduction, weight=WEIGHT)


LOGITS = torch.randn(4, 3)
TARGET = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: poly1_cross_entropy(LOGITS, TARGET, epsilon=-2.0), ValueError, r"^epsilon"),
        (
            lambda: poly1_cross_entropy(LOGITS, TARGET, epsilon=float("inf")),
            ValueError,
            r"^epsilon",
        ),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("epsilon", (*EPSILONS, 5.0))
def test_gradient_with_respect_to_the_true_logit(epsilon):
    # The page: d L / d z_y = (p_y - 1) * (1 + epsilon * p_y), the CE gradient times a factor.
    p_y = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1).requires_grad_()
    target = torch.zeros(len(p_y), dtype=torch.long)
    poly1_cross_entropy(logits, target, epsilon=epsilon, reduction="sum").backward()
    torch.testing.assert_close(logits.grad[:, 0], (p_y - 1) * (1 + epsilon * p_y))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_low_precision_input_is_computed_in_float32(dtype, reduction):
    props.check_computes_in_float32(poly1_cross_entropy, dtype, reduction=reduction)


def test_derivative_in_p_y_is_negative_on_0_1_exactly_when_epsilon_above_minus_1():
    # The page: -1/p_y - epsilon < 0 on (0, 1) for epsilon >= -1, and at p_y = 1 only for > -1.
    def derivative(p_y, epsilon):
        p = torch.tensor(p_y, dtype=torch.float64, requires_grad=True)
        (-torch.log(p) + epsilon * (1 - p)).backward()
        return p.grad.item()

    inside = [0.01, 0.5, 0.999]
    assert all(derivative(p, -1.0) < 0 for p in inside)
    assert derivative(1.0, -1.0) == 0.0
    assert derivative(1.0, -0.999) < 0
    assert derivative(1.0, -1.001) > 0 and derivative(0.9999, -1.001) > 0
