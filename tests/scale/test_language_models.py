"""snippets/scale/language_models.py and the claims of docs/scale/language_models.md."""

import math

import pytest
import torch
import torch.nn.functional as F
from scale.language_models import TinyLM, causal_lm_loss, padded_batch


@pytest.fixture
def batch():
    torch.manual_seed(0)
    model = TinyLM(10, 16)
    ids, labels = padded_batch()
    return model, ids, labels, model(ids)


def test_position_t_predicts_token_t_plus_1(batch):
    _, _, labels, logits = batch
    b, t, _ = logits.shape
    manual = [
        -F.log_softmax(logits[i, j], dim=0)[labels[i, j + 1]]
        for i in range(b)
        for j in range(t - 1)
        if labels[i, j + 1] != -100
    ]
    torch.testing.assert_close(causal_lm_loss(logits, labels), torch.stack(manual).mean())
    assert len(manual) == (labels[:, 1:] != -100).sum() == 11


def test_reshape_and_permute_give_the_same_loss_and_view_fails_on_the_slice(batch):
    _, _, labels, logits = batch
    v, target = logits.shape[-1], labels[:, 1:]
    by_reshape = F.cross_entropy(logits[:, :-1].reshape(-1, v), target.reshape(-1))
    by_permute = F.cross_entropy(logits[:, :-1].permute(0, 2, 1), target)
    torch.testing.assert_close(by_reshape, by_permute)
    assert not logits[:, :-1].is_contiguous()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        logits[:, :-1].view(-1, v)
    # The strides forbid merging dims 0 and 1 only when there are several sequences.
    assert logits[:1, :-1].view(-1, v).shape == (logits.shape[1] - 1, v)
    with pytest.raises(RuntimeError, match="Expected target size"):
        F.cross_entropy(logits[:, :-1], target)


def test_when_t_equals_v_the_wrong_layout_gives_a_different_number_without_an_error():
    torch.manual_seed(0)
    square, target = torch.randn(2, 10, 10), torch.randint(10, (2, 10))
    right = F.cross_entropy(square.reshape(-1, 10), target.reshape(-1))
    wrong = F.cross_entropy(square, target)
    assert not torch.allclose(right, wrong)
    torch.testing.assert_close(
        wrong, F.cross_entropy(square.transpose(1, 2).reshape(-1, 10), target.reshape(-1))
    )


def test_token_mean_differs_from_sequence_mean_when_lengths_differ(batch):
    _, _, labels, logits = batch
    v, target = logits.shape[-1], labels[:, 1:]
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, v), target.reshape(-1), reduction="none"
    ).view(target.shape)
    mask = target != -100
    token_mean = (per_token * mask).sum() / mask.sum()
    sequence_mean = ((per_token * mask).sum(1) / mask.sum(1)).mean()
    torch.testing.assert_close(token_mean, causal_lm_loss(logits, labels))
    assert abs(token_mean - sequence_mean) > 1e-3
    # Equal lengths: the two means agree.
    full = labels.clone()
    full[full == -100] = 1
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, v), full[:, 1:].reshape(-1), reduction="none"
    )
    torch.testing.assert_close(per_token.mean(), per_token.view(3, -1).mean(1).mean())


def test_summing_micro_batches_and_dividing_by_the_total_count_gives_the_full_batch_mean(batch):
    _, _, labels, logits = batch
    halves = [slice(0, 1), slice(1, 3)]
    total = (labels[:, 1:] != -100).sum()
    summed = sum(causal_lm_loss(logits[s], labels[s], reduction="sum") for s in halves) / total
    torch.testing.assert_close(summed, causal_lm_loss(logits, labels))
    mean_of_means = sum(causal_lm_loss(logits[s], labels[s]) for s in halves) / 2
    assert abs(mean_of_means - summed) > 1e-3


def test_a_micro_batch_with_nothing_to_predict_is_nan_for_mean_and_zero_for_sum(batch):
    _, _, labels, logits = batch
    empty = torch.full((2, 1), 3)  # sequences of length 1: no next token to predict
    empty_logits = torch.randn(2, 1, logits.shape[-1])
    assert torch.isnan(causal_lm_loss(empty_logits, empty))
    assert causal_lm_loss(empty_logits, empty, reduction="sum") == 0
    padding = torch.full_like(labels[:1], -100)  # a micro-batch of padding only
    assert torch.isnan(causal_lm_loss(logits[:1], padding))
    assert causal_lm_loss(logits[:1], padding, reduction="sum") == 0
    mean_of_means = (causal_lm_loss(logits, labels) + causal_lm_loss(logits[:1], padding)) / 2
    assert torch.isnan(mean_of_means)
    total = (labels[:, 1:] != -100).sum()
    summed = causal_lm_loss(logits, labels, reduction="sum") + causal_lm_loss(
        logits[:1], padding, reduction="sum"
    )
    torch.testing.assert_close(summed / total, causal_lm_loss(logits, labels))


def test_perplexity_of_uniform_logits_is_the_vocabulary_size(batch):
    _, _, labels, logits = batch
    assert math.isclose(
        causal_lm_loss(torch.zeros_like(logits), labels).exp().item(), 10.0, rel_tol=1e-6
    )
    # The mean of per-sequence perplexities is not exp of the mean token loss (Jensen, and weights).
    target = labels[:, 1:]
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, 10), target.reshape(-1), reduction="none"
    ).view(target.shape)
    mask = target != -100
    per_sequence = ((per_token * mask).sum(1) / mask.sum(1)).exp().mean()
    assert per_sequence > causal_lm_loss(logits, labels).exp()


def test_label_smoothing_with_ignored_tokens_is_the_mixture_averaged_over_predicted_tokens(batch):
    _, _, labels, logits = batch
    eps = 0.1
    log_p = F.log_softmax(logits[:, :-1], dim=-1)
    target = labels[:, 1:]
    mask = target != -100
    nll = -log_p.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    by_hand = (((1 - eps) * nll - eps * log_p.mean(-1)) * mask).sum() / mask.sum()
    torch.testing.assert_close(causal_lm_loss(logits, labels, label_smoothing=eps), by_hand)
    logits = logits.detach().requires_grad_()
    causal_lm_loss(logits, labels, label_smoothing=eps).backward()
    no_target = torch.cat([~mask, torch.ones(3, 1, dtype=torch.bool)], dim=1)
    assert logits.grad[no_target].abs().max() == 0
    assert logits.grad[~no_target].abs().min() > 0


@pytest.mark.parametrize(
    ("logits", "labels", "argument"),
    [
        (torch.zeros(3, 8), torch.zeros(3, 8, dtype=torch.long), "logits"),
        (torch.zeros(3, 8, 10), torch.zeros(3, 7, dtype=torch.long), "labels"),
    ],
)
def test_bad_shapes_get_an_error_naming_the_argument(logits, labels, argument):
    with pytest.raises(ValueError, match=f"^{argument} must have shape"):
        causal_lm_loss(logits, labels)


def test_masking_by_pad_id_also_ignores_a_real_token_with_the_same_id():
    ids, labels = padded_batch(pad_id=9)  # 9 is also a real token of the first sequence
    real = ids[0] == 9
    assert real.any() and (labels[0][real] == -100).all()
    ids, labels = padded_batch(pad_id=0)  # 0 is never a real token: the first sequence is kept
    assert (labels[0] == ids[0]).all()
