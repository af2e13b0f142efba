"""Focal loss: snippets/losses/focal.py and the claims of docs/losses/focal.md."""

import pytest
import torch
import torch.nn.functional as F
from losses.focal import FocalLoss, _true_class_log_prob, focal_loss, sigmoid_focal_loss

from tests.support import loss_properties as props
from tests.support.pages import SNIPPETS
from tests.support.sections import run_sections

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
WEIGHT = torch.tensor([0.2, 1.0, 3.0, 0.7], dtype=torch.float64)


def reference_focal(logits, target, gamma, weight=None, ignore_index=-100):
    """An independent formula: softmax in float64, one-hot selection, explicit weighted mean."""
    probs = torch.softmax(logits.double(), dim=1)
    valid = target != ignore_index
    safe = target.masked_fill(~valid, 0)
    p_y = (probs * F.one_hot(safe, logits.shape[1]).movedim(-1, 1)).sum(dim=1)
    w = torch.ones(logits.shape[1], dtype=torch.float64) if weight is None else weight.double()
    w_y = w[safe] * valid
    per_element = -w_y * (1 - p_y) ** gamma * torch.log(p_y)
    return per_element, per_element.sum() / w_y.sum()


@pytest.mark.parametrize("gamma", GAMMAS)
def test_gradcheck_float64(gamma):
    props.check_gradcheck(focal_loss, gamma=gamma)
    props.check_gradcheck(focal_loss, gamma=gamma, weight=WEIGHT[:3])
    props.check_gradcheck(focal_loss, gamma=gamma, spatial=(2, 2), reduction="none")


def test_double_backward():
    logits, target = props.make_batch(4, 3)
    logits.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x: focal_loss(x, target, gamma=2.0), (logits,))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_matches_an_independent_formula(gamma):
    logits, target = props.make_batch(7, 4, scale=3.0)
    target[2] = -100
    per_element, mean = reference_focal(logits, target, gamma, WEIGHT)
    actual = focal_loss(logits, target, gamma=gamma, weight=WEIGHT, reduction="none")
    torch.testing.assert_close(actual, per_element)
    torch.testing.assert_close(focal_loss(logits, target, gamma=gamma, weight=WEIGHT), mean)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_gamma_zero_is_cross_entropy(reduction, spatial):
    logits, target = props.make_batch(5, 4, *spatial, dtype=torch.float32)
    target.view(-1)[::3] = 255
    weight = WEIGHT.float()
    kwargs = {"weight": weight, "ignore_index": 255, "reduction": reduction}
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0, **kwargs), F.cross_entropy(logits, target, **kwargs)
    )


