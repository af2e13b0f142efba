"""Multi-class hinge losses: snippets/losses/margin.py and the claims of docs/losses/margin.md."""

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from losses.margin import crammer_singer_loss

from tests.support import loss_properties as props
from tests.support.sections import run_sections

SNIPPET = Path(__file__).parents[2] / "snippets" / "losses" / "margin.py"


def loop_crammer_singer(logits, target, margin=1.0):
    """Independent reference: Python loops over samples and classes, float64."""
    flat = logits.double().movedim(1, -1).reshape(-1, logits.shape[1])
    out = []
    for row, y in zip(flat.tolist(), target.reshape(-1).tolist(), strict=True):
        rival = max(v for j, v in enumerate(row) if j != y)
        out.append(max(0.0, margin - row[y] + rival))
    return torch.tensor(out, dtype=torch.float64).reshape(target.shape)


def loop_weston_watkins(logits, target, margin=1.0, p=1, weight=None):
    """The Weston-Watkins sum over j != y, NOT divided by anything, one value per sample."""
    out = []
    for row, y in zip(logits.double().tolist(), target.tolist(), strict=True):
        total = sum(max(0.0, margin - row[y] + v) ** p for j, v in enumerate(row) if j != y)
        out.append(total * (1.0 if weight is None else float(weight[y])))
    return torch.tensor(out, dtype=torch.float64)


# --- crammer_singer_loss -------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.0, 1.0, 2.5])
def test_gradcheck_float64(margin):
    props.check_gradcheck(crammer_singer_loss, margin=margin)
    props.check_gradcheck(crammer_singer_loss, margin=margin, spatial=(2, 3), reduction="none")
    props.check_gradcheck(crammer_singer_loss, margin=margin, c=5, reduction="sum")


@pytest.mark.parametrize("margin", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("spatial", [(), (3,), (2, 2)])
def test_matches_a_loop_implementation(margin, spatial):
    logits, target = props.make_batch(6, 5, *spatial, scale=2.0)
    actual = crammer_singer_loss(logits, target, margin=margin, reduction="none")
    torch.testing.assert_close(actual, loop_crammer_singer(logits, target, margin))


@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_reductions_agree(spatial):
    logits, target = props.make_batch(5, 4, *spatial, scale=2.0)
    props.check_reductions(crammer_singer_loss, logits, target)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_spatial_input_equals_flattened(reduction):
    props.check_spatial(crammer_singer_loss, reduction=reduction)


def test_extreme_float32_logits_give_finite_loss_and_gradient():
    props.check_extreme_logits(crammer_singer_loss)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(dtype):
    props.check_low_precision(crammer_singer_loss, dtype)
    props.check_low_precision(crammer_singer_loss, dtype, spatial=(2,), reduction="none")


def test_integer_targets_of_other_dtypes_work():
    logits, target = props.make_batch(4, 3)
    expected = crammer_singer_loss(logits, target)
    for dtype in (torch.int32, torch.uint8, torch.int16):
        torch.testing.assert_close(crammer_singer_loss(logits, target.to(dtype)), expected)


def test_bounds_relative_to_weston_watkins():
    # Crammer-Singer takes the largest of the C - 1 hinge terms that Weston-Watkins sums.
    logits, target = props.make_batch(50, 6, scale=2.0)
    cs = crammer_singer_loss(logits, target, reduction="none")
    ww = loop_weston_watkins(logits, target)
    assert torch.all(cs <= ww + 1e-12)
    assert torch.all(ww <= (6 - 1) * cs + 1e-12)
    assert torch.any(cs < ww)  # strictly smaller when several classes violate the margin


BAD_INPUTS = [
    ("target", ValueError, lambda x, y: crammer_singer_loss(x, y.float())),
    ("target", ValueError, lambda x, y: crammer_singer_loss(x, y.bool())),
    ("target", IndexError, lambda x, y: crammer_singer_loss(x, torch.tensor([0, 1, 4, 2, 1]))),
    ("target", IndexError, lambda x, y: crammer_singer_loss(x, torch.tensor([0, 1, -1, 2, 1]))),
    ("target", ValueError, lambda x, y: crammer_singer_loss(x, y[:4])),
    ("target", ValueError, lambda x, y: crammer_singer_loss(x, y[:, None])),
    (
        "target",
        ValueError,
        lambda x, y: crammer_singer_loss(
            torch.randn(2, 4, 3, 3), torch.zeros(2, 3, 2, dtype=torch.long)
        ),
    ),
    ("input", ValueError, lambda x, y: crammer_singer_loss(x[0], y[0])),
    ("input", ValueError, lambda x, y: crammer_singer_loss(y[:, None].expand(5, 4), y)),
    ("input", ValueError, lambda x, y: crammer_singer_loss(x[:, :1], y * 0)),
    ("margin", ValueError, lambda x, y: crammer_singer_loss(x, y, margin=-1.0)),
    ("margin", ValueError, lambda x, y: crammer_singer_loss(x, y, margin=float("nan"))),
    ("reduction", ValueError, lambda x, y: crammer_singer_loss(x, y, reduction="average")),
]


@pytest.mark.parametrize(("argument", "error", "call"), BAD_INPUTS)
def test_bad_input_raises_and_names_the_argument(argument, error, call):
    logits, target = props.make_batch(5, 4)
    with pytest.raises(error, match=argument):
        call(logits, target)


# --- nn.MultiMarginLoss: every claim of the page ---------------------------------------------


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3, 2.0])
def test_multi_margin_loss_is_weston_watkins_divided_by_c(p, margin):
    logits, target = props.make_batch(7, 5, scale=2.0)
    C = logits.shape[1]
    actual = nn.MultiMarginLoss(p=p, margin=margin, reduction="none")(logits, target)
    ww = loop_weston_watkins(logits, target, margin, p)
    torch.testing.assert_close(actual, ww / C)
    assert not torch.allclose(actual, ww / (C - 1))


