"""Every statement of docs/basics/nll_vs_cross_entropy*.md about PyTorch, asserted."""

import math

import pytest
import torch
import torch.nn.functional as F
from basics.nll_vs_cross_entropy import smoothed_weighted_cross_entropy

SEEDS = [0, 1, 2]


def batch(seed, n=6, c=4, scale=2.0):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=generator)
    target = torch.randint(0, c, (n,), generator=generator)
    weight = torch.rand(c, generator=generator) + 0.1
    return logits, target, weight


# --- Definitions -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_loss_only_picks_and_negates_the_target_entry(seed):
    x, y, w = batch(seed)
    rows = torch.arange(len(y))
    assert torch.equal(F.nll_loss(x, y, reduction="none"), -x[rows, y])
    assert torch.allclose(F.nll_loss(x, y, weight=w, reduction="none"), -w[y] * x[rows, y])


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_per_sample_formula(seed):
    x, y, w = batch(seed)
    rows = torch.arange(len(y))
    expected = -w[y] * (x[rows, y] - torch.logsumexp(x, dim=1))
    assert torch.allclose(F.cross_entropy(x, y, weight=w, reduction="none"), expected, atol=1e-6)


@pytest.mark.parametrize("loss", [F.nll_loss, F.cross_entropy])
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_divides_by_the_sum_of_target_weights_and_sum_adds(loss, seed):
    x, y, w = batch(seed)
    per_sample = loss(x, y, weight=w, reduction="none")
    assert torch.allclose(loss(x, y, weight=w), per_sample.sum() / w[y].sum())
    assert torch.allclose(loss(x, y, weight=w, reduction="sum"), per_sample.sum())
    assert torch.allclose(loss(x, y), loss(x, y, reduction="none").sum() / len(y))


def test_documentation_says_what_each_loss_expects():
    assert "log-probabilities of each class" in " ".join(torch.nn.NLLLoss.__doc__.split())
    assert "unnormalized logits for each class" in " ".join(
        torch.nn.CrossEntropyLoss.__doc__.split()
    )


# --- CrossEntropyLoss is log_softmax + NLLLoss, bit for bit ------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": True}, {"ignore_index": 1}],
    ids=["mean", "sum", "none", "weight", "ignore_index"],
)
def test_cross_entropy_equals_nll_of_log_softmax_bit_for_bit(seed, kwargs):
    x, y, w = batch(seed)
    if kwargs.get("weight"):
        kwargs = {"weight": w}
    ce = F.cross_entropy(x, y, **kwargs)
    nll = F.nll_loss(F.log_softmax(x, dim=1), y, **kwargs)
    assert torch.equal(ce, nll)


def test_bit_for_bit_equality_holds_for_spatial_inputs():
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    w = torch.tensor([0.5, 1.0, 2.0])
    assert torch.equal(
        F.cross_entropy(x, y, weight=w), F.nll_loss(F.log_softmax(x, 1), y, weight=w)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax_rows_are_log_probabilities(seed):
    x, _, _ = batch(seed)
    assert torch.allclose(F.log_softmax(x, dim=1).exp().sum(dim=1), torch.ones(len(x)))


# --- The difference is logsumexp, not a sign ----------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_difference_between_ce_and_nll_of_logits_is_weighted_logsumexp(seed):
    x, y, w = batch(seed)
    difference = F.cross_entropy(x, y, weight=w, reduction="none") - F.nll_loss(
        x, y, weight=w, reduction="none"
    )
    assert torch.allclose(difference, w[y] * torch.logsumexp(x, dim=1), atol=1e-6)


# --- Probability targets ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_probability_target_formula_with_weight(seed):
    x, _, w = batch(seed)
    q = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)), dim=1)
    per_sample = -(w * q * F.log_softmax(x, dim=1)).sum(dim=1)
    assert torch.allclose(F.cross_entropy(x, q, weight=w, reduction="none"), per_sample, atol=1e-6)
    assert torch.allclose(F.cross_entropy(x, q), -(q * F.log_softmax(x, 1)).sum(1).mean())


@pytest.mark.parametrize("seed", SEEDS)
def test_one_hot_float_target_equals_index_target_up_to_rounding(seed):
    x, y, _ = batch(seed)
    one_hot = F.one_hot(y, x.shape[1]).float()
    assert torch.allclose(F.cross_entropy(x, one_hot), F.cross_entropy(x, y), rtol=1e-6)