def test_gamma_zero_gradient_is_cross_entropy_gradient():
    logits, target = props.make_batch(6, 4, dtype=torch.float32)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    focal_loss(a, target, gamma=0.0, weight=WEIGHT.float()).backward()
    F.cross_entropy(b, target, weight=WEIGHT.float()).backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_true_class_log_prob_matches_log_softmax_and_gather():
    logits, target = props.make_batch(6, 5, 2, scale=5.0)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    fast = _true_class_log_prob(a, target)
    slow = torch.log_softmax(b, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(fast, slow)
    upstream = torch.randn_like(fast)
    (fast * upstream).sum().backward()
    (slow * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_finite_for_float32_logits_of_magnitude_1e4(gamma):
    props.check_extreme_logits(focal_loss, magnitude=1e4, gamma=gamma)
    props.check_extreme_logits(focal_loss, magnitude=1e4, gamma=gamma, reduction="none")


def test_confident_sample_has_a_finite_gradient_even_for_gamma_below_one():
    # p_y rounds to 1 in float32: (1 - p_y)**0.5 has an infinite derivative there.
    logits = torch.tensor([[50.0, 0.0, 0.0]], requires_grad=True)
    loss = focal_loss(logits, torch.tensor([0]), gamma=0.5)
    loss.backward()
    assert loss == 0
    assert torch.all(torch.isfinite(logits.grad)) and logits.grad.abs().max() < 1e-30


@pytest.mark.parametrize("spatial", [(), (2, 3)])
def test_reductions_are_consistent(spatial):
    props.check_reductions_with_an_ignored_element(focal_loss, *spatial, weight=WEIGHT)


@pytest.mark.parametrize("ignore_index", [-100, 255, 0])
def test_ignore_index_masks_loss_and_gradient(ignore_index):
    logits, target = props.make_batch(8, 4)
    target = target.clamp_max(2) + (ignore_index == 0)  # keep real targets away from 0 then
    props.check_ignore_index(focal_loss, logits, target, ignore_index=ignore_index)
    props.check_ignore_index(focal_loss, logits, target, ignore_index=ignore_index, weight=WEIGHT)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_low_precision_input(dtype, reduction):
    props.check_low_precision(focal_loss, dtype, reduction=reduction)
    weight = torch.tensor([0.2, 1.0, 3.0, 0.7, 1.5])
    props.check_low_precision(focal_loss, dtype, spatial=(2,), reduction=reduction, weight=weight)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_spatial_input(reduction):
    props.check_spatial(focal_loss, reduction=reduction)
    props.check_spatial(focal_loss, reduction=reduction, weight=WEIGHT)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_other_integer_target_dtypes(dtype):
    logits, target = props.make_batch(5, 4)
    torch.testing.assert_close(focal_loss(logits, target.to(dtype)), focal_loss(logits, target))


def test_module_matches_function_and_holds_weight_as_buffer():
    logits, target = props.make_batch(5, 4)
    criterion = FocalLoss(gamma=1.5, weight=WEIGHT, reduction="sum")
    torch.testing.assert_close(
        criterion(logits, target),
        focal_loss(logits, target, gamma=1.5, weight=WEIGHT, reduction="sum"),
    )
    assert "weight" in criterion.state_dict()
    assert criterion.to(torch.float32).weight.dtype == torch.float32
    criterion.weight = None  # reassignable, e.g. for a re-weighting schedule
    torch.testing.assert_close(
        criterion(logits, target), focal_loss(logits, target, gamma=1.5, reduction="sum")
    )
    assert "gamma=1.5" in repr(criterion)


def test_defaults():
    logits, target = props.make_batch(5, 4)
    torch.testing.assert_close(focal_loss(logits, target), focal_loss(logits, target, gamma=2.0))
    torch.testing.assert_close(FocalLoss()(logits, target), focal_loss(logits, target))


# ---- bad input: each error names the argument --------------------------------------------


LOGITS = torch.randn(4, 3)
TARGET = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: focal_loss(LOGITS, TARGET, gamma=-0.5), ValueError, r"^gamma must be"),
        (lambda: focal_loss(LOGITS, TARGET, gamma=float("nan")), ValueError, r"^gamma must be"),
        (lambda: FocalLoss(gamma=-1.0), ValueError, r"^gamma must be"),
        (lambda: FocalLoss(reduction="batchmean"), ValueError, r"^reduction must be"),
        (lambda: FocalLoss(weight=torch.ones(3, 3)), ValueError, r"^weight must be a 1-D"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ignore_index_is_not_out_of_bounds():
    assert torch.isfinite(focal_loss(LOGITS, torch.tensor([0, -100, 2, 1])))
    assert torch.isfinite(focal_loss(LOGITS, torch.tensor([0, 7, 2, 1]), ignore_index=7))


# ---- claims of the page ------------------------------------------------------------------


def test_at_p_09_and_gamma_2_the_loss_is_a_hundredth_of_cross_entropy():
    """The page: "At p_y = 0.9 and gamma = 2 it [the factor] is 0.01"; run through focal_loss."""
    p_y = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    logits = torch.stack([torch.log(p_y), torch.log1p(-p_y)], dim=1)  # softmax gives p_y, 1 - p_y
    target = torch.zeros(3, dtype=torch.long)
    ratio = focal_loss(logits, target, gamma=2.0, reduction="none") / F.cross_entropy(
        logits, target, reduction="none"
    )
    torch.testing.assert_close(ratio, torch.tensor([0.01, 0.25, 0.81], dtype=torch.float64))


def test_focal_loss_is_below_cross_entropy_and_down_weights_easy_samples():
    logits, target = props.make_batch(50, 5, scale=3.0)
    ce = F.cross_entropy(logits, target, reduction="none")
    focal = focal_loss(logits, target, reduction="none")
    assert torch.all(focal <= ce)
    p_y = torch.exp(-ce)
    torch.testing.assert_close(focal / ce, (1 - p_y) ** 2)


def test_scalar_alpha_only_rescales_and_class_weight_changes_the_balance():
    logits, target = props.make_batch(8, 3)
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])
    # A scalar alpha multiplies the loss and its gradient by alpha: same direction.
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    (0.25 * focal_loss(a, target)).backward()
    focal_loss(b, target).backward()
    torch.testing.assert_close(a.grad, 0.25 * b.grad)
    # alpha as a constant class weight cancels in the weighted mean entirely.
    torch.testing.assert_close(
        focal_loss(logits, target, weight=torch.full((3,), 0.25, dtype=torch.float64)),
        focal_loss(logits, target),
    )
    # A per-class weight raises the rare classes' share of the loss.
    weight = torch.tensor([0.25, 1.0, 1.0], dtype=torch.float64)
    plain = focal_loss(logits, target, reduction="none")
    weighted = focal_loss(logits, target, weight=weight, reduction="none")
    assert weighted[6:].sum() / weighted.sum() > plain[6:].sum() / plain.sum()


