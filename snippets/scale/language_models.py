"""Cross-entropy for language models: shifted targets, padding, averaging over tokens, perplexity.

Copy this file: it needs only PyTorch. `causal_lm_loss` is the next-token loss of logits
(B, T, V) for token ids (B, T) with padding marked by `ignore_index`. Run the file to see the
examples of its page.
"""

# --8<-- [start:causal_lm_loss]
import torch
import torch.nn.functional as F
from torch import Tensor


def causal_lm_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Next-token cross-entropy: the logits at position t predict labels[:, t + 1].

    logits (B, T, V), labels (B, T) int64 with ignore_index where there is no token to predict
    (padding). "mean" divides by the number of predicted tokens in the whole batch.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {tuple(logits.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(
            f"labels must have shape {tuple(logits.shape[:2])} (B, T), got {tuple(labels.shape)}"
        )
    shift_logits = logits[:, :-1]  # positions 0 .. T-2 predict ...
    shift_labels = labels[:, 1:]  # ... tokens 1 .. T-1
    return F.cross_entropy(
        shift_logits.reshape(-1, logits.shape[-1]),  # (B·(T-1), V): reshape copies if needed
        shift_labels.reshape(-1),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


# --8<-- [end:causal_lm_loss]


# --8<-- [start:tiny_model]
class TinyLM(torch.nn.Module):
    """An embedding and a linear head: enough to produce (B, T, V) logits with gradients."""

    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(torch.tanh(self.embed(ids)))


def padded_batch(pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Three sequences of different lengths, right-padded with pad_id; labels mark padding."""
    ids = torch.tensor(
        [
            [5, 3, 8, 2, 7, 4, 9, 1],
            [6, 2, 9, 4, pad_id, pad_id, pad_id, pad_id],
            [3, 7, pad_id, pad_id, pad_id, pad_id, pad_id, pad_id],
        ]
    )
    labels = ids.masked_fill(ids == pad_id, -100)
    return ids, labels


# --8<-- [end:tiny_model]


if __name__ == "__main__":
    # --8<-- [start:shift]
    torch.manual_seed(0)
    V = 10
    model = TinyLM(V, 16)
    ids, labels = padded_batch()
    logits = model(ids)  # (B, T, V) = (3, 8, 10)
    loss = causal_lm_loss(logits, labels)
    predicted = (labels[:, 1:] != -100).sum().item()
    print(f"logits {tuple(logits.shape)}, predicted tokens {predicted}, loss {loss.item():.4f}")
    print("labels[:, 1:] =", labels[:, 1:].tolist())
    # --8<-- [end:shift]

    # --8<-- [start:reshape_vs_permute]
    target = labels[:, 1:]
    by_reshape = F.cross_entropy(logits[:, :-1].reshape(-1, V), target.reshape(-1))
    by_permute = F.cross_entropy(logits[:, :-1].permute(0, 2, 1), target)  # classes at dim=1
    print(f"reshape to (B·(T-1), V): {by_reshape.item():.6f}")
    print(f"permute to (B, V, T-1):  {by_permute.item():.6f}")
    try:
        logits[:, :-1].view(-1, V)
    except RuntimeError as error:
        print("view on the sliced logits:", str(error).split(".")[0])
    try:
        F.cross_entropy(logits[:, :-1], target)  # (B, T-1, V) read as (N, C, d1)
    except (RuntimeError, ValueError) as error:
        print("(B, T, V) passed as is:", error)
    # --8<-- [end:reshape_vs_permute]

    # --8<-- [start:silent_transpose]
    torch.manual_seed(0)
    square = torch.randn(2, V, V)  # T == V: the wrong layout is not caught
    square_target = torch.randint(V, (2, V))
    right = F.cross_entropy(square.reshape(-1, V), square_target.reshape(-1))
    wrong = F.cross_entropy(square, square_target)  # softmax over the T axis
    print(f"(B, T, V) with T == V: right {right.item():.4f}, passed as is {wrong.item():.4f}")
    # --8<-- [end:silent_transpose]

    # --8<-- [start:averaging]
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, V), target.reshape(-1), reduction="none"
    ).view(target.shape)
    mask = target != -100
    token_mean = (per_token * mask).sum() / mask.sum()
    sequence_mean = ((per_token * mask).sum(dim=1) / mask.sum(dim=1)).mean()
    print("predicted tokens per sequence:", mask.sum(dim=1).tolist())
    print(f"token-level mean    {token_mean.item():.6f} (= causal_lm_loss {loss.item():.6f})")
    print(f"sequence-level mean {sequence_mean.item():.6f}")
    # --8<-- [end:averaging]

    # --8<-- [start:accumulation]
    halves = [slice(0, 1), slice(1, 3)]  # two micro-batches: 7 and 3 + 1 predicted tokens
    mean_of_means = sum(causal_lm_loss(logits[s], labels[s]) for s in halves) / len(halves)
    total = mask.sum()
    summed = sum(causal_lm_loss(logits[s], labels[s], reduction="sum") for s in halves) / total
    print(f"mean of the micro-batch means {mean_of_means.item():.6f}")
    print(f"sum over micro-batches / {total.item()} {summed.item():.6f} (the full-batch mean)")
    # --8<-- [end:accumulation]

    # --8<-- [start:perplexity]
    print(f"perplexity of the tiny model: exp({loss.item():.4f}) = {loss.exp().item():.3f}")
    uniform = torch.zeros_like(logits)  # every token equally likely
    print(f"perplexity of uniform logits: {causal_lm_loss(uniform, labels).exp().item():.3f}")
    per_sequence = ((per_token * mask).sum(dim=1) / mask.sum(dim=1)).exp()
    print(f"mean of per-sequence perplexities: {per_sequence.mean().item():.3f}")
    # --8<-- [end:perplexity]

    # --8<-- [start:label_smoothing]
    epsilon = 0.1
    smoothed = causal_lm_loss(logits, labels, label_smoothing=epsilon)
    log_p = F.log_softmax(logits[:, :-1], dim=-1)
    nll = -log_p.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    uniform_term = -log_p.mean(dim=-1)
    by_hand = (((1 - epsilon) * nll + epsilon * uniform_term) * mask).sum() / mask.sum()
    print(f"label_smoothing={epsilon}: {smoothed.item():.6f}, by hand {by_hand.item():.6f}")
    model.zero_grad()
    logits = model(ids)
    logits.retain_grad()
    causal_lm_loss(logits, labels, label_smoothing=epsilon).backward()
    ignored = torch.cat([labels[:, 1:] == -100, torch.ones(3, 1, dtype=torch.bool)], dim=1)
    print(
        "largest |gradient| at positions with nothing to predict:",
        logits.grad[ignored].abs().max().item(),
    )
    # --8<-- [end:label_smoothing]