def test_ignore_index_raises_for_probability_targets():
    x, y, _ = batch(0)
    q = F.one_hot(y, x.shape[1]).float()
    with pytest.raises(
        RuntimeError, match="ignore_index is not supported for floating point target"
    ):
        F.cross_entropy(x, q, ignore_index=1)
    F.cross_entropy(x, q, ignore_index=-100)  # the default value is accepted


def test_weight_and_label_smoothing_work_with_probability_targets():
    x, _, w = batch(0)
    q = torch.softmax(torch.randn(x.shape), dim=1)
    eps, c = 0.1, x.shape[1]
    assert torch.isfinite(F.cross_entropy(x, q, weight=w))
    smoothed = F.cross_entropy(x, q, label_smoothing=eps)
    assert torch.allclose(smoothed, F.cross_entropy(x, q * (1 - eps) + eps / c))


def test_nll_loss_rejects_probability_targets():
    x, y, _ = batch(0)
    q = F.one_hot(y, x.shape[1]).float()
    with pytest.raises(
        RuntimeError, match="0D or 1D target tensor expected, multi-target not supported"
    ):
        F.nll_loss(F.log_softmax(x, 1), q)


def test_probability_targets_are_not_validated():
    x, _, _ = batch(0)
    q = torch.softmax(torch.randn(x.shape), dim=1)
    assert torch.allclose(F.cross_entropy(x, 2 * q), 2 * F.cross_entropy(x, q))
    F.cross_entropy(x, -q)  # not even negative values raise


def test_out_of_range_index_raises_index_error():
    x = torch.randn(4, 3)
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F.cross_entropy(x, torch.tensor([0, 3, 1, 2]))


# --- Shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_shape", "target_shape"),
    [((3,), ()), ((4, 3), (4,)), ((2, 3, 4, 5), (2, 4, 5)), ((2, 3, 4), (2, 4))],
)
def test_class_dimension_is_dimension_one_and_target_drops_it(input_shape, target_shape):
    x = torch.randn(input_shape)
    y = torch.randint(0, 3, target_shape)
    assert F.cross_entropy(x, y, reduction="none").shape == target_shape
    assert F.nll_loss(F.log_softmax(x, dim=1 if x.dim() > 1 else 0), y, reduction="none").shape == (
        target_shape
    )


def test_sequence_logits_need_the_classes_in_dimension_one():
    torch.manual_seed(0)
    logits, tokens = torch.randn(2, 7, 11), torch.randint(0, 11, (2, 7))
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 11\], got \[2, 7\]"):
        F.cross_entropy(logits, tokens)
    permuted = F.cross_entropy(logits.permute(0, 2, 1), tokens)
    flattened = F.cross_entropy(logits.reshape(-1, 11), tokens.reshape(-1))
    assert torch.allclose(permuted, flattened)


def test_sequence_layout_mistake_is_silent_when_length_equals_classes():
    torch.manual_seed(0)
    logits, tokens = torch.randn(2, 11, 11), torch.randint(0, 11, (2, 11))
    wrong = F.cross_entropy(logits, tokens)  # no error
    right = F.cross_entropy(logits.permute(0, 2, 1), tokens)
    assert not torch.allclose(wrong, right)


# --- Weighted mean ------------------------------------------------------------------------------


def test_weighted_mean_is_not_divided_by_n():
    torch.manual_seed(0)
    x, y = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    w = torch.tensor([0.2, 1.0, 3.0])
    per_sample = F.cross_entropy(x, y, weight=w, reduction="none")
    mean = F.cross_entropy(x, y, weight=w)
    assert torch.allclose(mean, per_sample.sum() / w[y].sum())
    assert not torch.allclose(mean, per_sample.sum() / len(y))


@pytest.mark.parametrize("seed", SEEDS)
def test_probability_targets_divide_by_n_even_with_weight(seed):
    x, y, w = batch(seed)
    one_hot = F.one_hot(y, x.shape[1]).float()
    per_sample = F.cross_entropy(x, one_hot, weight=w, reduction="none")
    assert torch.allclose(F.cross_entropy(x, one_hot, weight=w), per_sample.sum() / len(y))
    assert not torch.allclose(
        F.cross_entropy(x, one_hot, weight=w), F.cross_entropy(x, y, weight=w)
    )