def test_snippet_gamma_zero_section_output(capsys):
    """The page's gamma=0 block, run as the page runs it: equal to F.cross_entropy(weight)."""
    namespace = run_sections(
        SNIPPETS / "losses" / "focal.py",
        "gamma_zero",
        namespace={"F": F, "torch": torch, "focal_loss": focal_loss},
    )
    focal, ce, target = namespace["focal"], namespace["ce"], namespace["target"]
    reference = F.cross_entropy(namespace["logits"], target, weight=namespace["weight"])
    assert torch.equal(ce, reference) and torch.allclose(focal, reference)
    assert (target == -100).any()  # the block includes an ignored target
    assert capsys.readouterr().out.splitlines()[-1] == "equal (torch.allclose): True"


def test_gradient_ratio_to_cross_entropy_is_above_one_for_hard_and_below_for_easy_samples():
    p_y = torch.tensor([0.05, 0.1, 0.2, 0.5, 0.9, 0.99, 0.9999], dtype=torch.float64)
    logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1)
    target = torch.zeros(len(p_y), dtype=torch.long)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        z = logits.clone().requires_grad_()
        focal_loss(z, target, gamma=gamma, reduction="sum").backward()
        ratio = z.grad[:, 0] / (p_y - 1)
        assert torch.all(ratio[:2] > 1), gamma  # hard samples: pushed harder than by CE
        assert torch.all(ratio[4:] < 1), gamma  # easy samples: pushed less
        assert ratio[-1] < 0.02, gamma  # and the ratio tends to 0 as p_y -> 1
    # For the cross-entropy itself, d loss / d z_y = p_y - 1.
    z = logits.clone().requires_grad_()
    F.cross_entropy(z, target, reduction="sum").backward()
    torch.testing.assert_close(z.grad[:, 0], p_y - 1)


