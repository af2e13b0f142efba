"""The claims of the home page (docs/index.md), on its code snippets/index.py."""

import contextlib
import io
import runpy

import pytest
import torch
import torch.nn.functional as F
from site_pages import SNIPPETS


@pytest.fixture(scope="module")
def page():
    """The snippet's variables and printed lines, as the page's session runs it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        namespace = runpy.run_path(str(SNIPPETS / "index.py"))
    return namespace, out.getvalue().splitlines()


def test_cross_entropy_of_logits_equals_nll_of_log_softmax_bit_for_bit(page):
    namespace, printed = page
    logits, target = namespace["logits"], namespace["target"]
    assert target.dtype == torch.int64
    assert torch.equal(namespace["ce"], F.nll_loss(F.log_softmax(logits, dim=1), target))
    assert torch.equal(namespace["ce"], namespace["nll"])
    assert "bit-for-bit equal: True" in printed


def test_log_softmax_gives_log_probabilities_not_logits(page):
    log_probs = page[0]["log_probs"]
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(len(log_probs)))


def test_logits_into_nll_loss_is_minus_the_mean_true_class_logit(page):
    namespace, printed = page
    logits, target = namespace["logits"], namespace["target"]
    by_hand = -sum(logits[i, t] for i, t in enumerate(target.tolist())) / len(target)
    torch.testing.assert_close(namespace["wrong"], by_hand)
    assert not torch.isclose(namespace["wrong"], namespace["ce"])
    assert f"nll_loss(logits), the mistake  = {namespace['wrong'].item()}" in printed


def test_the_mistaken_value_has_no_lower_bound_and_raises_no_error(page):
    logits, target = page[0]["logits"], page[0]["target"]
    scaled = logits.clone()
    scaled[range(len(target)), target] = 1e6  # a large true-class logit
    assert F.nll_loss(scaled, target).item() == pytest.approx(-1e6)
    assert F.cross_entropy(scaled, target).item() >= 0  # the real loss is never negative


def test_cross_entropy_takes_class_probabilities_nll_loss_takes_indices_only(page):
    logits, target = page[0]["logits"], page[0]["target"]
    one_hot = F.one_hot(target, logits.shape[1]).float()
    torch.testing.assert_close(F.cross_entropy(logits, one_hot), F.cross_entropy(logits, target))
    with pytest.raises(RuntimeError):
        F.nll_loss(F.log_softmax(logits, dim=1), one_hot)