def test_probability_targets_divide_by_every_element_for_spatial_inputs():
    torch.manual_seed(0)
    x, q = torch.randn(2, 3, 4, 5), torch.softmax(torch.randn(2, 3, 4, 5), dim=1)
    assert torch.allclose(F.cross_entropy(x, q), -(q * F.log_softmax(x, 1)).sum(1).mean())


# --- ignore_index -------------------------------------------------------------------------------


def test_ignored_targets_add_zero_and_leave_the_denominator():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, -100, 1, -100])
    per_sample = F.cross_entropy(x, y, reduction="none")
    assert per_sample[1] == 0 and per_sample[3] == 0
    assert torch.allclose(F.cross_entropy(x, y), per_sample.sum() / 2)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [None, torch.tensor([1.0, 2.0, 3.0])])
def test_every_target_ignored_gives_nan_mean_and_zero_sum(label_smoothing, weight):
    x, y = torch.randn(4, 3), torch.full((4,), -100)
    kwargs = {"weight": weight, "label_smoothing": label_smoothing}
    assert torch.isnan(F.cross_entropy(x, y, **kwargs))
    assert F.cross_entropy(x, y, reduction="sum", **kwargs).item() == 0.0


def test_dividing_the_sum_by_the_clamped_count_avoids_nan():
    x = torch.randn(4, 3)
    for y in [torch.full((4,), -100), torch.tensor([0, -100, 2, -100])]:
        count = (y != -100).sum()
        safe = F.cross_entropy(x, y, reduction="sum") / count.clamp(min=1)
        assert torch.isfinite(safe)
        if count > 0:
            assert torch.allclose(safe, F.cross_entropy(x, y))


# --- label_smoothing ----------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.1, 0.3])
@pytest.mark.parametrize("seed", SEEDS)
def test_label_smoothing_gives_eps_over_c_to_every_class(seed, eps):
    x, y, _ = batch(seed)
    c = x.shape[1]
    target = (1 - eps) * F.one_hot(y, c).float() + eps / c
    smoothed = F.cross_entropy(x, y, label_smoothing=eps)
    assert torch.allclose(smoothed, F.cross_entropy(x, target))
    # the same, as (1 - eps) * CE + eps * mean over classes of -log p
    uniform_term = -F.log_softmax(x, dim=1).mean(dim=1).mean()
    assert torch.allclose(smoothed, (1 - eps) * F.cross_entropy(x, y) + eps * uniform_term)
    # and not eps / (C - 1) to the other classes only
    other = (1 - eps) * F.one_hot(y, c).float() + eps / (c - 1) * (1 - F.one_hot(y, c).float())
    assert not torch.allclose(smoothed, F.cross_entropy(x, other))


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_label_smoothing_formula_uses_every_class_weight(seed):
    x, y, w = batch(seed)
    eps, c = 0.1, x.shape[1]
    log_p = F.log_softmax(x, dim=1)
    rows = torch.arange(len(y))
    per_sample = (1 - eps) * w[y] * -log_p[rows, y] + eps / c * (w * -log_p).sum(dim=1)
    assert torch.allclose(
        F.cross_entropy(x, y, weight=w, label_smoothing=eps, reduction="none"),
        per_sample,
        atol=1e-6,
    )
    assert torch.allclose(
        F.cross_entropy(x, y, weight=w, label_smoothing=eps), per_sample.sum() / w[y].sum()
    )


def _best_p0(loss_of_candidates):
    p0 = torch.linspace(0.001, 0.999, 999)
    candidates = torch.stack([p0, 1 - p0], dim=1).log()
    target = torch.zeros(999, dtype=torch.long)
    return p0[loss_of_candidates(candidates, target).argmin()].item()


@pytest.mark.parametrize("w", [[1.0, 1.0], [0.1, 0.9], [0.9, 0.1]])
def test_class_weights_move_the_smoothed_optimum_to_w_times_q(w):
    weight, q = torch.tensor(w), torch.tensor([0.95, 0.05])
    best = _best_p0(
        lambda c, t: F.cross_entropy(c, t, weight=weight, label_smoothing=0.1, reduction="none")
    )
    expected = (weight * q / (weight * q).sum())[0].item()
    assert best == pytest.approx(expected, abs=1e-3)
    if w == [0.1, 0.9]:
        assert best == pytest.approx(0.679, abs=1e-3)