def test_multi_margin_loss_p_other_than_1_or_2_raises():
    logits, target = props.make_batch(3, 4)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)(logits, target)


def test_multi_margin_loss_weight_multiplies_by_weight_of_the_true_class():
    logits, target = props.make_batch(7, 4, scale=2.0)
    weight = torch.tensor([1.0, 4.0, 0.5, 2.0], dtype=torch.float64)
    weighted = nn.MultiMarginLoss(weight=weight, reduction="none")(logits, target)
    torch.testing.assert_close(weighted, loop_weston_watkins(logits, target, weight=weight) / 4)


def test_multi_margin_loss_mean_does_not_divide_by_the_weight_sum():
    logits, target = props.make_batch(7, 4, scale=2.0)
    weight = torch.tensor([1.0, 4.0, 0.5, 2.0], dtype=torch.float64)
    terms = nn.MultiMarginLoss(weight=weight, reduction="none")(logits, target)
    mean = nn.MultiMarginLoss(weight=weight)(logits, target)
    torch.testing.assert_close(mean, terms.sum() / len(target))
    assert not torch.isclose(mean, terms.sum() / weight[target].sum())
    # cross_entropy, by contrast, divides by the sum of weight[y]
    ce_terms = F.cross_entropy(logits, target, weight=weight, reduction="none")
    ce = F.cross_entropy(logits, target, weight=weight)
    torch.testing.assert_close(ce, ce_terms.sum() / weight[target].sum())