def test_all_ignored_mean_is_nan_with_zero_gradient_like_cross_entropy():
    logits = torch.randn(3, 4)
    target = torch.full((3,), -100)
    for loss_fn in (F.cross_entropy, focal_loss):
        x = logits.clone().requires_grad_()
        value = loss_fn(x, target)
        value.backward()
        assert torch.isnan(value) and torch.all(x.grad == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_low_precision_input_is_computed_in_float32(dtype, reduction):
    props.check_computes_in_float32(focal_loss, dtype, reduction=reduction)


def test_true_class_log_prob_with_a_bias_matches_log_softmax_of_the_shifted_logits():
    logits, target = props.make_batch(6, 5, 2, scale=5.0)
    bias = torch.randn(5, 1, dtype=torch.float64)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    fast = _true_class_log_prob(a, target, bias)
    slow = torch.log_softmax(b + bias, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(fast, slow)
    upstream = torch.randn_like(fast)
    (fast * upstream).sum().backward()
    (slow * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_second_backward_with_retain_graph_gives_the_same_gradient():
    logits, target = props.make_batch(6, 5)
    x = logits.clone().requires_grad_()
    loss = focal_loss(x, target)
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    assert torch.equal(first, second)


# ---- sigmoid_focal_loss: the sigmoid form of the paper, for multi-label and dense targets ----


def reference_sigmoid_focal(logits, target, gamma, alpha):
    """An independent formula in float64: p_t from 1 / (1 + exp(-x)), log(p_t) directly."""
    x = logits.double()
    p = 1 / (1 + torch.exp(-x))
    p_t = target * p + (1 - target) * (1 - p)
    alpha_t = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
def test_sigmoid_focal_matches_the_paper_formula(gamma, alpha):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 4, 3, generator=generator, dtype=torch.float64) * 3
    target = (torch.rand(5, 4, 3, generator=generator) < 0.4).double()
    expected = reference_sigmoid_focal(logits, target, gamma, alpha)
    value = sigmoid_focal_loss(logits, target, gamma=gamma, alpha=alpha, reduction="none")
    torch.testing.assert_close(value, expected)
    mean = sigmoid_focal_loss(logits, target, gamma=gamma, alpha=alpha)
    torch.testing.assert_close(mean, expected.mean())
    total = sigmoid_focal_loss(logits, target, gamma=gamma, alpha=alpha, reduction="sum")
    torch.testing.assert_close(total, expected.sum())


def test_sigmoid_focal_with_gamma_zero_is_bce_with_the_same_weight_and_pos_weight():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 3, 2, 2, generator=generator, dtype=torch.float64) * 3
    target = torch.rand(6, 3, 2, 2, generator=generator, dtype=torch.float64)  # soft targets
    weight = torch.rand(6, 1, 2, 2, generator=generator, dtype=torch.float64)
    pos_weight = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64).view(3, 1, 1)
    for reduction in ("none", "mean", "sum"):
        a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        kwargs = {"weight": weight, "pos_weight": pos_weight, "reduction": reduction}
        value = sigmoid_focal_loss(a, target, gamma=0.0, alpha=None, **kwargs)
        expected = F.binary_cross_entropy_with_logits(b, target, **kwargs)
        torch.testing.assert_close(value, expected)
        value.sum().backward()
        expected.sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_gradcheck_and_extreme_logits(gamma):
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_()
    target = (torch.rand(4, 3, generator=generator) < 0.5).double()
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, target, gamma=gamma, reduction="sum"), (logits,)
    )
    signs = torch.randint(0, 2, (8, 5), generator=generator).float() * 2 - 1
    huge = (signs * 1e4).requires_grad_()
    labels = (torch.rand(8, 5, generator=generator) < 0.5).float()
    value = sigmoid_focal_loss(huge, labels, gamma=gamma, reduction="none")
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(huge.grad).all()
    wrong = (signs > 0) != (labels > 0)
    alpha_t = torch.where(labels > 0, 0.25, 0.75)
    torch.testing.assert_close(value[wrong], (1e4 * alpha_t)[wrong])  # loss = alpha_t * |x|


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sigmoid_focal_low_precision_is_computed_in_float32(dtype):
    logits = (torch.randn(8, 5) * 3).to(dtype)
    target = (torch.rand(8, 5) < 0.5).to(dtype)
    value = sigmoid_focal_loss(logits, target)
    assert value.dtype == dtype
    assert torch.equal(value, sigmoid_focal_loss(logits.float(), target.float()).to(dtype))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": -1.0}, "^gamma must be"),
        ({"alpha": 1.5}, "^alpha must be"),
        ({"reduction": "avg"}, "^reduction must be"),
        ({"target": torch.ones(3, 2, dtype=torch.long)}, "^target must be a floating-point"),
        ({"target": torch.ones(3, 4)}, "^target must have the shape of input"),
        ({"input": torch.ones(3, 2, dtype=torch.long)}, "^input must be a floating-point"),
    ],
)
def test_sigmoid_focal_bad_input_names_the_argument(kwargs, match):
    arguments = {"input": torch.zeros(3, 2), "target": torch.ones(3, 2), **kwargs}
    input, target = arguments.pop("input"), arguments.pop("target")
    with pytest.raises(ValueError, match=match):
        sigmoid_focal_loss(input, target, **arguments)


def test_an_all_ignored_batch_moves_parameters_only_through_optimizer_state():
    # The page: zero gradient; plain SGD leaves the parameters, momentum / Adam move them.
    for optimizer_class, kwargs, moves in [
        (torch.optim.SGD, {"lr": 0.1}, False),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, True),
        (torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.1}, True),
        (torch.optim.Adam, {"lr": 0.1}, True),
    ]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 4)
        optimizer = optimizer_class(model.parameters(), **kwargs)
        x = torch.randn(5, 3)
        focal_loss(model(x), torch.randint(4, (5,))).backward()  # one ordinary step first
        optimizer.step()
        optimizer.zero_grad()
        before = model.weight.detach().clone()
        loss = focal_loss(model(x), torch.full((5,), -100))
        loss.backward()
        assert torch.isnan(loss) and torch.all(model.weight.grad == 0)
        optimizer.step()
        assert (not torch.equal(model.weight, before)) == moves, (optimizer_class, kwargs)