def test_workaround_keeps_the_smoothed_optimum_and_matches_plain_weighted_ce():
    weight = torch.tensor([0.1, 0.9])
    best = _best_p0(
        lambda c, t: torch.stack(
            [
                smoothed_weighted_cross_entropy(c[i : i + 1], t[i : i + 1], weight, 0.1)
                for i in range(len(t))
            ]
        )
    )
    assert best == pytest.approx(0.95, abs=1e-3)
    x, y, w = batch(0)
    assert torch.allclose(
        smoothed_weighted_cross_entropy(x, y, w, 0.0), F.cross_entropy(x, y, weight=w)
    )


def test_eps_over_c_value_of_the_page_example():
    eps, c = 0.1, 3
    assert (1 - eps) + eps / c == pytest.approx(0.9333, abs=1e-4)
    assert math.isclose(eps / c, 0.0333, abs_tol=1e-4)


# --- ignore_index with probability targets, KLDivLoss, all-ignored batches -----------------------


@pytest.mark.parametrize("ignore_index", [-1, -100, -7])
def test_a_negative_ignore_index_is_accepted_for_probability_targets_and_changes_nothing(
    ignore_index,
):
    logits, _, _ = batch(0)
    probs = torch.softmax(batch(1)[0], dim=1)
    with_it = F.cross_entropy(logits, probs, ignore_index=ignore_index)
    assert torch.equal(with_it, F.cross_entropy(logits, probs))


@pytest.mark.parametrize("ignore_index", [0, 1, 3])
def test_a_non_negative_ignore_index_raises_for_probability_targets(ignore_index):
    logits, _, _ = batch(0)
    probs = torch.softmax(batch(1)[0], dim=1)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point"):
        F.cross_entropy(logits, probs, ignore_index=ignore_index)


@pytest.mark.parametrize("seed", SEEDS)
def test_kl_div_batchmean_is_cross_entropy_minus_target_entropy_with_the_same_gradient(seed):
    logits, _, _ = batch(seed)
    q = torch.softmax(batch(seed + 10)[0], dim=1)
    x = logits.clone().requires_grad_()
    ce = F.cross_entropy(x, q)
    kl = F.kl_div(F.log_softmax(x, dim=1), q, reduction="batchmean")
    entropy = -(q * q.log()).sum(dim=1).mean()
    torch.testing.assert_close(kl + entropy, ce)
    (g_ce,) = torch.autograd.grad(ce, x, retain_graph=True)
    (g_kl,) = torch.autograd.grad(kl, x)
    torch.testing.assert_close(g_ce, g_kl)
    mean = F.kl_div(F.log_softmax(logits, dim=1), q)  # the default divides by N * C
    torch.testing.assert_close(mean * q.shape[1], kl.detach())
    assert F.kl_div(q.log(), q, reduction="batchmean").abs().item() < 1e-6  # 0 when p == q


def test_an_all_ignored_mean_is_nan_but_its_gradient_is_exactly_zero():
    x = torch.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(x, torch.full((4,), -100))
    loss.backward()
    assert math.isnan(loss.item())
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize(
    "make, moves",
    [
        (lambda p: torch.optim.SGD(p, lr=0.1), False),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), True),
        (lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1), True),
        (lambda p: torch.optim.Adam(p, lr=0.1), True),
        (lambda p: torch.optim.AdamW(p, lr=0.1), True),
    ],
    ids=["SGD", "momentum", "weight decay", "Adam", "AdamW"],
)
def test_a_zero_gradient_step_after_an_all_ignored_batch_still_moves_the_weights(make, moves):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3)
    optimizer = make(model.parameters())
    F.cross_entropy(model(torch.randn(4, 3)), torch.tensor([0, 1, 2, 1])).backward()
    optimizer.step()
    optimizer.zero_grad()
    before = model.weight.detach().clone()
    ignored = torch.full((4,), -100)
    summed = F.cross_entropy(model(torch.randn(4, 3)), ignored, reduction="sum")
    (summed / (ignored != -100).sum().clamp(min=1)).backward()
    assert torch.equal(model.weight.grad, torch.zeros_like(model.weight))
    optimizer.step()
    assert (not torch.equal(model.weight, before)) is moves


# --- Review basicsA: denominators, label_smoothing's own path, KLDivLoss caveats, padding ---------