def test_multi_margin_loss_limits_on_this_build():
    logits, target = props.make_batch(5, 4, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="Expected non-empty vector or matrix"):
        F.multi_margin_loss(torch.randn(2, 4, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(RuntimeError, match="target out of range"):
        F.multi_margin_loss(logits, torch.tensor([0, 1, 2, 4, 1]))
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Float"):
        F.multi_margin_loss(logits, target.float())
    # (N, C) class probabilities: F.cross_entropy accepts them, nn.MultiMarginLoss does not.
    probabilities = F.one_hot(target, 4).float()
    assert torch.isfinite(F.cross_entropy(logits, probabilities))
    with pytest.raises(RuntimeError, match="target tensor should be 1-D"):
        F.multi_margin_loss(logits, probabilities)
    # Every row the page shows as refused by nn.MultiMarginLoss is accepted by F.cross_entropy
    # (the page: "refuses some inputs that F.cross_entropy accepts").
    assert torch.isfinite(
        F.cross_entropy(torch.randn(2, 4, 3), torch.zeros(2, 3, dtype=torch.long))
    )
    for dtype in (torch.float16, torch.bfloat16):
        assert torch.isfinite(F.cross_entropy(logits.to(dtype), target))
    for dtype, name in ((torch.float16, "Half"), (torch.bfloat16, "BFloat16")):
        with pytest.raises(NotImplementedError, match=f"not implemented for '{name}'"):
            F.multi_margin_loss(logits.to(dtype), target)
    assert torch.isfinite(F.multi_margin_loss(logits, target, margin=-1.0))  # accepted silently


def test_hinge_losses_stop_at_the_margin_cross_entropy_does_not():
    x = torch.tensor([[6.0, 0.0, 1.0, -2.0]], requires_grad=True)
    y = torch.tensor([0])
    for loss_fn in (F.multi_margin_loss, crammer_singer_loss):
        loss = loss_fn(x, y)
        (gradient,) = torch.autograd.grad(loss, x)
        assert loss == 0 and torch.all(gradient == 0)
    loss = F.cross_entropy(x, y)
    (gradient,) = torch.autograd.grad(loss, x)
    assert loss > 0 and gradient[0, 0] < 0


# --- the page's executed sections -----------------------------------------------------------


@pytest.fixture(scope="module")
def page():
    return run_sections(
        SNIPPET,
        "checks",
        "crammer_singer",
        "batch",
        "multi_margin_scaling",
        "multi_margin_p",
        "multi_margin_weight",
        "compare",
    )


def test_page_scaling_section(page):
    torch.testing.assert_close(page["torch_loss"], page["weston_watkins"] / page["C"])


def test_page_weight_section(page):
    torch.testing.assert_close(
        page["weighted"], page["weight"][page["target"]] * page["torch_loss"]
    )
    torch.testing.assert_close(page["mean"], page["weighted"].sum() / len(page["target"]))


def test_page_compare_section(page):
    rows = page["rows"]
    torch.testing.assert_close(rows["MultiMarginLoss (/ C)"], rows["Weston-Watkins sum"] / 4)
    assert torch.all(rows["Crammer-Singer"] <= rows["Weston-Watkins sum"])
    # The batch has a sample inside the margin (zero hinge loss, positive cross-entropy).
    zero = rows["Crammer-Singer"] == 0
    assert zero.any() and torch.all(rows["cross_entropy"][zero] > 0)


def test_gradient_of_the_plot_matches_the_formulas():
    """The plot's right panel: dL/dz_y is p_y - 1 (CE), -1 or 0 (Crammer-Singer) and
    -(C - 1) / C or 0 (MultiMarginLoss) when every other logit is 0."""
    C = 10
    z = torch.tensor([-2.0, 0.5, 0.99, 1.01, 3.0], dtype=torch.float64)
    x = torch.zeros(len(z), C, dtype=torch.float64)
    x[:, 0] = z
    x.requires_grad_(True)
    y = torch.zeros(len(z), dtype=torch.long)
    violating = (z < 1).double()
    for loss_fn, expected in (
        (F.cross_entropy, torch.softmax(x, 1)[:, 0].detach() - 1),
        (crammer_singer_loss, -violating),
        (F.multi_margin_loss, -(C - 1) / C * violating),
    ):
        (gradient,) = torch.autograd.grad(loss_fn(x, y, reduction="sum"), x)
        torch.testing.assert_close(gradient[:, 0], expected)


def test_hinge_gradients_are_at_most_one_in_magnitude():
    logits, target = props.make_batch(20, 6, scale=50.0)  # badly wrong samples included
    logits.requires_grad_(True)
    for loss_fn in (F.multi_margin_loss, crammer_singer_loss):
        (gradient,) = torch.autograd.grad(loss_fn(logits, target, reduction="sum"), logits)
        assert gradient.abs().max() <= 1.0
    # the unscaled Weston-Watkins sum is not bounded this way
    (gradient,) = torch.autograd.grad(
        F.multi_margin_loss(logits, target, reduction="sum") * 6, logits
    )
    assert gradient.abs().max() > 1.0


def test_crammer_singer_gradient_goes_to_the_strongest_rival_only():
    x = torch.tensor([[0.0, 0.5, 0.2, -1.0], [0.0, 0.5, 0.5, -1.0]], requires_grad=True)
    y = torch.tensor([0, 0])
    (gradient,) = torch.autograd.grad(crammer_singer_loss(x, y, reduction="sum"), x)
    torch.testing.assert_close(gradient[0], torch.tensor([-1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(gradient[1], torch.tensor([-1.0, 0.5, 0.5, 0.0]))  # a tie


def test_other_margin_losses_named_on_the_page():
    for name in (
        "MultiMarginLoss",
        "MultiLabelMarginLoss",
        "MarginRankingLoss",
        "TripletMarginLoss",
        "SoftMarginLoss",
        "HingeEmbeddingLoss",
    ):
        assert hasattr(nn, name)
    x = torch.tensor([0.3, 2.0, -1.5], dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    # SoftMarginLoss: the logistic loss log(1 + exp(-y x)) for +-1 targets
    soft = nn.SoftMarginLoss(reduction="none")(x, y)
    torch.testing.assert_close(soft, torch.log1p(torch.exp(-y * x)))
    # HingeEmbeddingLoss: x itself (a distance) for y = 1, max(0, margin - x) for y = -1
    hinge = nn.HingeEmbeddingLoss(margin=1.0, reduction="none")(x, y)
    torch.testing.assert_close(hinge, torch.where(y == 1, x, (1.0 - x).clamp_min(0)))


def test_a_class_weight_lifts_the_bound_on_the_gradient():
    # The page: the bound of 1 holds without `weight`; a weight scales the gradient by the
    # weight of the true class.
    logits = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0])
    weight = torch.tensor([8.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    (plain,) = torch.autograd.grad(F.multi_margin_loss(logits, target, reduction="sum"), logits)
    (weighted,) = torch.autograd.grad(
        F.multi_margin_loss(logits, target, weight=weight, reduction="sum"), logits
    )
    assert plain.abs().max() <= 1.0 < weighted.abs().max()
    torch.testing.assert_close(weighted, weight[0] * plain)


def test_float32_cross_entropy_is_exactly_zero_once_the_gap_is_large_enough():
    # The page: never zero mathematically (float64 stays positive at these gaps), but in float32
    # the loss and the gradient on z_y are exactly 0 from a gap of 17 on [gap, 0, 0, 0].
    page = run_sections(SNIPPET, "checks", "crammer_singer", "batch", "ce_float32")
    ce = page["ce_by_gap"]
    for gap in (15, 16):
        loss, gradient = ce[torch.float32, gap]
        assert loss > 0 and gradient < 0
    for gap in (17, 18):
        assert ce[torch.float32, gap] == (0.0, 0.0)
    for gap in (15, 16, 17, 18):
        loss, gradient = ce[torch.float64, gap]
        assert loss > 0 and gradient < 0
