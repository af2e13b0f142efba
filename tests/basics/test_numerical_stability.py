"""Every statement of docs/basics/numerical_stability*.md about PyTorch, asserted."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from basics.numerical_stability import (
    FORMS,
    by_hand,
    log_of_softmax,
    naive_loss,
    one_step,
    stable,
    sweep,
)

from tests.support.pages import DOCS

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def first_failure(form, dtype):
    s, losses = sweep(form, dtype)
    broken = (~torch.isfinite(losses)).any(dim=1)
    if not broken.any():
        return None, s, losses
    i = int(broken.nonzero()[0])
    return i, s, losses


def limits(dtype):
    info = torch.finfo(dtype)
    return math.log(info.max), -math.log(info.tiny * info.eps / 2)


# --- Three logits -------------------------------------------------------------------------------


def test_both_forms_agree_for_small_logits():
    x = torch.tensor([10.0, 0.0, -10.0])
    assert torch.allclose(torch.log(torch.softmax(x, 0)), F.log_softmax(x, 0))


def test_at_s_100_the_naive_form_is_wrong_then_minus_inf_and_log_softmax_exact():
    x = torch.tensor([100.0, 0.0, -100.0])
    naive = torch.log(torch.softmax(x, 0))
    assert torch.isfinite(naive[1]) and abs(naive[1].item() + 100) > 1e-3  # wrong but finite
    assert naive[2].item() == -math.inf
    assert torch.equal(F.log_softmax(x, 0), x - x.max())


def test_at_s_1000_only_log_softmax_has_no_minus_inf():
    x = torch.tensor([1000.0, 0.0, -1000.0])
    naive = torch.log(torch.softmax(x, 0))
    assert naive[0].item() == 0.0  # still exact for the largest logit
    assert (naive[1:] == -math.inf).all()
    assert torch.equal(F.log_softmax(x, 0), torch.tensor([0.0, -1000.0, -2000.0]))


# --- The sweep and its thresholds ---------------------------------------------------------------


def test_exact_losses_of_the_sweep_are_finite():
    s = torch.arange(0.0, 200.01, 0.5, dtype=torch.float64)
    class0 = torch.log1p(torch.exp(-s))
    class1 = s + torch.log1p(torch.exp(-s))
    logits = torch.stack([s, torch.zeros_like(s)], dim=1)
    assert torch.allclose(-F.log_softmax(logits, 1), torch.stack([class0, class1], 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hand_written_softmax_overflows_just_above_log_max(dtype):
    i, s, losses = first_failure(by_hand, dtype)
    overflow, _ = limits(dtype)
    assert s[i].item() > overflow >= s[i - 1].item()
    assert math.isnan(losses[i, 0].item())  # even the class with the largest logit
    assert losses[i, 1].item() == math.inf


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_log_of_softmax_underflows_below_half_the_smallest_subnormal(dtype):
    i, s, losses = first_failure(log_of_softmax, dtype)
    _, underflow = limits(dtype)
    assert s[i].item() > underflow >= s[i - 1].item()
    assert losses[i, 0].item() == 0 and losses[i, 1].item() == math.inf


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_log_softmax_stays_finite_over_the_whole_sweep(dtype):
    i, s, losses = first_failure(stable, dtype)
    assert i is None
    assert losses[-1, 1].item() == pytest.approx(s[-1].item())


def test_float16_breaks_both_naive_forms_below_twenty():
    for form in [by_hand, log_of_softmax]:
        i, s, _ = first_failure(form, torch.float16)
        assert s[i].item() < 20


def test_the_forms_are_the_three_on_the_page():
    assert list(FORMS) == ["log(exp(x) / sum(exp(x)))", "log(softmax(x))", "log_softmax(x)"]


# --- Gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [by_hand, log_of_softmax])
def test_naive_forms_give_inf_loss_and_nan_gradient(form):
    x = torch.tensor([[200.0, 0.0]], requires_grad=True)
    loss = -form(x)[0, 1]
    loss.backward()
    assert loss.item() == math.inf
    assert torch.isnan(x.grad).all()


def test_log_softmax_gradient_is_softmax_minus_one_hot():
    x = torch.tensor([[200.0, 0.0]], requires_grad=True)
    loss = -stable(x)[0, 1]
    loss.backward()
    assert loss.item() == 200.0
    assert torch.equal(x.grad, torch.tensor([[1.0, -1.0]]))
    torch.manual_seed(0)
    z = torch.randn(5, 4, requires_grad=True)
    y = torch.randint(0, 4, (5,))
    F.cross_entropy(z, y, reduction="sum").backward()
    assert torch.allclose(z.grad, torch.softmax(z, 1) - F.one_hot(y, 4), atol=1e-6)


@pytest.mark.parametrize("on_largest", [True, False], ids=["target on largest", "not on it"])
def test_one_extreme_sample_puts_nan_into_the_gradients_reached_through_it(on_largest):
    loss, model, logits, active = one_step(naive_loss, on_largest)
    assert (logits[0, 0] - logits[0, 1]).abs().item() > limits(torch.float32)[1]  # past the sweep
    # the loss hides the problem when the target's probability did not underflow
    assert math.isfinite(loss.item()) if on_largest else loss.item() == math.inf
    first, last = model[0], model[2]
    assert last.weight.grad.isnan().all() and last.bias.grad.isnan().all()  # the whole last layer
    assert 0 < active.sum() < active.numel()  # some ReLU units are off for sample 0
    assert torch.equal(first.bias.grad.isnan(), active)  # earlier: only the units it reaches
    assert torch.equal(first.weight.grad.isnan(), active[:, None].expand_as(first.weight))
    for p in model.parameters():  # one SGD step writes nan exactly where the gradient was nan
        assert torch.equal(p.isnan(), p.grad.isnan())
    loss, model, *_ = one_step(F.cross_entropy, on_largest)
    assert math.isfinite(loss.item())
    assert all(torch.isfinite(p.grad).all() and torch.isfinite(p).all() for p in model.parameters())


# --- logsumexp ----------------------------------------------------------------------------------


def test_logsumexp_subtracts_the_maximum():
    x = torch.tensor([1000.0, 0.0, -1000.0])
    m = x.max()
    assert torch.log(torch.exp(x).sum()).item() == math.inf
    assert (m + torch.log(torch.exp(x - m).sum())).item() == 1000.0
    assert torch.logsumexp(x, 0).item() == 1000.0


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_log_softmax_is_x_minus_logsumexp(scale):
    torch.manual_seed(0)
    x = scale * torch.randn(6, 5)
    assert torch.allclose(F.log_softmax(x, 1), x - torch.logsumexp(x, 1, keepdim=True))
    assert torch.isfinite(F.cross_entropy(x, torch.randint(0, 5, (6,))))


# --- Mixed precision ----------------------------------------------------------------------------


def _autocast_outputs(device, dtype):
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 10).to(device)
    features = torch.randn(32, 16, device=device)
    target = torch.randint(0, 10, (32,), device=device)
    with torch.autocast(device, dtype=dtype):
        logits = model(features)
        log_probs = F.log_softmax(logits, dim=1)
        return {
            "logits": logits,
            "cross_entropy": F.cross_entropy(logits, target),
            "log_softmax": log_probs,
            "softmax": torch.softmax(logits, dim=1),
            "nll_loss": F.nll_loss(log_probs, target),
            "target": target,
        }


def test_cpu_autocast_runs_the_losses_but_not_log_softmax_in_float32():
    out = _autocast_outputs("cpu", torch.bfloat16)
    assert out["logits"].dtype == torch.bfloat16
    assert out["cross_entropy"].dtype == torch.float32
    assert out["log_softmax"].dtype == torch.bfloat16
    assert out["softmax"].dtype == torch.bfloat16
    assert out["nll_loss"].dtype == torch.float32
    # cross_entropy works on the bf16 logits in float32; nll_loss on log-probabilities already
    # rounded to bf16
    logits, target = out["logits"].detach(), out["target"]
    assert torch.allclose(out["cross_entropy"], F.cross_entropy(logits.float(), target))
    rounded = F.log_softmax(logits, dim=1).float()
    assert torch.allclose(out["nll_loss"], F.nll_loss(rounded, target))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA autocast needs a CUDA device")
def test_cuda_autocast_runs_cross_entropy_log_softmax_nll_loss_in_float32():
    out = _autocast_outputs("cuda", torch.float16)
    assert out["logits"].dtype == torch.float16
    for name in ["cross_entropy", "log_softmax", "softmax", "nll_loss"]:
        assert out[name].dtype == torch.float32, name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_give_a_low_precision_loss_on_cpu(dtype):
    torch.manual_seed(0)
    logits = (3 * torch.randn(64, 1000)).to(dtype)
    target = torch.randint(0, 1000, (64,))
    reference = F.cross_entropy(logits.double(), target).item()
    loss = F.cross_entropy(logits, target)
    assert loss.dtype == dtype
    assert abs(loss.item() - reference) > 1e-4
    assert abs(F.cross_entropy(logits.float(), target).item() - reference) < 1e-5


def test_bfloat16_is_coarser_than_float16_and_steps_by_one_sixteenth_near_ten():
    torch.manual_seed(0)
    logits = 3 * torch.randn(64, 1000)
    target = torch.randint(0, 1000, (64,))
    errors = {}
    for dtype in [torch.bfloat16, torch.float16, torch.float32]:
        rounded = logits.to(dtype)
        reference = F.cross_entropy(rounded.double(), target).item()
        errors[dtype] = abs(F.cross_entropy(rounded, target).item() - reference)
    assert errors[torch.bfloat16] > errors[torch.float16] > errors[torch.float32]
    spacing = torch.finfo(torch.bfloat16).eps * 8  # between 8 and 16
    assert spacing == 1 / 16
    assert torch.tensor(10.3).to(torch.bfloat16).item() % spacing == 0


# --- bfloat16 grid, masking, autocast ------------------------------------------------------------


@pytest.mark.parametrize("form", [by_hand, log_of_softmax], ids=["by hand", "log(softmax)"])
def test_bfloat16_thresholds_are_the_limits_rounded_up_to_the_bfloat16_grid(form):
    i, s, _ = first_failure(form, torch.bfloat16)
    limit = limits(torch.bfloat16)[0 if form is by_hand else 1]
    grid = sorted(set(torch.arange(64.0, 128.0, 0.01, dtype=torch.float64).bfloat16().tolist()))
    assert all(b - a == 0.5 for a, b in itertools.pairwise(grid))  # 0.5 apart
    assert s[i].item() == min(g for g in grid if g > limit)
    assert s[i].item() in (89.0, 93.0)


def test_a_row_of_only_minus_inf_gives_nan_and_finfo_min_keeps_it_finite():
    row = torch.full((1, 3), -math.inf, requires_grad=True)
    loss = F.cross_entropy(row, torch.tensor([0]))
    loss.backward()
    assert math.isnan(loss.item()) and torch.isnan(row.grad).all()
    floor = torch.full((1, 3), torch.finfo(torch.float32).min, requires_grad=True)
    loss = F.cross_entropy(floor, torch.tensor([0]))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(3)) and torch.isfinite(floor.grad).all()


def test_a_partly_masked_row_is_fine_and_the_masked_class_gets_no_gradient():
    x = torch.tensor([[2.0, -math.inf, -1.0]], requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor([0]))
    loss.backward()
    assert math.isfinite(loss.item())
    assert F.softmax(x, 1)[0, 1].item() == 0.0 and x.grad[0, 1].item() == 0.0


def test_cpu_autocast_leaves_softmax_in_bfloat16():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(2, 4))
        assert F.softmax(logits, dim=1).dtype == torch.bfloat16
        assert F.log_softmax(logits, dim=1).dtype == torch.bfloat16


# --- Review basicsB: gradients behind finite losses, raw values, masking pitfalls, autocast scope -

PAGES = [DOCS / "basics" / f"numerical_stability{suffix}" for suffix in (".md", ".en.md")]


def _in_both_pages(japanese, english):
    ja, en = (page.read_text(encoding="utf-8") for page in PAGES)
    return japanese in ja and english in en


def _loss_and_gradient(form, row, target, dtype=torch.float32):
    x = torch.tensor([row], dtype=dtype, requires_grad=True)
    loss = -form(x)[0, target]
    loss.backward()
    return loss.item(), x.grad[0]


def test_log_of_softmax_gives_a_finite_loss_and_a_nan_gradient_when_the_target_survives():
    loss, grad = _loss_and_gradient(log_of_softmax, [200.0, 0.0], 0)
    assert loss == 0 and torch.isnan(grad).all()  # confident and correct: loss 0, gradient nan
    loss, grad = _loss_and_gradient(log_of_softmax, [200.0, 199.0, 0.0], 1)
    assert math.isfinite(loss) and loss > 1 and torch.isnan(grad).all()  # not the largest logit
    loss, grad = _loss_and_gradient(log_of_softmax, [200.0, 0.0], 1)
    assert loss == math.inf and torch.isnan(grad).all()  # the target underflowed
    loss, grad = _loss_and_gradient(stable, [200.0, 0.0], 0)
    assert loss == 0 and torch.equal(grad, torch.zeros(2))  # [0, 0] to float32 precision


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_from_the_underflow_on_the_gradient_is_nan_for_both_targets(dtype):
    i, s, losses = first_failure(log_of_softmax, dtype)
    logits = torch.stack([s, torch.zeros_like(s)], dim=1).requires_grad_()
    (-log_of_softmax(logits)[:, 0]).sum().backward()  # target 0: the loss in the table is 0
    broken = ~torch.isfinite(logits.grad).all(dim=1)
    assert int(broken.nonzero()[0]) == i  # the same s as the sweep's
    assert broken[i:].all() and (losses[i:, 0] == 0).all()


def test_log_softmax_at_s_100_is_x_minus_max_off_by_about_e_minus_100():
    x = torch.tensor([100.0, 0.0, -100.0], dtype=torch.float64)
    correction = math.log1p(math.exp(-100) + math.exp(-200))  # exact: x - max - correction
    assert correction > 0 and correction == pytest.approx(math.exp(-100), rel=1e-12)
    assert torch.equal(F.log_softmax(x, 0), x - x.max())  # even float64 returns x - max(x)
    assert torch.equal(F.log_softmax(x.float(), 0), x.float() - x.float().max())


def _neighbors(value, dtype):
    """The dtype values just below and just above value."""
    v = torch.tensor(value, dtype=dtype)
    below = v if v.item() < value else torch.nextafter(v, torch.tensor(-math.inf, dtype=dtype))
    above = v if v.item() > value else torch.nextafter(v, torch.tensor(math.inf, dtype=dtype))
    return below.item(), above.item()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hand_written_form_breaks_on_the_logit_values_whatever_the_gap(dtype):
    overflow, underflow = limits(dtype)
    _, high = _neighbors(overflow, dtype)
    safe, _ = _neighbors(overflow - math.log(2), dtype)  # two exp below max / 2: the sum is finite
    for gap in [0.0, 1.0, 5.0, 100.0]:  # any logit above log(max) breaks it, whatever the gap
        assert not torch.isfinite(by_hand(torch.tensor([[high, high - gap]], dtype=dtype))).all()
    for gap in [0.0, 1.0, 5.0]:  # (a gap of 100 would underflow the other class instead)
        assert torch.isfinite(by_hand(torch.tensor([[safe, safe - gap]], dtype=dtype))).all()
    # every logit below log(smallest subnormal / 2) = -underflow: every exp is 0, and 0/0 is nan
    below, above = _neighbors(-underflow, dtype)
    assert torch.isnan(by_hand(torch.tensor([[below, below]], dtype=dtype))).all()
    assert torch.isfinite(by_hand(torch.tensor([[above, above]], dtype=dtype))).all()


def test_float16_thresholds_in_the_prose_are_the_computed_limits():
    overflow, underflow = limits(torch.float16)
    assert _in_both_pages(f"およそ {int(overflow)} を超える", f"exceeds about {int(overflow)}")
    assert _in_both_pages(f"およそ {int(underflow)} を超える", f"of about {int(underflow)}")
    for shift in [-1000.0, 0.0, 1000.0]:  # the gap matters, not the values
        gap_ok = torch.tensor([[shift, shift - 17.0]]).half()
        gap_broken = torch.tensor([[shift, shift - 18.0]]).half()
        assert torch.isfinite(log_of_softmax(gap_ok)).all()
        assert not torch.isfinite(log_of_softmax(gap_broken)).all()
    # the page's three float16 rows
    assert torch.isnan(by_hand(torch.tensor([[12.0, 12.0]]).half())).all()  # gap 0, broken
    assert torch.isfinite(by_hand(torch.tensor([[1.0, -10.5]]).half())).all()  # gap 11.5, fine
    assert torch.isnan(by_hand(torch.tensor([[-20.0, -30.0]]).half())).all()  # all exp are 0
    assert torch.isfinite(log_of_softmax(torch.tensor([[-20.0, -30.0]]).half())).all()


def test_every_sample_ignored_makes_the_mean_loss_nan():
    torch.manual_seed(0)
    x = torch.randn(3, 4, requires_grad=True)
    loss = F.cross_entropy(x, torch.full((3,), -100))
    loss.backward()
    assert math.isnan(loss.item()) and torch.equal(x.grad, torch.zeros(3, 4))
    assert F.cross_entropy(x, torch.tensor([-100, 1, -100])).isfinite()  # one kept sample: fine


@pytest.mark.parametrize("fill", [-math.inf, torch.finfo(torch.float32).min], ids=["-inf", "min"])
def test_masking_the_target_class_gives_inf_or_about_minus_finfo_min(fill):
    x = torch.tensor([[2.0, fill, fill]])
    loss = F.cross_entropy(x, torch.tensor([1])).item()
    if fill == -math.inf:
        assert loss == math.inf
    else:
        assert math.isfinite(loss) and loss == pytest.approx(-fill, rel=1e-6)


def test_label_smoothing_spreads_the_target_onto_the_masked_classes():
    x, finfo_min = torch.tensor([[2.0, 0.0, -1.0]]), torch.finfo(torch.float32).min
    one, two = torch.tensor([[False, True, False]]), torch.tensor([[False, True, True]])
    target = torch.tensor([0])

    def smoothed(mask, fill):
        return F.cross_entropy(x.masked_fill(mask, fill), target, label_smoothing=0.1).item()

    assert smoothed(one, -math.inf) == math.inf
    assert 1e30 < smoothed(one, finfo_min) < math.inf  # huge but finite
    assert smoothed(two, finfo_min) == math.inf
    assert smoothed(one, -math.inf) != F.cross_entropy(x.masked_fill(one, -math.inf), target)
    assert math.isfinite(F.cross_entropy(x.masked_fill(one, -math.inf), target).item())


def test_finfo_min_overflows_to_minus_inf_under_a_temperature_below_one():
    row = torch.full((1, 3), torch.finfo(torch.float32).min)
    assert F.cross_entropy(row, torch.tensor([0])).item() == pytest.approx(math.log(3))
    divided = row / 0.5
    assert (divided == -math.inf).all()
    assert math.isnan(F.cross_entropy(divided, torch.tensor([0])).item())


def test_docs_say_autocast_should_wrap_the_loss_and_its_outputs_may_be_low_precision():
    doc = " ".join(torch.autocast.__doc__.split())
    assert "should wrap only the forward pass(es) of your network, including the loss" in doc
    assert "Floating-point Tensors produced in an autocast-enabled region may be ``float16``" in doc


def test_cpu_loss_after_the_autocast_block_stays_in_bfloat16():
    torch.manual_seed(0)
    model, features = torch.nn.Linear(16, 10), torch.randn(32, 16)
    target = torch.randint(0, 10, (32,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(features)
        inside = F.cross_entropy(logits, target)
    after = F.cross_entropy(logits, target)
    assert inside.dtype == torch.float32 and after.dtype == torch.bfloat16
    assert F.log_softmax(logits, dim=1).dtype == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA autocast needs a CUDA device")
def test_cuda_softmax_after_the_autocast_block_runs_on_float16_logits():
    out = _autocast_outputs("cuda", torch.float16)
    logits = out["logits"].detach()
    assert torch.softmax(logits, dim=1).dtype == torch.float16
    assert F.cross_entropy(logits, out["target"]).dtype == torch.float16


# --- Review r4: additive masks, softmax under CPU autocast, the cost of the float32 cast --------


def _masked_and_ignored(additive, drop_rows):
    x = torch.tensor([[2.0, 0.0, -1.0], [1.0, 3.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[False, True, True], [True, True, True]])  # row 1: every class masked
    target = torch.tensor([0, -100])
    keep = target != -100
    if additive:
        masked = x + torch.zeros(2, 3).masked_fill(mask, -math.inf)
    else:
        masked = x.masked_fill(mask, -math.inf)
    loss = (
        F.cross_entropy(masked[keep], target[keep])
        if drop_rows
        else F.cross_entropy(masked, target)
    )
    loss.backward()
    return loss, x.grad


@pytest.mark.parametrize("additive", [False, True], ids=["masked_fill", "additive"])
@pytest.mark.parametrize("drop_rows", [False, True], ids=["ignore_index", "rows dropped"])
def test_ignore_index_is_safe_for_a_fully_masked_row_only_with_masked_fill(additive, drop_rows):
    loss, grad = _masked_and_ignored(additive, drop_rows)
    assert math.isfinite(loss.item())
    assert torch.isfinite(grad[0]).all()
    if additive and not drop_rows:
        assert torch.isnan(grad[1]).all()  # the ignored row still sends nan back
    else:
        assert torch.equal(grad[1], torch.zeros(3))


def test_masked_fill_backward_sets_the_gradient_of_the_masked_positions_to_zero():
    x = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    x.masked_fill(mask, -math.inf).backward(torch.full((2, 3), math.nan))
    assert torch.equal(x.grad.isnan(), ~mask) and (x.grad[mask] == 0).all()


def test_the_float32_copy_of_low_precision_logits_is_a_new_n_by_c_tensor_twice_as_large():
    logits = torch.zeros(8, 1000, dtype=torch.bfloat16)
    copy = logits.float()
    assert copy.data_ptr() != logits.data_ptr()
    assert copy.nbytes == 2 * logits.nbytes == 8 * 1000 * 4


def test_the_memory_link_points_at_an_existing_anchor_of_the_large_vocabulary_page():
    link = "(../scale/large_vocabulary.md#memory)"  # with its parentheses: #memoryx must fail
    assert _in_both_pages(link, link)
    for suffix in (".md", ".en.md"):
        page = DOCS / "scale" / f"large_vocabulary{suffix}"
        assert "{#memory}" in page.read_text(encoding="utf-8")


def test_torch_where_replacing_the_logits_is_as_safe_as_masked_fill_for_ignore_index():
    # The page: ignore_index is safe when the -inf replaced the logits (masked_fill or torch.where).
    z = torch.tensor([[2.0, 0.0, -1.0], [1.0, 3.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    masked = torch.where(mask, torch.tensor(-math.inf), z)
    loss = F.cross_entropy(masked, torch.tensor([0, -100]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(z.grad, torch.zeros(2, 3))


def test_a_tie_at_the_top_is_not_a_zero_loss():
    # The page: "for example 0 when the target's logit is far above all the others": with a tie
    # at the top the naive loss is log 2, not 0, and its gradient is still nan.
    x = torch.tensor([[1000.0, 1000.0, 0.0]], requires_grad=True)
    loss = -torch.log(torch.softmax(x, dim=1))[0, 0]
    loss.backward()
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-6)
    assert torch.isnan(x.grad).any()
