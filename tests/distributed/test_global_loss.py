"""snippets/distributed/global_loss.py and ddp_check.py: the claims of their page.

docs/distributed/global_loss.md shows these functions and the numbers of ddp_check.py.
The two-process tests start their own processes (gloo on 127.0.0.1, a free port) and are
bounded by timeouts; they need no GPU.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from distributed.global_loss import (
    global_cross_entropy,
    global_mean_for_logging,
    micro_batch_cross_entropy,
    normalizer,
    step_normalizer,
)

from tests.support.pages import SNIPPETS

TIMEOUT = 300  # seconds for a whole multi-process run; a hung rendezvous fails the test


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def batch(seed=0, n=12, classes=5, ignored=(1, 4, 7)):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=generator, requires_grad=True)
    target = torch.randint(0, classes, (n,), generator=generator)
    target[list(ignored)] = -100
    return logits, target


WEIGHT = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])


# --- one process: the fallback and the normalizer ----------------------------------------------


@pytest.mark.parametrize("weight", [None, WEIGHT], ids=["no weight", "class weights"])
@pytest.mark.parametrize("ignored", [(), (1, 4, 7)], ids=["all valid", "padding"])
def test_without_a_process_group_it_is_f_cross_entropy_mean(weight, ignored):
    assert not torch.distributed.is_initialized()
    logits, target = batch(ignored=ignored)
    ours = global_cross_entropy(logits, target, weight=weight)
    (ours_grad,) = torch.autograd.grad(ours, logits)
    theirs = F.cross_entropy(logits, target, weight=weight)
    (theirs_grad,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=0, atol=1e-7)
    assert global_mean_for_logging(ours) == ours.item()


def test_it_accepts_a_custom_ignore_index_and_extra_dimensions():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)  # (N, C, d1): a sequence of 7 positions
    target = torch.randint(0, 5, (2, 7))
    target[0, 4:] = 3
    expected = F.cross_entropy(logits, target, ignore_index=3)
    actual = global_cross_entropy(logits, target, ignore_index=3)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_every_call_performs_one_all_reduce_so_every_rank_must_call_it(monkeypatch):
    import distributed.global_loss as module

    calls = []
    monkeypatch.setattr(module, "_distributed", lambda: True)
    monkeypatch.setattr(module.dist, "all_reduce", lambda tensor, group=None: calls.append(1))
    monkeypatch.setattr(module.dist, "get_world_size", lambda group=None: 2)
    logits, target = batch()
    for step in range(3):
        global_cross_entropy(logits, target)
        assert len(calls) == step + 1  # a collective at every call: a skipping rank blocks


def test_the_normalizer_is_the_denominator_of_the_mean():
    # reduction="mean" divides by the number of valid targets, or by the sum of their weights.
    logits, target = batch()
    assert normalizer(target).item() == 9  # 12 targets, 3 ignored
    for weight in (None, WEIGHT):
        summed = F.cross_entropy(logits, target, weight=weight, reduction="sum")
        mean = F.cross_entropy(logits, target, weight=weight)
        torch.testing.assert_close(summed / normalizer(target, weight=weight), mean)
    assert normalizer(target, weight=WEIGHT) == WEIGHT[target[target != -100]].sum()


def test_with_class_probability_targets_the_mean_divides_by_n_even_with_weights():
    # The normalizer is for class-index targets; soft targets are averaged over the batch size.
    logits, _ = batch(ignored=())
    soft = torch.softmax(torch.randn(12, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    for weight in (None, WEIGHT):
        summed = F.cross_entropy(logits, soft, weight=weight, reduction="sum")
        mean = F.cross_entropy(logits, soft, weight=weight)
        torch.testing.assert_close(mean * len(soft), summed)
    weighted = F.cross_entropy(logits, soft, weight=WEIGHT)
    assert not torch.allclose(weighted, weighted * len(soft) / (soft @ WEIGHT).sum())


def test_all_targets_ignored_gives_nan_like_f_cross_entropy():
    logits, target = batch(ignored=range(12))
    assert torch.isnan(F.cross_entropy(logits, target))
    assert torch.isnan(global_cross_entropy(logits, target))


# --- gradient accumulation -----------------------------------------------------------------------


def accumulation_case(lengths):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 5)
    x, y = torch.randn(4, 6, 8), torch.randint(0, 5, (4, 6))
    for row, length in enumerate(lengths):
        y[row, length:] = -100
    return model, x, y, [(x[:2], y[:2]), (x[2:], y[2:])]


def gradient_of(model, losses):
    model.zero_grad()
    for loss in losses:
        loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def token_ce(model, xb, yb, **kwargs):
    return F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), **kwargs)


@pytest.mark.parametrize("weight", [None, WEIGHT], ids=["no weight", "class weights"])
def test_naive_accumulation_differs_and_the_fix_matches_the_full_batch(weight):
    model, x, y, micro = accumulation_case([6, 5, 2, 1])  # 11 and 3 valid tokens
    assert [int(normalizer(yb)) for _, yb in micro] == [11, 3]
    full = gradient_of(model, [token_ce(model, x, y, weight=weight)])
    naive = gradient_of(model, [token_ce(model, xb, yb, weight=weight) / 2 for xb, yb in micro])
    total = step_normalizer([yb.flatten() for _, yb in micro], weight=weight)
    shares = [
        micro_batch_cross_entropy(model(xb).flatten(0, 1), yb.flatten(), total, weight=weight)
        for xb, yb in micro
    ]
    fixed = gradient_of(model, shares)
    assert (naive - full).abs().max() > 1e-2
    assert (fixed - full).abs().max() < 1e-6
    torch.testing.assert_close(sum(shares), token_ce(model, x, y, weight=weight))


def test_with_equal_counts_the_naive_mean_of_means_is_right():
    # The bug needs unequal numbers of valid targets: with 6 + 6 tokens the two agree.
    model, x, y, micro = accumulation_case([6, 0, 6, 0])
    full = gradient_of(model, [token_ce(model, x, y)])
    naive = gradient_of(model, [token_ce(model, xb, yb) / 2 for xb, yb in micro])
    assert (naive - full).abs().max() < 1e-6


# --- two processes (gloo on 127.0.0.1) ---------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_report(tmp_path_factory):
    output = tmp_path_factory.mktemp("ddp") / "report.json"
    script = SNIPPETS / "distributed" / "ddp_check.py"
    result = subprocess.run(
        [sys.executable, str(script), "--port", str(free_port()), "--json", str(output)],
        capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text())


def test_the_two_ranks_hold_different_numbers_of_valid_targets(ddp_report):
    assert ddp_report["valid targets per rank"] == [5, 2]


@pytest.mark.parametrize("case", ["ignore_index", "class weights"])
def test_ddp_naive_mean_is_wrong_and_global_cross_entropy_matches_the_full_batch(ddp_report, case):
    naive, fixed = ddp_report[f"{case} / naive"], ddp_report[f"{case} / global"]
    assert naive["max_grad_error"] > 1e-2
    assert fixed["max_grad_error"] < 1e-6
    assert naive["ranks_agree"] and fixed["ranks_agree"]  # DDP gives every rank one gradient
    # Logging: the mean of the ranks' means is not the global mean; the fix logs the true one.
    assert abs(naive["logged_loss"] - naive["full_batch_loss"]) > 1e-3
    assert fixed["logged_loss"] == pytest.approx(fixed["full_batch_loss"], abs=1e-6)


def test_ddp_with_accumulation_and_no_sync_matches_the_full_batch(ddp_report):
    row = ddp_report["accumulation / global"]
    assert row["max_grad_error"] < 1e-6 and row["ranks_agree"]
    assert row["logged_loss"] == pytest.approx(row["full_batch_loss"], abs=1e-6)
