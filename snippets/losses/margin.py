"""Multi-class hinge losses: nn.MultiMarginLoss (Weston-Watkins) and Crammer-Singer.

Importing this file defines crammer_singer_loss and needs only torch. Running it also prints the
examples and plots of the page docs/losses/margin.md (those need matplotlib).
"""

# --8<-- [start:checks]
import torch

REDUCTIONS = ("none", "mean", "sum")
LOW_PRECISION = (torch.float16, torch.bfloat16)


def describe(value):
    return str(value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__


def check_logits_and_target(input, target):
    """Raise a ValueError or IndexError that names the argument at fault."""
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        raise ValueError(f"input must be a floating-point tensor of logits, got {describe(input)}")
    if input.dim() < 2:
        raise ValueError(f"input must have shape (N, C, d1, ..., dk), got {tuple(input.shape)}")
    integer = isinstance(target, torch.Tensor) and not (
        target.is_floating_point() or target.is_complex() or target.dtype == torch.bool
    )
    if not integer:
        raise ValueError(
            f"target must hold integer class indices (torch.int64), got {describe(target)}"
        )
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape {expected} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    classes = input.shape[1]
    outside = (target < 0) | (target >= classes)
    if torch.compiler.is_compiling() or target.device.type in ("cuda", "mps", "meta"):
        # Compiled, reading the data would break the graph; on CUDA or MPS, the host would wait
        # for the device. torch._assert_async checks on the device (CPU, CUDA, MPS kernels).
        torch._assert_async(~outside.any(), "target must be in [0, C)")
    elif outside.any():  # eager: CPU (no device to wait for), or another device
        raise IndexError(
            f"target {target[outside][0].item()} is out of bounds: target must be in [0, {classes})"
        )


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


# --8<-- [end:checks]


# --8<-- [start:crammer_singer]
def crammer_singer_loss(input, target, *, margin=1.0, reduction="mean"):
    """Crammer-Singer hinge: max(0, margin - x_y + max_{j != y} x_j), one value per sample."""
    check_logits_and_target(input, target)
    check_reduction(reduction)
    if not margin >= 0:  # also rejects NaN
        raise ValueError(f"margin must be a nonnegative number, got {margin}")
    if input.shape[1] < 2:
        raise ValueError(f"input must have at least C=2 classes, got C={input.shape[1]}")
    logits = input.float() if input.dtype in LOW_PRECISION else input
    index = target.long().unsqueeze(1)
    true_logit = logits.gather(1, index).squeeze(1)
    is_target = torch.zeros_like(logits, dtype=torch.bool).scatter(1, index, True)
    best_rival = logits.masked_fill(is_target, float("-inf")).amax(dim=1)  # max over j != y
    loss = (margin - true_logit + best_rival).clamp_min(0)
    return reduce(loss, reduction).to(input.dtype)


# --8<-- [end:crammer_singer]


if __name__ == "__main__":
    # --8<-- [start:batch]
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = torch.randn(5, 4) * 2  # N=5 samples, C=4 classes
    target = torch.tensor([0, 1, 2, 3, 1])
    print(logits)
    # --8<-- [end:batch]

    # --8<-- [start:multi_margin_scaling]
    C = logits.shape[1]
    x_y = logits.gather(1, target.unsqueeze(1))  # true-class logit, shape (N, 1)
    hinge = (1.0 - x_y + logits).clamp_min(0)  # max(0, 1 - x_y + x_j) for every j
    hinge = hinge.scatter(1, target.unsqueeze(1), 0.0)  # drop the j = y term
    weston_watkins = hinge.sum(dim=1)  # the textbook sum over j != y

    torch_loss = nn.MultiMarginLoss(reduction="none")(logits, target)
    print("MultiMarginLoss      :", torch_loss)
    print("sum over j != y, / C :", weston_watkins / C)
    print("sum over j != y, / (C - 1):", weston_watkins / (C - 1))
    # --8<-- [end:multi_margin_scaling]

    # --8<-- [start:multi_margin_p]
    squared = nn.MultiMarginLoss(p=2, reduction="none")(logits, target)
    print("p=2                  :", squared)
    print("sum of squares / C   :", (hinge**2).sum(dim=1) / C)
    try:
        nn.MultiMarginLoss(p=3)(logits, target)
    except ValueError as error:
        print(f"{type(error).__name__}: {error}")
    # --8<-- [end:multi_margin_p]

    # --8<-- [start:multi_margin_weight]
    weight = torch.tensor([1.0, 4.0, 0.5, 2.0])
    weighted = nn.MultiMarginLoss(weight=weight, reduction="none")(logits, target)
    print("weight[y] * unweighted:", weight[target] * torch_loss)
    print("weighted, 'none'      :", weighted)
    mean = nn.MultiMarginLoss(weight=weight)(logits, target)  # reduction="mean"
    print("weighted, 'mean'      :", mean.item())
    print("sum / N               :", (weighted.sum() / len(target)).item())
    print("sum / sum(weight[y])  :", (weighted.sum() / weight[target].sum()).item())
    ce = F.cross_entropy(logits, target, weight=weight)
    ce_terms = F.cross_entropy(logits, target, weight=weight, reduction="none")
    print("cross_entropy 'mean'  :", ce.item())
    print("its sum / sum(w[y])   :", (ce_terms.sum() / weight[target].sum()).item())
    # --8<-- [end:multi_margin_weight]

    # --8<-- [start:multi_margin_limits]
    attempts = {
        "(N, C, d) input": lambda: F.multi_margin_loss(
            torch.randn(2, 4, 3), torch.zeros(2, 3, dtype=torch.long)
        ),
        "class 4 of C=4": lambda: F.multi_margin_loss(logits, torch.tensor([0, 1, 2, 4, 1])),
        "(N, C) class probabilities": lambda: F.multi_margin_loss(
            logits, F.one_hot(target, C).float()
        ),
        "float16 input": lambda: F.multi_margin_loss(logits.half(), target),
        "bfloat16 input": lambda: F.multi_margin_loss(logits.bfloat16(), target),
        "margin=-1.0": lambda: F.multi_margin_loss(logits, target, margin=-1.0),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            print(f"{name}: accepted")
        except (RuntimeError, NotImplementedError) as error:
            print(f"{name}: {type(error).__name__}: {str(error).splitlines()[0]}")
    # --8<-- [end:multi_margin_limits]

    # --8<-- [start:compare]
    rows = {
        "Weston-Watkins sum": weston_watkins,
        "MultiMarginLoss (/ C)": nn.MultiMarginLoss(reduction="none")(logits, target),
        "Crammer-Singer": crammer_singer_loss(logits, target, reduction="none"),
        "cross_entropy": F.cross_entropy(logits, target, reduction="none"),
    }
    print("| sample | " + " | ".join(rows) + " |")
    print("|---:|" + "---:|" * len(rows))
    for n in range(len(target)):
        print(f"| {n} | " + " | ".join(f"{values[n]:.4f}" for values in rows.values()) + " |")
    print("| mean | " + " | ".join(f"{values.mean():.4f}" for values in rows.values()) + " |")
    # --8<-- [end:compare]

    # --8<-- [start:hinge_vs_ce]
    confident = torch.tensor([[6.0, 0.0, 1.0, -2.0]], requires_grad=True)  # right, by a margin
    for name, loss_fn in {
        "cross_entropy": F.cross_entropy,
        "MultiMarginLoss": F.multi_margin_loss,
        "Crammer-Singer": crammer_singer_loss,
    }.items():
        loss = loss_fn(confident, torch.tensor([0]))
        (gradient,) = torch.autograd.grad(loss, confident)
        print(f"{name:16} loss={loss.item():.5f}  gradient={gradient.squeeze(0)}")
    # --8<-- [end:hinge_vs_ce]

    # --8<-- [start:ce_float32]
    ce_by_gap = {}  # gap -> (loss, dL/dz_y) of F.cross_entropy on [gap, 0, 0, 0], target 0
    for dtype in (torch.float32, torch.float64):
        for gap in (15, 16, 17, 18):
            z = torch.tensor([[gap, 0.0, 0.0, 0.0]], dtype=dtype, requires_grad=True)
            loss = F.cross_entropy(z, torch.tensor([0]))
            (gradient,) = torch.autograd.grad(loss, z)
            ce_by_gap[dtype, gap] = (loss.item(), gradient[0, 0].item())
            print(
                f"{dtype}, gap {gap}: loss={loss.item():.3g}  dL/dz_y={gradient[0, 0].item():.3g}"
            )
    # --8<-- [end:ce_float32]

    # --8<-- [start:errors]
    for bad in (
        lambda: crammer_singer_loss(logits, target, margin=-1.0),
        lambda: crammer_singer_loss(logits, target.float()),
        lambda: crammer_singer_loss(logits, torch.tensor([0, 1, 2, 4, 1])),
        lambda: crammer_singer_loss(logits, target[:4]),
        lambda: crammer_singer_loss(logits, target, reduction="average"),
    ):
        try:
            bad()
        except (ValueError, IndexError) as error:
            print(f"{type(error).__name__}: {error}")
    # --8<-- [end:errors]

    # --8<-- [start:plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "margin"
    C = 10  # every other logit is 0, so p_y = exp(z) / (exp(z) + C - 1)
    p_y = torch.linspace(0.01, 0.99, 397, dtype=torch.float64)
    z = torch.log(p_y * (C - 1) / (1 - p_y))
    curves = {
        "CE": lambda x, y: F.cross_entropy(x, y, reduction="none"),
        "MultiMarginLoss": lambda x, y: F.multi_margin_loss(x, y, reduction="none"),
        "Crammer-Singer": lambda x, y: crammer_singer_loss(x, y, reduction="none"),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, loss_fn in curves.items():
        x = torch.zeros(len(z), C, dtype=torch.float64)
        x[:, 0] = z
        x.requires_grad_(True)
        loss = loss_fn(x, torch.zeros(len(z), dtype=torch.long))
        (gradient,) = torch.autograd.grad(loss.sum(), x)
        left.plot(p_y, loss.detach(), label=name)
        right.plot(p_y, gradient[:, 0], label=name)
    left.set(xlabel="$p_y$", ylabel="loss", title="$C = 10$")
    right.set(xlabel="$p_y$", ylabel=r"$\partial L / \partial z_y$")
    left.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
