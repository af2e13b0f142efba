"""Logit adjustment: snippets/losses/logit_adjustment.py and docs/losses/logit_adjustment.md."""

import pytest
import torch
import torch.nn.functional as F
from losses import logit_adjustment
from losses.logit_adjustment import logit_adjusted_cross_entropy, post_hoc_logit_adjustment

from tests.support import loss_properties as props
from tests.support.sections import run_sections

SNIPPET = logit_adjustment.__file__
PRIOR3 = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
PRIOR4 = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
PRIOR5 = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])


def la(prior, **fixed):
    return lambda x, t, **kwargs: logit_adjusted_cross_entropy(x, t, prior, **fixed, **kwargs)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_gradcheck_float64(tau):
    props.check_gradcheck(la(PRIOR3), tau=tau)
    props.check_gradcheck(la(PRIOR3), tau=tau, spatial=(2,), reduction="none")


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_is_cross_entropy_of_adjusted_logits(tau, reduction):
    logits, target = props.make_batch(7, 4, 2, dtype=torch.float32)
    target[0, 1] = -100
    prior = PRIOR4.float()
    expected = F.cross_entropy(logits + tau * prior.log().view(4, 1), target, reduction=reduction)
    actual = logit_adjusted_cross_entropy(logits, target, prior, tau=tau, reduction=reduction)
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_tau_zero_is_cross_entropy(reduction):
    logits, target = props.make_batch(6, 4, dtype=torch.float32)
    target[2] = 255
    kwargs = {"ignore_index": 255, "reduction": reduction}
    torch.testing.assert_close(
        logit_adjusted_cross_entropy(logits, target, PRIOR4, tau=0.0, **kwargs),
        F.cross_entropy(logits, target, **kwargs),
    )


def test_counts_and_frequencies_give_the_same_loss():
    logits, target = props.make_batch(6, 4)
    counts = PRIOR4 * 1234
    torch.testing.assert_close(
        logit_adjusted_cross_entropy(logits, target, counts),
        logit_adjusted_cross_entropy(logits, target, PRIOR4),
    )
    as_list = logit_adjusted_cross_entropy(logits, target, counts.tolist())
    torch.testing.assert_close(as_list, logit_adjusted_cross_entropy(logits, target, PRIOR4))


def test_no_gradient_flows_into_the_prior():
    logits, target = props.make_batch(5, 4)
    prior = PRIOR4.clone().requires_grad_()
    logits.requires_grad_()
    logit_adjusted_cross_entropy(logits, target, prior).backward()
    assert prior.grad is None and logits.grad is not None


def test_post_hoc_adjustment_subtracts_tau_log_prior():
    logits, _ = props.make_batch(6, 4)
    adjusted = post_hoc_logit_adjustment(logits, PRIOR4, tau=1.5)
    torch.testing.assert_close(adjusted, logits - 1.5 * PRIOR4.log())
    torch.testing.assert_close(post_hoc_logit_adjustment(logits, PRIOR4, tau=0.0), logits)
    spatial, _ = props.make_batch(2, 4, 3)
    torch.testing.assert_close(
        post_hoc_logit_adjustment(spatial, PRIOR4), spatial - PRIOR4.log().view(4, 1)
    )


def test_post_hoc_adjustment_favors_rare_classes():
    # Equal logits: plain argmax picks class 0; the adjusted argmax picks the rarest class.
    logits = torch.zeros(1, 4, dtype=torch.float64)
    assert post_hoc_logit_adjustment(logits, PRIOR4).argmax(dim=1).item() == 3


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_finite_for_float32_logits_of_magnitude_1e4(tau):
    props.check_extreme_logits(la(PRIOR5), magnitude=1e4, tau=tau)


def test_reductions_are_consistent():
    logits, target = props.make_batch(6, 4, 2)
    target[1, 0] = -100
    props.check_reductions(la(PRIOR4), logits, target, denominator=(target != -100).sum())


