"""Every statement of docs/basics/numerical_stability*.md about PyTorch, asserted."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from basics.numerical_stability import FORMS, by_hand, log_of_softmax, stable, sweep

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


def test_one_extreme_sample_makes_the_batch_loss_and_every_gradient_non_finite():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    features = torch.randn(8, 4)
    features[0] *= 1000  # one sample with extreme logits
    target = torch.randint(0, 3, (8,))
    logits = model(features)
    naive_loss = -log_of_softmax(logits).gather(1, target[:, None]).mean()
    assert not torch.isfinite(naive_loss)
    naive_loss.backward()
    assert all(torch.isnan(p.grad).all() for p in model.parameters())
    model.zero_grad()
    F.cross_entropy(model(features), target).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


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
