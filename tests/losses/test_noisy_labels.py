"""GCE and SCE: snippets/losses/noisy_labels.py and the claims of docs/losses/noisy_labels.md."""

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from losses.noisy_labels import generalized_cross_entropy, symmetric_cross_entropy

from tests.support import loss_properties as props
from tests.support.sections import run_sections

SNIPPET = Path(__file__).parents[2] / "snippets" / "losses" / "noisy_labels.py"
LOSSES = {
    "gce": (generalized_cross_entropy, {"q": 0.7}),
    "gce_q1": (generalized_cross_entropy, {"q": 1.0}),
    "gce_small_q": (generalized_cross_entropy, {"q": 0.05}),
    "sce": (symmetric_cross_entropy, {}),
    "sce_cifar100": (symmetric_cross_entropy, {"alpha": 6.0, "beta": 0.1, "log_zero": -9.0}),
}
CASES = list(LOSSES.values())
IDS = list(LOSSES)


def p_true(logits, target):
    """p_y by an independent route: softmax in float64 and a one-hot selection."""
    probs = torch.softmax(logits.double(), dim=1)
    one_hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).double()
    return (probs * one_hot).sum(dim=1)


@pytest.mark.parametrize(("loss", "kwargs"), CASES, ids=IDS)
def test_gradcheck_float64(loss, kwargs):
    props.check_gradcheck(loss, **kwargs)
    props.check_gradcheck(loss, spatial=(2, 3), reduction="none", **kwargs)