@pytest.mark.parametrize("loss", [F.nll_loss, F.cross_entropy])
def test_mean_divides_by_the_class_weights_of_the_kept_targets(loss):
    x, y, w = batch(0)
    y[1] = y[4] = -100  # two ignored targets
    kept = y != -100
    total = loss(x, y, reduction="sum")
    assert torch.allclose(loss(x, y), total / kept.sum())  # no weight: the kept count, not N
    assert not torch.allclose(loss(x, y), total / len(y))
    weighted_total = loss(x, y, weight=w, reduction="sum")
    assert torch.allclose(loss(x, y, weight=w), weighted_total / w[y[kept]].sum())
    assert not torch.allclose(loss(x, y, weight=w), weighted_total / kept.sum())
    x, y, _ = batch(1)
    ones = torch.ones(x.shape[1])  # weight given, all ones, nothing ignored: N
    assert torch.allclose(loss(x, y, weight=ones), loss(x, y, reduction="sum") / len(y))


@pytest.mark.parametrize("seed", SEEDS)
def test_with_label_smoothing_cross_entropy_is_not_nll_of_log_softmax(seed):
    x, y, _ = batch(seed)
    smoothed = F.cross_entropy(x, y, label_smoothing=0.1)
    assert not torch.allclose(smoothed, F.nll_loss(F.log_softmax(x, dim=1), y))


def test_kl_div_mean_warns_and_batchmean_differs_from_cross_entropy_on_spatial_input():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(4, 3), dim=1)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(F.log_softmax(torch.randn(4, 3), dim=1), q, reduction="mean")
    x = torch.randn(2, 3, 4, 5, requires_grad=True)  # (N, C, d1, d2): d1 * d2 = 20
    q = torch.softmax(torch.randn(2, 3, 4, 5), dim=1)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(x, q), x)
    (g_kl,) = torch.autograd.grad(F.kl_div(F.log_softmax(x, 1), q, reduction="batchmean"), x)
    assert not torch.allclose(g_ce, g_kl)
    torch.testing.assert_close(g_ce * 20, g_kl)


def test_the_workaround_drops_ignored_targets_where_weight_of_target_would_raise():
    torch.manual_seed(0)
    x, y = torch.randn(5, 2), torch.tensor([0, 1, -100, 1, 0])
    weight = torch.tensor([0.1, 0.9])
    with pytest.raises(IndexError, match="index -100 is out of bounds"):
        weight[y]
    torch.testing.assert_close(
        smoothed_weighted_cross_entropy(x, y, weight, 0.0), F.cross_entropy(x, y, weight=weight)
    )
    smoothed = smoothed_weighted_cross_entropy(x, y, weight, 0.1)
    kept = y != -100
    torch.testing.assert_close(
        smoothed, smoothed_weighted_cross_entropy(x[kept], y[kept], weight, 0.1)
    )


def test_the_kept_weight_sum_is_zero_for_an_all_ignored_batch_and_needs_the_same_guard():
    x, y, w = batch(0)
    y = torch.full_like(y, -100)
    kept_weight = w[y[y != -100]].sum()
    weighted_sum = F.cross_entropy(x, y, weight=w, reduction="sum")
    assert kept_weight.item() == 0.0 and weighted_sum.item() == 0.0
    assert torch.isnan(weighted_sum / kept_weight)  # unguarded: 0 / 0
    assert (weighted_sum / kept_weight.clamp(min=torch.finfo(w.dtype).tiny)).item() == 0.0


# --- Review r4: target dtypes, the KLDivLoss block -----------------------------------------------


@pytest.mark.parametrize("loss", [F.nll_loss, F.cross_entropy], ids=["nll_loss", "cross_entropy"])
def test_on_the_cpu_uint8_class_indices_work_as_well_as_int64_and_int32_do_not(loss):
    torch.manual_seed(0)
    x, y = F.log_softmax(torch.randn(5, 3), dim=1), torch.tensor([0, 2, 1, 2, 0])
    torch.testing.assert_close(loss(x, y.to(torch.uint8)), loss(x, y), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        loss(x, y.int())


def test_the_kl_div_block_shows_the_mean_warning_and_a_gradient_ratio_of_d1():
    from basics import nll_vs_cross_entropy as page

    assert page.caught[0].category is UserWarning
    assert "'batchmean' divides only by the batch size" in str(page.caught[0].message)
    d1 = page.x3.shape[2]
    torch.testing.assert_close(page.ratio, torch.full_like(page.ratio, float(d1)))
