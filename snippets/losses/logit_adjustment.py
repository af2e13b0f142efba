"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021) and post-hoc logit adjustment.

Copy this file: it needs only PyTorch. `logit_adjusted_cross_entropy` is F.cross_entropy of
`input + tau * log(class_prior)`; `post_hoc_logit_adjustment` corrects a model trained with
plain cross-entropy at prediction time. Run the file to see the examples of its page.
"""

# --8<-- [start:logit_adjusted_cross_entropy]
import math

import torch
from torch import Tensor


def logit_adjusted_cross_entropy(
    input: Tensor,
    target: Tensor,
    class_prior: Tensor,
    *,
    tau: float = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy of `input + tau * log(class_prior)`, for logits `input` (N, C, d1, ..., dk)
    and class indices `target` (N, d1, ..., dk).

    `class_prior` holds one positive value per class: the training-set class frequencies, or
    the class counts (a constant factor shifts every logit equally and cancels in the softmax).
    It is a constant: no gradient flows into it.
    """
    if not 0 <= tau < math.inf:
        raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
    index, valid = _check_inputs(input, target, None, ignore_index, reduction)
    # The bias tau * log(prior) is added in float32 for float16/bfloat16 input.
    bias = None if tau == 0 else tau * _log_class_prior(class_prior, input)
    log_p = _true_class_log_prob(input, index, bias)  # adjusted log p_y
    loss = -log_p.masked_fill(~valid, 0.0)  # ignored elements: zero loss and zero gradient
    return _reduce(loss, index, valid, None, reduction).to(input.dtype)


def post_hoc_logit_adjustment(logits: Tensor, class_prior: Tensor, *, tau: float = 1.0) -> Tensor:
    """Return `logits - tau * log(class_prior)`: its argmax over dim 1 is the prediction
    corrected for the class prior of a model trained with plain cross-entropy."""
    if not 0 <= tau < math.inf:
        raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
    if not (torch.is_tensor(logits) and logits.is_floating_point() and logits.dim() >= 2):
        raise ValueError("logits must be a floating-point tensor of shape (N, C, d1, ..., dk)")
    return logits - tau * _log_class_prior(class_prior, logits).to(logits.dtype)


def _log_class_prior(class_prior, input):
    """log(class_prior), shaped (C, 1, ..., 1) to broadcast against input (N, C, d1, ..., dk)."""
    prior = torch.as_tensor(class_prior, device=input.device).detach()
    num_classes = input.shape[1]
    if prior.dim() != 1 or prior.numel() != num_classes:
        raise ValueError(
            f"class_prior must have one value per class, shape ({num_classes},), "
            f"got {tuple(prior.shape)}"
        )
    prior = prior.double() if prior.dtype == torch.float64 else prior.float()
    positive = (prior > 0) & torch.isfinite(prior)
    if torch.compiler.is_compiling() or prior.device.type in ("cuda", "mps", "meta"):
        # Compiled, reading the data would break the graph; on CUDA or MPS, the host would wait
        # for the device. torch._assert_async checks on the device (CPU, CUDA, MPS kernels).
        torch._assert_async(positive.all(), "class_prior must hold positive finite values")
    elif not positive.all():  # eager: CPU (no device to wait for), or another device
        raise ValueError(f"class_prior must hold positive finite values, got {prior.tolist()}")
    return prior.log().view(-1, *([1] * (input.dim() - 2)))


# --8<-- [end:logit_adjusted_cross_entropy]