def test_as_many_large_allocations_as_cross_entropy():
    # The page: as many (N, C) tensors as F.cross_entropy (it is F.cross_entropy), and as
    # many as log_softmax followed by gather.
    from torch.profiler import ProfilerActivity, profile

    n, c = 512, 1000
    logits = torch.randn(n, c, requires_grad=True)
    target = torch.randint(c, (n,))

    def large_allocations(compute):
        logits.grad = None
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            compute().sum().backward()
        # operator events whose own allocations (children excluded) hold an (N, C) float32 tensor
        events = prof.events()
        return sum(1 for e in events if e.self_cpu_memory_usage >= n * c * 4)

    ours = large_allocations(lambda: _true_class_log_prob(logits, target))
    cross_entropy = large_allocations(lambda: F.cross_entropy(logits, target, reduction="none"))
    gather = large_allocations(
        lambda: torch.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1))
    )
    assert ours == cross_entropy == gather == 3


def weight_change(optimizer_class, alpha, steps=3, **kwargs):
    """How much `steps` steps of `optimizer_class` on alpha * focal_loss move a linear model."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    optimizer = optimizer_class(model.parameters(), **kwargs)
    x, y = torch.randn(16, 3), torch.randint(4, (16,))
    before = model.weight.detach().clone()
    for _ in range(steps):
        optimizer.zero_grad()
        (alpha * focal_loss(model(x), y)).backward()
        optimizer.step()
    return model.weight.detach() - before


def test_a_scalar_alpha_is_a_smaller_step_for_sgd_and_almost_nothing_for_adam():
    # The page (alpha): alpha * loss scales the SGD step by alpha; Adam's step barely changes.
    sgd, adam = torch.optim.SGD, torch.optim.Adam
    one_step = {"steps": 1, "lr": 0.01}  # one SGD step: exactly alpha times the step
    ratio = weight_change(sgd, 0.25, **one_step) / weight_change(sgd, 1.0, **one_step)
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.25), rtol=1e-3, atol=0)
    small, full = weight_change(adam, 0.25, lr=0.01), weight_change(adam, 1.0, lr=0.01)
    torch.testing.assert_close(small, full, rtol=1e-4, atol=1e-7)


def test_a_scalar_alpha_changes_adam_with_coupled_weight_decay():
    # The page (alpha): "barely changes" holds without weight decay; Adam's coupled L2 term is
    # not scaled by alpha, so alpha * loss shifts the balance between loss and decay.
    decay = {"lr": 0.01, "weight_decay": 1.0}
    small = weight_change(torch.optim.Adam, 0.25, **decay)
    full = weight_change(torch.optim.Adam, 1.0, **decay)
    assert (small - full).abs().max() > 100 * 1e-7  # far outside the tolerance used without decay


def test_a_scalar_alpha_barely_changes_adamw_with_decoupled_weight_decay():
    # The page (alpha): with AdamW's decoupled decay, alpha again changes almost nothing.
    decay = {"lr": 0.01, "weight_decay": 0.1}
    small = weight_change(torch.optim.AdamW, 0.25, **decay)
    full = weight_change(torch.optim.AdamW, 1.0, **decay)
    torch.testing.assert_close(small, full, rtol=1e-4, atol=1e-7)


def test_minus_expm1_avoids_cancellation_but_log_softmax_error_dominates():
    # The page: -expm1(log_p) avoids the cancellation of 1 - exp(log_p) for a given log_p; with
    # log_p from float32 log_softmax, the error of log_softmax (relative error about
    # 1e-7 / (1 - p_y)) dominates, and near p_y = 1 neither recovers 1 - p_y.
    def relative_errors(d):
        logits = torch.tensor([[d, 0.0]])
        log_p = torch.log_softmax(logits, dim=1)[0, 0]
        given = -torch.expm1(log_p.double())  # 1 - p_y for this float32 log_p, in float64
        exact = torch.sigmoid(-torch.tensor(d, dtype=torch.float64))  # 1 - p_y of the logits
        ours = (-torch.expm1(log_p)).double()
        naive = (1 - torch.exp(log_p)).double()
        return {
            "ours, given log_p": float(abs(ours - given) / given),
            "naive, given log_p": float(abs(naive - given) / given),
            "ours": float(abs(ours - exact) / exact),
            "naive": float(abs(naive - exact) / exact),
            "1 - p_y": float(exact),
        }

    errors = {d: relative_errors(d) for d in (5.5, 6.0, 7.0, 9.0, 12.0)}
    for e in errors.values():
        assert e["ours, given log_p"] < 1e-7  # no cancellation for a given log_p
        assert e["naive, given log_p"] > 5 * e["ours, given log_p"]
        # from log_softmax: within about 1e-7 / (1 - p_y), and of that order, for both forms
        for form in ("ours", "naive"):
            assert 1e-9 / e["1 - p_y"] < e[form] < 1.2e-7 / e["1 - p_y"], (form, e)
    assert max(e["ours"] / e["naive"] for e in errors.values()) > 0.5  # not better everywhere
    e = relative_errors(17.0)
    assert e["ours"] > 0.5 and e["naive"] > 0.5  # log_p itself has lost 1 - p_y: both are wrong


def test_a_weight_that_is_not_a_tensor_raises_attribute_error():
    # The page (errors): only tensors are checked; a Python list for weight is not named.
    with pytest.raises(AttributeError):
        focal_loss(torch.zeros(2, 3), torch.tensor([0, 1]), weight=[1.0, 1.0, 1.0])


# ---- kornia's focal loss (the page's #kornia section) -------------------------------------


def test_kornia_mean_divides_by_n_times_c_and_counts_ignored_elements():
    kornia = pytest.importorskip("kornia")
    logits, target = props.make_batch(6, 4, dtype=torch.float32)
    kornia_mean = kornia.losses.focal_loss(logits, target, alpha=None, gamma=0.0, reduction="mean")
    # gamma = 0: kornia's "mean" is cross-entropy divided by the number of classes C
    torch.testing.assert_close(kornia_mean, F.cross_entropy(logits, target) / 4)
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target)
    )
    # an ignored element still counts in kornia's denominator, not in F.cross_entropy's
    target[0] = -100
    kornia_mean = kornia.losses.focal_loss(logits, target, alpha=None, gamma=0.0, reduction="mean")
    ce_sum = F.cross_entropy(logits, target, reduction="sum")
    torch.testing.assert_close(kornia_mean, ce_sum / (6 * 4))
    torch.testing.assert_close(focal_loss(logits, target, gamma=0.0), ce_sum / 5)


def test_kornia_sum_and_gamma_agree_with_focal_loss():
    kornia = pytest.importorskip("kornia")
    logits, target = props.make_batch(6, 4, dtype=torch.float32, scale=3.0)
    for gamma in (0.5, 2.0):
        torch.testing.assert_close(
            kornia.losses.focal_loss(logits, target, alpha=None, gamma=gamma, reduction="sum"),
            focal_loss(logits, target, gamma=gamma, reduction="sum"),
        )


def test_kornia_alpha_weights_class_zero_by_one_minus_alpha():
    kornia = pytest.importorskip("kornia")
    logits, target = props.make_batch(6, 4, dtype=torch.float32, scale=3.0)
    weight = torch.tensor([0.75, 0.25, 0.25, 0.25])  # alpha=0.25: class 0 gets 1 - alpha
    torch.testing.assert_close(
        kornia.losses.focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum"),
        focal_loss(logits, target, gamma=2.0, weight=weight, reduction="sum"),
    )


def test_kornia_none_is_a_class_map_with_the_value_at_the_target():
    # The page (kornia): "none" returns (N, C, ...) with the value at the target class and 0
    # elsewhere; summed over dim 1 it is the (N, ...) tensor of focal_loss.
    kornia = pytest.importorskip("kornia")
    logits, target = props.make_batch(6, 4, dtype=torch.float32)
    theirs = kornia.losses.focal_loss(logits, target, alpha=None, gamma=2.0, reduction="none")
    ours = focal_loss(logits, target, gamma=2.0, reduction="none")
    assert theirs.shape == (6, 4) and ours.shape == (6,)
    at_target = F.one_hot(target, 4).bool()
    assert torch.all(theirs[~at_target] == 0)
    torch.testing.assert_close(theirs.sum(dim=1), ours)


def test_all_ignored_section_shows_a_zero_gradient(capsys):
    # The page (all-ignored): the gradient of the nan is zero for every logit, both functions.
    run_sections(SNIPPETS / "losses" / "focal.py", "focal_loss", "helpers", "all_ignored")
    lines = [line for line in capsys.readouterr().out.splitlines() if "largest |gradient|" in line]
    assert [line.split(":")[0] for line in lines] == ["focal_loss", "F.cross_entropy"]
    assert all(line.endswith("= 0.0") for line in lines)
