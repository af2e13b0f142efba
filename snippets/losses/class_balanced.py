"""Class-balanced weights from the effective number of samples (Cui et al., CVPR 2019).

Copy this file: it needs only PyTorch. `class_balanced_weights` returns per-class weights to
pass as `weight=` to F.cross_entropy, nn.CrossEntropyLoss or the focal loss of this chapter.
Run the file to see the examples of its page.
"""

# --8<-- [start:class_balanced_weights]
import torch
from torch import Tensor


def class_balanced_weights(class_counts, beta: float = 0.999) -> Tensor:
    """Per-class weights (1 - beta) / (1 - beta**n_c), normalized to sum to the number of classes.

    `class_counts` holds the number of training samples n_c of each class (a sequence or a
    1-D tensor of positive numbers). beta=0 gives equal weights (all 1); as beta approaches 1
    the weights approach inverse class frequency. Returns a tensor of the default dtype
    (float32) on the device of `class_counts`. MPS has no float64: MPS counts are copied to the
    CPU (a host sync), and the weights are moved back.
    """
    device = class_counts.device if torch.is_tensor(class_counts) else torch.device("cpu")
    if device.type == "mps":
        class_counts = class_counts.cpu()
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(
            f"class_counts must be a 1-D sequence with one count per class, "
            f"got shape {tuple(counts.shape)}"
        )
    positive = (counts > 0) & torch.isfinite(counts)
    if torch.compiler.is_compiling() or counts.device.type in ("cuda", "meta"):
        # Compiled, reading the data would break the graph; on CUDA, the host would wait for
        # the device. torch._assert_async checks on the device (CPU and CUDA kernels).
        torch._assert_async(positive.all(), "class_counts must be positive and finite")
    elif not positive.all():  # eager: CPU (no device to wait for), or another device
        raise ValueError(f"class_counts must be positive and finite, got {counts.tolist()}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    # 1 - beta**n, computed as -expm1(n * log(beta)) so that it stays accurate near beta = 1
    log_beta = torch.tensor(beta, dtype=torch.float64).log()  # -inf for beta = 0
    effective_number = -torch.expm1(counts * log_beta) / (1 - beta)  # (1 - beta**n) / (1 - beta)
    weights = 1 / effective_number
    weights = weights * (len(counts) / weights.sum())
    return weights.to(torch.get_default_dtype()).to(device)


# --8<-- [end:class_balanced_weights]


if __name__ == "__main__":
    # --8<-- [start:example]
    import torch.nn.functional as F

    class_counts = [5000, 500, 50, 5]  # a long-tailed training set
    for beta in (0.0, 0.9, 0.99, 0.999, 0.9999):
        weights = class_balanced_weights(class_counts, beta=beta)
        print(f"beta={beta:<6}", weights.numpy().round(4), " sum =", round(weights.sum().item(), 4))

    counts = torch.tensor(class_counts, dtype=torch.float64)
    inverse_frequency = (1 / counts) * (len(counts) / (1 / counts).sum())
    print("1/n_c, sum = C:", inverse_frequency.numpy().round(4))
    # --8<-- [end:example]

    # --8<-- [start:effective_number]
    beta = 0.999
    for n in (1, 10, 100, 1000, 10000, 100000):
        effective = (1 - beta**n) / (1 - beta)
        print(f"n={n:>6}: effective number = {effective:9.2f}")
    print(f"limit 1/(1 - beta) = {1 / (1 - beta):g}")
    # --8<-- [end:effective_number]

    # --8<-- [start:usage]
    torch.manual_seed(0)
    logits = torch.randn(8, 4)
    target = torch.tensor([0, 0, 0, 0, 0, 1, 2, 3])
    weight = class_balanced_weights(class_counts, beta=0.999)

    criterion = torch.nn.CrossEntropyLoss(weight=weight)
    print("weighted CE:", criterion(logits, target).item())
    print("plain CE:   ", F.cross_entropy(logits, target).item())
    uniform = class_balanced_weights(class_counts, beta=0.0)
    print(
        "beta=0 gives plain CE:",
        torch.allclose(
            F.cross_entropy(logits, target, weight=uniform), F.cross_entropy(logits, target)
        ),
    )
    # --8<-- [end:usage]

    # --8<-- [start:one_class_batch]
    only_frequent = torch.zeros(8, dtype=torch.long)  # a batch of class 0 only
    weighted_mean = F.cross_entropy(logits, only_frequent, weight=weight)
    plain_mean = F.cross_entropy(logits, only_frequent)
    paper = F.cross_entropy(logits, only_frequent, weight=weight, reduction="sum") / 8
    print(f"class 0 only: weighted 'mean' = {weighted_mean.item():.4f}")
    print(f"              plain mean      = {plain_mean.item():.4f}")
    print(f"              'sum' / N       = {paper.item():.4f}  (weight[0] = {weight[0]:.4f})")
    # --8<-- [end:one_class_batch]

    # --8<-- [start:errors]
    bad_calls = {
        "zero count": lambda: class_balanced_weights([100, 0, 5]),
        "beta = 1": lambda: class_balanced_weights([100, 10, 5], beta=1.0),
        "counts as a matrix": lambda: class_balanced_weights([[100, 10], [5, 1]]),
    }
    for name, call in bad_calls.items():
        try:
            call()
        except ValueError as error:
            print(f"{name}: {type(error).__name__}: {error}")
    # --8<-- [end:errors]

    # --8<-- [start:plot_weights]
    import io

    import matplotlib
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "class_balanced_weights"
    n = torch.logspace(0, 5, 200, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for beta in (0.9, 0.99, 0.999, 0.9999):
        ax.loglog(n, (1 - beta**n) / (1 - beta), label=f"$\\beta={beta}$")
    ax.loglog(n, n, color="black", linestyle="--", label="$E_n = n$ ($\\beta \\to 1$)")
    ax.set(xlabel="$n$", ylabel="$E_n = (1-\\beta^n)/(1-\\beta)$")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot_weights]

    # --8<-- [start:plot]
    plt.rcParams["svg.hashsalt"] = "class_balanced_loss"
    p_y = torch.linspace(0.001, 0.999, 500, dtype=torch.float64)

    def loss_and_gradient(loss_fn):
        """Loss and d loss / d z_y against p_y, for two classes with logits [logit(p_y), 0]."""
        logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1).requires_grad_()
        loss = loss_fn(logits, torch.zeros(len(p_y), dtype=torch.long))
        loss.sum().backward()
        return loss.detach().numpy(), logits.grad[:, 0].numpy()

    weights = class_balanced_weights(class_counts, beta=0.999).double()
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(9, 3.5))
    curves = {"CE": None, **{f"CB, $n_y={n}$": weights[c] for c, n in enumerate(class_counts)}}
    for label, w_y in curves.items():
        # Weighted CE of a sample of a class with weight w_y: the two-class weight (w_y, 1).
        weight = None if w_y is None else torch.stack([w_y, torch.ones((), dtype=torch.float64)])
        loss, grad = loss_and_gradient(
            lambda x, t, weight=weight: F.cross_entropy(x, t, weight=weight, reduction="none")
        )
        style = {"color": "black", "linestyle": "--"} if w_y is None else {}
        ax_loss.plot(p_y, loss, label=label, **style)
        ax_grad.plot(p_y, grad, label=label, **style)
    ax_loss.set(xlabel="$p_y$", ylabel="loss", ylim=(0, 8))
    ax_grad.set(xlabel="$p_y$", ylabel="$\\partial L / \\partial z_y$")
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