@pytest.mark.parametrize("ignore_index", [-100, 255])
def test_ignore_index_masks_loss_and_gradient(ignore_index):
    logits, target = props.make_batch(8, 4)
    props.check_ignore_index(la(PRIOR4), logits, target, ignore_index=ignore_index)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_low_precision_input(dtype, reduction):
    props.check_low_precision(la(PRIOR5), dtype, reduction=reduction)
    props.check_low_precision(la(PRIOR5), dtype, spatial=(2,), reduction=reduction, tau=0.0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_spatial_input(reduction):
    props.check_spatial(la(PRIOR4), reduction=reduction)


LOGITS = torch.randn(4, 3)
TARGET = torch.tensor([0, 1, 2, 1])
PRIOR = torch.tensor([0.2, 0.3, 0.5])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: logit_adjusted_cross_entropy(LOGITS, TARGET.float(), PRIOR),
            ValueError,
            "^target",
        ),
        (
            lambda: logit_adjusted_cross_entropy(LOGITS, TARGET, torch.tensor([0.5, 0.5, 0.0])),
            ValueError,
            r"^class_prior must hold positive finite values",
        ),
        (
            lambda: logit_adjusted_cross_entropy(LOGITS, TARGET, torch.tensor([0.5, 0.6, -0.1])),
            ValueError,
            r"^class_prior must hold positive",
        ),
        (
            lambda: logit_adjusted_cross_entropy(
                LOGITS, TARGET, torch.tensor([0.5, float("nan"), 0.1])
            ),
            ValueError,
            r"^class_prior must hold positive",
        ),
        (
            lambda: logit_adjusted_cross_entropy(LOGITS, TARGET, torch.tensor([0.5, 0.5])),
            ValueError,
            r"^class_prior must have one value per class",
        ),
        (lambda: logit_adjusted_cross_entropy(LOGITS, TARGET, PRIOR, tau=-1.0), ValueError, "^tau"),
        (lambda: post_hoc_logit_adjustment(LOGITS, PRIOR, tau=-0.5), ValueError, "^tau"),
        (lambda: post_hoc_logit_adjustment(LOGITS, PRIOR[:2]), ValueError, "^class_prior"),
        (lambda: post_hoc_logit_adjustment(TARGET, PRIOR), ValueError, "^logits"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.slow
def test_toy_experiment_adjustment_improves_balanced_accuracy():
    # The page: on the long-tailed toy, both forms of logit adjustment raise balanced accuracy
    # well above plain cross-entropy, and the two forms end close to each other.
    namespace = run_sections(
        SNIPPET, "logit_adjusted_cross_entropy", "helpers", "example", "toy_data", "toy_results"
    )
    results = namespace["results"]
    plain = results["cross_entropy"]
    assert results["cross_entropy + post-hoc"] > plain + 0.1
    assert results["logit_adjusted_cross_entropy"] > plain + 0.1
    gap = results["cross_entropy + post-hoc"] - results["logit_adjusted_cross_entropy"]
    assert abs(gap) < 0.03


@pytest.mark.slow
def test_toy_tradeoffs_imbalanced_test_set_and_adjusting_twice():
    # The page: on a test set as imbalanced as training, adjustment lowers plain accuracy;
    # adjusting a model trained with the adjusted loss again lowers balanced accuracy.
    namespace = run_sections(
        SNIPPET,
        *("logit_adjusted_cross_entropy", "helpers", "example", "toy_data", "toy_results"),
        "toy_tradeoffs",
    )
    accuracy = namespace["same_imbalance"]
    assert accuracy["cross_entropy"] > accuracy["cross_entropy + post-hoc"] + 0.1
    assert accuracy["cross_entropy"] > accuracy["logit_adjusted_cross_entropy"] + 0.1
    assert namespace["twice"] < namespace["results"]["logit_adjusted_cross_entropy"] - 0.05


def test_uniform_prior_is_cross_entropy():
    logits, target = props.make_batch(6, 4)
    uniform = torch.full((4,), 0.25, dtype=torch.float64)
    torch.testing.assert_close(
        logit_adjusted_cross_entropy(logits, target, uniform), F.cross_entropy(logits, target)
    )


def test_post_hoc_prediction_is_the_same_for_counts_and_frequencies():
    logits, _ = props.make_batch(50, 4, scale=2.0)
    by_counts = post_hoc_logit_adjustment(logits, PRIOR4 * 1000).argmax(dim=1)
    assert torch.equal(by_counts, post_hoc_logit_adjustment(logits, PRIOR4).argmax(dim=1))


def test_rare_true_class_keeps_a_larger_gradient():
    # Two classes, the same model probability p_y = 0.9 for the true class.
    logits = torch.tensor([[torch.logit(torch.tensor(0.9)).item(), 0.0]], dtype=torch.float64)
    target = torch.tensor([0])

    def gradient(prior):
        x = logits.clone().requires_grad_()
        if prior is None:
            F.cross_entropy(x, target).backward()
        else:
            logit_adjusted_cross_entropy(x, target, torch.tensor(prior)).backward()
        return x.grad[0, 0].abs().item()

    assert gradient([0.01, 0.99]) > gradient([0.1, 0.9]) > gradient(None) > gradient([0.9, 0.1])
    assert gradient([0.01, 0.99]) > 0.9  # still pushed at p_y = 0.9


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_low_precision_input_is_computed_in_float32(dtype, reduction):
    props.check_computes_in_float32(la(PRIOR5), dtype, reduction=reduction)


def test_post_hoc_adjustment_targets_a_uniform_test_prior_or_a_given_one():
    # The page: subtracting log(pi) gives the Bayes prediction for a uniform test prior; for a
    # known test prior pi_test, subtract log(pi / pi_test) instead.
    generator = torch.Generator().manual_seed(0)
    log_likelihood = torch.randn(2000, 4, generator=generator, dtype=torch.float64)
    train_prior = PRIOR4 / PRIOR4.sum()
    test_prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    # Logits of a model that learned the training posterior exactly: log p(x|y) + log pi.
    logits = (log_likelihood + train_prior.log()).log_softmax(dim=1)
    uniform = post_hoc_logit_adjustment(logits, train_prior).argmax(dim=1)
    assert torch.equal(uniform, log_likelihood.argmax(dim=1))
    shifted = post_hoc_logit_adjustment(logits, train_prior / test_prior).argmax(dim=1)
    assert torch.equal(shifted, (log_likelihood + test_prior.log()).argmax(dim=1))
    assert not torch.equal(shifted, uniform)  # a non-uniform test prior changes predictions