# --8<-- [start:helpers]
def _check_inputs(input, target, weight, ignore_index, reduction):
    """Check the arguments the way F.cross_entropy does, naming the one that is wrong.

    Shapes, dtypes and Python arguments are checked on every call: that reads no tensor data.
    Return the class index to gather (ignored elements point at class 0) and the mask of
    elements that are not ignored.
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if not (torch.is_tensor(input) and input.is_floating_point()):
        got = input.dtype if torch.is_tensor(input) else type(input).__name__
        raise ValueError(f"input must be a floating-point tensor of logits, got {got}")
    if input.dim() < 2:
        raise ValueError(f"input must have shape (N, C, d1, ..., dk), got {tuple(input.shape)}")
    if not torch.is_tensor(target) or target.is_floating_point() or target.dtype == torch.bool:
        got = target.dtype if torch.is_tensor(target) else type(target).__name__
        raise ValueError(f"target must hold integer class indices (torch.int64), got {got}")
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape {expected} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    num_classes = input.shape[1]
    if weight is not None and (weight.dim() != 1 or weight.numel() != num_classes):
        raise ValueError(
            f"weight must have one value per class, shape ({num_classes},), "
            f"got {tuple(weight.shape)}"
        )
    valid = target != ignore_index
    index = target.masked_fill(~valid, 0).long()
    in_range = (index >= 0) & (index < num_classes)
    if torch.compiler.is_compiling() or index.device.type in ("cuda", "mps", "meta"):
        # Compiled, reading the data would break the graph; on CUDA or MPS, the host would wait
        # for the device. torch._assert_async checks on the device (CPU, CUDA, MPS kernels).
        torch._assert_async(in_range.all(), "target must be in [0, C) or equal ignore_index")
    elif not in_range.all():  # eager: CPU (no device to wait for), or another device
        value = index[~in_range][0].item()
        raise IndexError(
            f"target {value} is out of bounds: target must be in [0, {num_classes}) "
            f"or equal ignore_index ({ignore_index})"
        )
    return index, valid


def _reduce(loss, index, valid, weight, reduction):
    """Multiply by weight[y] and reduce like F.cross_entropy (a weighted mean for "mean")."""
    if weight is not None:
        w = weight.to(loss.dtype)[index].masked_fill(~valid, 0.0)
        loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # No element left (all ignored): 0 / 0 = nan, as F.cross_entropy gives.
    return loss.sum() / (valid.sum() if weight is None else w.sum())


def _true_class_log_prob(input, index, bias=None):
    """log p_y = log_softmax(input + bias, dim=1) at the class `index`, in float32 for
    float16/bfloat16 input."""
    if input.dtype in (torch.float16, torch.bfloat16):
        input = input.float()
    if bias is not None:
        input = input + bias.to(input.dtype)
    if torch.compiler.is_compiling():
        # On this CPU Inductor makes faster code from log_softmax and gather than from
        # cross_entropy, measured (docs/losses/index.md#speed).
        return torch.log_softmax(input, dim=1).gather(1, index.unsqueeze(1)).squeeze(1)
    # Eager: -cross_entropy(reduction="none") is log p_y; it allocates as many (N, C) tensors as
    # log_softmax followed by gather (for float32 input without a bias: three, forward and
    # backward together).
    return -torch.nn.functional.cross_entropy(input, index, reduction="none")


# --8<-- [end:helpers]


if __name__ == "__main__":
    # --8<-- [start:example]
    import torch.nn.functional as F

    class_counts = torch.tensor([1000, 300, 100, 30, 10])  # a long-tailed training set
    class_prior = class_counts / class_counts.sum()

    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    target = torch.tensor([0, 1, 2, 3, 4, 4])
    print("class_prior:", class_prior.numpy().round(4))
    print(
        "logit_adjusted_cross_entropy:",
        logit_adjusted_cross_entropy(logits, target, class_prior).item(),
    )
    print(
        "F.cross_entropy(input + log prior):",
        F.cross_entropy(logits + class_prior.log(), target).item(),
    )
    print("F.cross_entropy(input):", F.cross_entropy(logits, target).item())
    # --8<-- [end:example]

    # --8<-- [start:limits]
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    target = torch.tensor([0, 1, 2, 3, 4, -100])
    tau_zero = logit_adjusted_cross_entropy(logits, target, class_prior, tau=0.0)
    print(
        "tau=0 equals F.cross_entropy:", torch.allclose(tau_zero, F.cross_entropy(logits, target))
    )
    from_counts = logit_adjusted_cross_entropy(logits, target, class_counts.float())
    from_prior = logit_adjusted_cross_entropy(logits, target, class_prior)
    print("counts give the same loss as frequencies:", torch.allclose(from_counts, from_prior))
    # --8<-- [end:limits]

    # --8<-- [start:toy_data]
    def long_tailed_blobs(counts, seed):
        """2-D Gaussian blobs, one per class, centers on a circle; counts[c] points of class c."""
        generator = torch.Generator().manual_seed(seed)
        angles = torch.arange(len(counts)) * (2 * math.pi / len(counts))
        centers = 1.5 * torch.stack([angles.cos(), angles.sin()], dim=1)
        points = [centers[c] + torch.randn(n, 2, generator=generator) for c, n in enumerate(counts)]
        labels = [torch.full((n,), c) for c, n in enumerate(counts)]
        return torch.cat(points), torch.cat(labels)

    def train_linear(loss_fn, x, y, num_classes, steps=300):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(steps):  # full-batch training
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        return model

    def balanced_accuracy(logits, y):
        """Mean over classes of the recall: the accuracy on a class-balanced test set."""
        pred = logits.argmax(dim=1)
        return torch.stack([(pred[y == c] == c).float().mean() for c in y.unique()]).mean().item()

    counts = [1000, 300, 100, 30, 10]
    x_train, y_train = long_tailed_blobs(counts, seed=0)
    x_test, y_test = long_tailed_blobs([1000] * len(counts), seed=1)  # balanced test set
    prior = torch.tensor(counts, dtype=torch.float32) / sum(counts)
    print("train counts:", torch.bincount(y_train).tolist())
    print("test counts: ", torch.bincount(y_test).tolist())
    # --8<-- [end:toy_data]

    # --8<-- [start:toy_results]
    threads = torch.get_num_threads()  # markdown-exec: hide
    torch.set_num_threads(1)  # tiny models train fastest on one thread  # markdown-exec: hide
    plain = train_linear(F.cross_entropy, x_train, y_train, len(counts))
    adjusted = train_linear(
        lambda z, y: logit_adjusted_cross_entropy(z, y, prior), x_train, y_train, len(counts)
    )
    torch.set_num_threads(threads)  # markdown-exec: hide
    with torch.no_grad():
        results = {
            "cross_entropy": balanced_accuracy(plain(x_test), y_test),
            "cross_entropy + post-hoc": balanced_accuracy(
                post_hoc_logit_adjustment(plain(x_test), prior), y_test
            ),
            "logit_adjusted_cross_entropy": balanced_accuracy(adjusted(x_test), y_test),
        }
    for name, value in results.items():
        print(f"{name:30s} balanced accuracy = {value:.3f}")
    # --8<-- [end:toy_results]

    # --8<-- [start:toy_tradeoffs]
    def accuracy(logits, y):
        return (logits.argmax(dim=1) == y).float().mean().item()

    x_same, y_same = long_tailed_blobs(counts, seed=2)  # a test set as imbalanced as training
    with torch.no_grad():
        adjusted_plain = post_hoc_logit_adjustment(plain(x_same), prior)
        same_imbalance = {
            "cross_entropy": accuracy(plain(x_same), y_same),
            "cross_entropy + post-hoc": accuracy(adjusted_plain, y_same),
            "logit_adjusted_cross_entropy": accuracy(adjusted(x_same), y_same),
        }
        twice = balanced_accuracy(post_hoc_logit_adjustment(adjusted(x_test), prior), y_test)
    for name, value in same_imbalance.items():
        print(f"{name:30s} accuracy, imbalanced test set = {value:.3f}")
    print(f"adjusted loss + post-hoc again  balanced accuracy = {twice:.3f}")
    # --8<-- [end:toy_tradeoffs]

    # --8<-- [start:errors]
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    target = torch.tensor([0, 1, 2, 1])
    bad_calls = {
        "zero in class_prior": lambda: logit_adjusted_cross_entropy(
            logits, target, torch.tensor([0.5, 0.5, 0.0])
        ),
        "class_prior of wrong length": lambda: logit_adjusted_cross_entropy(
            logits, target, torch.tensor([0.5, 0.5])
        ),
        "negative tau": lambda: logit_adjusted_cross_entropy(
            logits, target, torch.tensor([0.2, 0.3, 0.5]), tau=-1.0
        ),
        "target out of range": lambda: logit_adjusted_cross_entropy(
            logits, torch.tensor([0, 1, 5, 1]), torch.tensor([0.2, 0.3, 0.5])
        ),
    }
    for name, call in bad_calls.items():
        try:
            call()
        except (ValueError, IndexError) as error:
            print(f"{name}: {type(error).__name__}: {error}")
    # --8<-- [end:errors]

    # --8<-- [start:plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "logit_adjustment"
    p_y = torch.linspace(0.001, 0.999, 500, dtype=torch.float64)

    def loss_and_gradient(loss_fn):
        """Loss and d loss / d z_y against p_y, for two classes with logits [logit(p_y), 0]."""
        logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1).requires_grad_()
        loss = loss_fn(logits, torch.zeros(len(p_y), dtype=torch.long))
        loss.sum().backward()
        return loss.detach().numpy(), logits.grad[:, 0].numpy()

    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(9, 3.5))
    curves = {
        "CE": None,
        "LA, $\\pi_y=0.9$": torch.tensor([0.9, 0.1]),
        "LA, $\\pi_y=0.5$": torch.tensor([0.5, 0.5]),
        "LA, $\\pi_y=0.1$": torch.tensor([0.1, 0.9]),
        "LA, $\\pi_y=0.01$": torch.tensor([0.01, 0.99]),
    }
    for label, class_prior in curves.items():
        if class_prior is None:
            loss_fn = lambda x, t: F.cross_entropy(x, t, reduction="none")  # noqa: E731
            style = {"color": "black", "linestyle": "--"}
        else:
            loss_fn = lambda x, t, prior=class_prior: logit_adjusted_cross_entropy(  # noqa: E731
                x, t, prior, reduction="none"
            )
            style = {}
        loss, grad = loss_and_gradient(loss_fn)
        ax_loss.plot(p_y, loss, label=label, **style)
        ax_grad.plot(p_y, grad, label=label, **style)
    ax_loss.set(xlabel="$p_y$", ylabel="loss", ylim=(0, 8))
    ax_grad.set(xlabel="$p_y$", ylabel="$\\partial L / \\partial z_y$", ylim=(-1.05, 0.05))
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