@pytest.mark.parametrize("spatial", [(), (3,), (2, 2)])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.7, 1.0])
def test_gce_matches_its_formula(q, spatial):
    logits, target = props.make_batch(6, 5, *spatial, scale=2.0)
    expected = (1 - p_true(logits, target) ** q) / q
    actual = generalized_cross_entropy(logits, target, q=q, reduction="none")
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("spatial", [(), (2, 2)])
@pytest.mark.parametrize(("alpha", "beta", "log_zero"), [(0.1, 1.0, -4.0), (6.0, 0.1, -2.5)])
def test_sce_matches_its_formula(alpha, beta, log_zero, spatial):
    logits, target = props.make_batch(6, 5, *spatial, scale=2.0)
    p_y = p_true(logits, target)
    probs = torch.softmax(logits.double(), dim=1)
    one_hot = F.one_hot(target, 5).movedim(-1, 1).double()
    log_q = torch.where(one_hot == 1, 0.0, log_zero)  # log of the one-hot target, log 0 := A
    rce = -(probs * log_q).sum(dim=1)  # -sum_k p_k log q_k
    torch.testing.assert_close(rce, -log_zero * (1 - p_y))
    expected = alpha * -p_y.log() + beta * rce
    actual = symmetric_cross_entropy(
        logits, target, alpha=alpha, beta=beta, log_zero=log_zero, reduction="none"
    )
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize(("loss", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_reductions_agree(loss, kwargs, spatial):
    logits, target = props.make_batch(5, 4, *spatial, scale=2.0)
    props.check_reductions(loss, logits, target, **kwargs)


@pytest.mark.parametrize(("loss", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_spatial_input_equals_flattened(loss, kwargs, reduction):
    props.check_spatial(loss, reduction=reduction, **kwargs)


@pytest.mark.parametrize(("loss", "kwargs"), CASES, ids=IDS)
def test_extreme_float32_logits_give_finite_loss_and_gradient(loss, kwargs):
    props.check_extreme_logits(loss, **kwargs)


@pytest.mark.parametrize(("loss", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(loss, kwargs, dtype):
    props.check_low_precision(loss, dtype, **kwargs)
    props.check_low_precision(loss, dtype, spatial=(2,), reduction="none", **kwargs)


# --- limits and bounds the page states -------------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gce_tends_to_cross_entropy_as_q_goes_to_zero(reduction):
    logits, target = props.make_batch(8, 6, scale=3.0)
    ce = F.cross_entropy(logits, target, reduction=reduction)
    gaps = [
        (generalized_cross_entropy(logits, target, q=q, reduction=reduction) - ce).abs().max()
        for q in (0.5, 0.1, 1e-2, 1e-4, 1e-8)
    ]
    assert all(a > b for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 1e-6
    # (1 - p**q) / q = -L - q L**2 / 2 - q**2 L**3 / 6 - ..., with L = log p
    L = p_true(logits, target).log()
    q = 1e-3
    gce = generalized_cross_entropy(logits, target, q=q, reduction="none")
    torch.testing.assert_close(gce, -L - q * L**2 / 2 - q**2 * L**3 / 6, rtol=0, atol=1e-6)


def test_gce_q1_is_one_minus_p_y_and_half_the_mae():
    logits, target = props.make_batch(8, 6, scale=3.0)
    gce = generalized_cross_entropy(logits, target, q=1.0, reduction="none")
    p_y = p_true(logits, target)
    torch.testing.assert_close(gce, 1 - p_y)
    mae = (torch.softmax(logits, 1) - F.one_hot(target, 6)).abs().sum(dim=1)
    torch.testing.assert_close(gce, mae / 2)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sce_alpha_1_beta_0_is_cross_entropy(reduction):
    for spatial in ((), (3, 2)):
        logits, target = props.make_batch(6, 5, *spatial, scale=3.0)
        sce = symmetric_cross_entropy(logits, target, alpha=1.0, beta=0.0, reduction=reduction)
        torch.testing.assert_close(sce, F.cross_entropy(logits, target, reduction=reduction))


def test_rce_is_minus_log_zero_times_one_minus_p_y():
    logits, target = props.make_batch(8, 6, scale=3.0)
    for log_zero in (-4.0, -1.0, math.log(1e-4)):
        rce = symmetric_cross_entropy(
            logits, target, alpha=0.0, beta=1.0, log_zero=log_zero, reduction="none"
        )
        torch.testing.assert_close(rce, -log_zero * (1 - p_true(logits, target)))


def test_log_zero_and_beta_only_act_through_their_product():
    logits, target = props.make_batch(8, 6, scale=3.0)
    a = symmetric_cross_entropy(logits, target, alpha=0.3, beta=2.0, log_zero=-4.0)
    b = symmetric_cross_entropy(logits, target, alpha=0.3, beta=1.0, log_zero=-8.0)
    torch.testing.assert_close(a, b)


def test_bounds_gce_by_1_over_q_and_rce_by_minus_beta_log_zero():
    wrong = torch.tensor([[0.0, 30.0, 0.0], [0.0, 300.0, 0.0], [0.0, 1e4, 0.0]])
    target = torch.zeros(3, dtype=torch.long)
    for q in (0.3, 0.7, 1.0):
        gce = generalized_cross_entropy(wrong, target, q=q, reduction="none")
        assert torch.all(gce <= 1 / q) and gce[-1] == torch.tensor(1 / q)
    rce = symmetric_cross_entropy(wrong, target, alpha=0.0, beta=1.5, reduction="none")
    torch.testing.assert_close(rce, torch.full((3,), 1.5 * 4.0))
    # The alpha * CE part is not bounded: SCE grows with the logit gap.
    sce = symmetric_cross_entropy(wrong, target, reduction="none")
    torch.testing.assert_close(sce, 0.1 * F.cross_entropy(wrong, target, reduction="none") + 4.0)


def test_gradient_with_respect_to_the_true_logit():
    """dGCE/dz_y = -p_y**q (1 - p_y): CE's -(1 - p_y) scaled by p_y**q.
    dRCE/dz_y = log_zero * p_y (1 - p_y)."""
    logits, target = props.make_batch(6, 5, scale=2.0)
    logits.requires_grad_(True)
    p_y = p_true(logits.detach(), target)
    onehot = F.one_hot(target, 5).bool()
    (g,) = torch.autograd.grad(generalized_cross_entropy(logits, target, reduction="sum"), logits)
    torch.testing.assert_close(g[onehot], -(p_y**0.7) * (1 - p_y))
    rce = symmetric_cross_entropy(logits, target, alpha=0.0, beta=1.0, reduction="sum")
    (g,) = torch.autograd.grad(rce, logits)
    torch.testing.assert_close(g[onehot], -4.0 * p_y * (1 - p_y))


def test_gradient_at_the_start_of_training_is_a_fraction_of_cross_entropys():
    """At p_y = 1/C (C = 10): GCE q=0.7 starts at about a fifth of CE's gradient, MAE at a tenth."""
    x = torch.zeros(1, 10, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0])
    (ce,) = torch.autograd.grad(F.cross_entropy(x, y), x)
    (gce,) = torch.autograd.grad(generalized_cross_entropy(x, y), x)
    (mae,) = torch.autograd.grad(generalized_cross_entropy(x, y, q=1.0), x)
    assert abs(gce[0, 0] / ce[0, 0] - 1 / 5) < 0.01
    torch.testing.assert_close(mae[0, 0] / ce[0, 0], torch.tensor(0.1, dtype=torch.float64))


BAD_INPUTS = [
    ("target", ValueError, lambda f, x, y: f(x, y.float())),
    ("target", IndexError, lambda f, x, y: f(x, torch.tensor([0, 1, 4, 2, 1]))),
    ("target", IndexError, lambda f, x, y: f(x, torch.tensor([0, -2, 1, 2, 1]))),
    ("target", ValueError, lambda f, x, y: f(x, y[:3])),
    (
        "target",
        ValueError,
        lambda f, x, y: f(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long)),
    ),
    ("input", ValueError, lambda f, x, y: f(x[0], y[0])),
    ("reduction", ValueError, lambda f, x, y: f(x, y, reduction="elementwise_mean")),
]


@pytest.mark.parametrize("loss", [generalized_cross_entropy, symmetric_cross_entropy])
@pytest.mark.parametrize(("argument", "error", "call"), BAD_INPUTS)
def test_bad_input_raises_and_names_the_argument(loss, argument, error, call):
    logits, target = props.make_batch(5, 4)
    with pytest.raises(error, match=argument):
        call(loss, logits, target)


@pytest.mark.parametrize("q", [0.0, -0.5, 1.5, float("nan")])
def test_q_outside_0_1_raises(q):
    logits, target = props.make_batch(5, 4)
    with pytest.raises(ValueError, match="q must be in"):
        generalized_cross_entropy(logits, target, q=q)


@pytest.mark.parametrize(
    ("argument", "kwargs"),
    [
        ("alpha", {"alpha": -0.1}),
        ("beta", {"beta": -1.0}),
        ("beta", {"beta": float("nan")}),
        ("log_zero", {"log_zero": 0.0}),
        ("log_zero", {"log_zero": 4.0}),
    ],
)
def test_bad_sce_settings_raise(argument, kwargs):
    logits, target = props.make_batch(5, 4)
    with pytest.raises(ValueError, match=argument):
        symmetric_cross_entropy(logits, target, **kwargs)


# --- the page's executed sections -----------------------------------------------------------


def test_page_authors_code_section():
    page = run_sections(SNIPPET, "checks", "true_class_log_prob", "gce", "sce", "limits")
    page = run_sections(SNIPPET, "authors_code", namespace=page)
    torch.testing.assert_close(page["ours"], page["reference"])
    # The page: the authors' CE term clips p to [1e-7, 1], so it is capped at -log(1e-7) (about
    # 16.1) and passes no gradient once p_y < 1e-7, where the unclipped CE gives 30 and 300.
    cap = -math.log(1e-7)
    assert round(cap, 1) == 16.1
    torch.testing.assert_close(page["clipped_ce"].detach(), torch.full((2,), cap))
    assert torch.all(page["clipped_grad"] == 0)
    assert torch.all(
        F.cross_entropy(page["far"], torch.zeros(2, dtype=torch.long), reduction="none") > cap
    )


def test_page_bounded_section_gradients():
    # The page: the CE loss grows without limit, but its gradient on z_y stays at its maximum
    # magnitude, 1, for both samples; GCE's goes to 0; SCE's is alpha (0.1) times CE's.
    page = run_sections(SNIPPET, "checks", "true_class_log_prob", "gce", "sce", "limits")
    page = run_sections(SNIPPET, "bounded", namespace=page)
    g = page["gradients"]
    torch.testing.assert_close(g["cross_entropy"], torch.full((2,), -1.0))
    assert torch.all(g["GCE q=0.7"].abs() < 1e-6)
    torch.testing.assert_close(g["SCE"], 0.1 * g["cross_entropy"])
    ce = F.cross_entropy(page["wrong"], page["target"], reduction="none")
    assert ce[1] > 9 * ce[0]  # the loss itself keeps growing with the gap


@pytest.mark.slow
def test_page_experiment_claims():
    """What the page says about its run: CE ends up fitting most flipped labels and loses test
    accuracy; GCE and MAE do not; MAE learns slowest; SCE's alpha * CE term fits part of them."""
    page = run_sections(SNIPPET, "checks", "true_class_log_prob", "gce", "sce", "limits")
    page = run_sections(SNIPPET, "experiment", namespace=page)
    h = page["histories"]
    last = {name: history[-1] for name, history in h.items()}
    best = {name: max(test for _, test, _ in history) for name, history in h.items()}
    at_100 = {name: next(t for s, t, _ in history if s == 100) for name, history in h.items()}
    ce, gce, mae, sce = "CE", "GCE q=0.7", "GCE q=1 (MAE/2)", "SCE"
    # Each label flips with probability 0.4; the fraction actually flipped is printed.
    assert abs(page["flipped"].float().mean().item() - 0.4) < 0.03
    assert [step for step, _, _ in h[ce]] == list(range(20, 601, 20))  # evaluated every 20 steps
    assert last[ce][2] > 0.8  # CE memorizes most flipped labels
    assert last[gce][2] < 0.25 and last[mae][2] < 0.25
    assert 0.25 < last[sce][2] < last[ce][2]
    assert best[ce] - last[ce][1] > 0.2  # CE's test accuracy falls far from its best
    assert last[gce][1] > last[ce][1] + 0.15 and last[mae][1] > last[ce][1] + 0.15
    assert at_100[mae] < min(at_100[ce], at_100[gce], at_100[sce])  # MAE learns slowest
    assert at_100[sce] > at_100[ce]  # SCE starts well
    assert best[mae] < min(best[ce], best[gce], best[sce])  # and never catches up here


def test_gce_converges_to_cross_entropy_without_cancellation():
    # The page: with expm1, GCE tends to CE as q -> 0 without losing digits; the gap that
    # remains is the mathematical one, about q (log p_y)**2 / 2. A naive 1 - exp(q log p_y)
    # loses digits at small q.
    logits, target = props.make_batch(8, 6, scale=3.0)
    logits = logits.double()
    log_p = p_true(logits, target).log()
    ce = -log_p
    for q in (1e-8, 1e-12):
        gce = generalized_cross_entropy(logits, target, q=q, reduction="none")
        torch.testing.assert_close(gce, ce - q * log_p**2 / 2, rtol=1e-13, atol=0)
        assert (gce - ce).abs().max() > 0  # not equal to CE: the O(q) term remains
    naive = (1 - torch.exp(1e-12 * log_p)) / 1e-12
    assert (naive - ce).abs().max() > 1e-6  # digits lost


def test_rce_accuracy_is_that_of_log_softmax_in_float32():
    # The page: RCE avoids the cancellation of 1 - exp(...), but in float32 log p_y from
    # log_softmax has a large relative error when p_y is very close to 1, and rounds to 0
    # (so RCE is 0) for a larger logit gap.
    target = torch.tensor([0])
    for gap, min_error in ((10.0, 1e-5), (20.0, 0.99)):
        logits = torch.zeros(1, 10)
        logits[0, 0] = gap
        rce = symmetric_cross_entropy(logits, target, alpha=0.0, beta=1.0)
        exact = symmetric_cross_entropy(logits.double(), target, alpha=0.0, beta=1.0)
        assert exact > 0
        assert abs(rce.double() - exact) / exact > min_error
        if gap == 20.0:
            assert rce == 0


def test_defaults_do_not_give_the_rce_bound_of_the_authors_code():
    # The page: the default alpha, beta with log_zero=-4 bound RCE by 4; the authors' code
    # (A = log 1e-4) bounds it by about 9.21.
    wrong = torch.tensor([[0.0, 1e4, 0.0]])
    target = torch.zeros(1, dtype=torch.long)
    ours = symmetric_cross_entropy(wrong, target, alpha=0.0)
    authors = symmetric_cross_entropy(wrong, target, alpha=0.0, log_zero=math.log(1e-4))
    assert ours.item() == pytest.approx(4.0)
    assert authors.item() == pytest.approx(9.21, abs=0.005)
