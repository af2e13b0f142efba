"""Poly-1 loss (Leng et al., ICLR 2022): cross-entropy plus epsilon * (1 - p_y).

Copy this file: it needs only PyTorch. `poly1_cross_entropy` takes logits and class indices
like `F.cross_entropy`, with the same `weight`, `ignore_index` and `reduction`; with
`epsilon=0` it gives `F.cross_entropy`. Run the file to see the examples of its page.
"""

# --8<-- [start:poly1_cross_entropy]
import math

import torch
from torch import Tensor


def poly1_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    epsilon: float = 1.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Poly-1 loss of logits `input` (N, C, d1, ..., dk), class indices `target` (N, d1, ..., dk).

    Per element: weight[y] * (-log(p_y) + epsilon * (1 - p_y)): the class weight multiplies both
    terms. "mean" divides the sum by the sum of weight[y] over the elements whose target is not
    `ignore_index`, as F.cross_entropy does.
    """
    if not -1 <= epsilon < math.inf:
        raise ValueError(f"epsilon must be a finite number >= -1, got {epsilon!r}")
    index, valid = _check_inputs(input, target, weight, ignore_index, reduction)
    log_p = _true_class_log_prob(input, index)  # log p_y, float32 for float16/bfloat16 input
    log_p = log_p.masked_fill(~valid, 0.0)  # ignored elements: zero loss and zero gradient
    loss = -log_p
    if epsilon != 0:
        loss = loss - epsilon * torch.expm1(log_p)  # + epsilon * (1 - p_y)
    return _reduce(loss, index, valid, weight, reduction).to(input.dtype)


# --8<-- [end:poly1_cross_entropy]


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

    torch.manual_seed(0)
    logits = torch.randn(8, 5)  # 8 samples, 5 classes
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, -100])  # the last sample is ignored

    p_y = torch.softmax(logits, dim=1)[torch.arange(7), target[:7]]
    print("poly1_cross_entropy, epsilon=1:", poly1_cross_entropy(logits, target).item())
    print("F.cross_entropy               :", F.cross_entropy(logits, target).item())
    print(
        "difference                    :",
        (poly1_cross_entropy(logits, target) - F.cross_entropy(logits, target)).item(),
    )
    print("mean(1 - p_y)                 :", (1 - p_y).mean().item())
    # --8<-- [end:example]

    # --8<-- [start:epsilon_zero]
    torch.manual_seed(0)
    logits = torch.randn(8, 5)
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, -100])
    weight = torch.tensor([0.2, 1.0, 1.0, 2.0, 5.0])

    poly = poly1_cross_entropy(logits, target, epsilon=0.0, weight=weight)
    ce = F.cross_entropy(logits, target, weight=weight)
    print("poly1_cross_entropy(epsilon=0, weight):", poly.item())
    print("F.cross_entropy(weight):               ", ce.item())
    print("equal (torch.allclose):", torch.allclose(poly, ce))
    # --8<-- [end:epsilon_zero]

    # --8<-- [start:weight]
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    target = torch.tensor([0, 0, 0, 0, 1, 2])
    weight = torch.tensor([0.5, 2.0, 2.0])

    plain = poly1_cross_entropy(logits, target, reduction="none")
    weighted = poly1_cross_entropy(logits, target, weight=weight, reduction="none")
    print("weighted / plain per element:", (weighted / plain).numpy().round(6))
    print("weight[target]:              ", weight[target].numpy())
    mean = poly1_cross_entropy(logits, target, weight=weight)
    print(
        "mean == sum / sum(weight[target]):",
        torch.allclose(mean, weighted.sum() / weight[target].sum()),
    )
    # --8<-- [end:weight]

    # --8<-- [start:epsilon_range]
    p_y = torch.tensor([0.5, 0.9, 0.99, 0.999], dtype=torch.float64)
    logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1)  # two classes
    target = torch.zeros(4, dtype=torch.long)
    print("p_y:        ", p_y.numpy())
    for epsilon in (-1.0, 0.0, 1.0, 2.0):
        loss = poly1_cross_entropy(logits, target, epsilon=epsilon, reduction="none")
        print(f"epsilon={epsilon:+}:", loss.numpy().round(7))
    try:
        poly1_cross_entropy(logits, target, epsilon=-2.0)
    except ValueError as error:
        print(f"{type(error).__name__}: {error}")
    # --8<-- [end:epsilon_range]

    # --8<-- [start:errors]
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    bad_calls = {
        "float target": lambda: poly1_cross_entropy(logits, torch.tensor([0.0, 1.0, 2.0, 1.0])),
        "target out of range": lambda: poly1_cross_entropy(logits, torch.tensor([0, 1, 3, 1])),
        "weight of wrong length": lambda: poly1_cross_entropy(
            logits, torch.tensor([0, 1, 2, 1]), weight=torch.ones(4)
        ),
        "unknown reduction": lambda: poly1_cross_entropy(
            logits, torch.tensor([0, 1, 2, 1]), reduction="average"
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

    plt.rcParams["svg.hashsalt"] = "poly"
    p_y = torch.linspace(0.001, 0.999, 500, dtype=torch.float64)

    def loss_and_gradient(loss_fn):
        """Loss and d loss / d z_y against p_y, for two classes with logits [logit(p_y), 0]."""
        logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1).requires_grad_()
        loss = loss_fn(logits, torch.zeros(len(p_y), dtype=torch.long))
        loss.sum().backward()
        return loss.detach().numpy(), logits.grad[:, 0].numpy()

    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(9, 3.5))
    for epsilon in (-1.0, 0.0, 1.0, 2.0, 5.0):
        loss, grad = loss_and_gradient(
            lambda x, t, e=epsilon: poly1_cross_entropy(x, t, epsilon=e, reduction="none")
        )
        label = "CE ($\\epsilon=0$)" if epsilon == 0 else f"Poly-1 $\\epsilon={epsilon:g}$"
        style = {"color": "black", "linestyle": "--"} if epsilon == 0 else {}
        ax_loss.plot(p_y, loss, label=label, **style)
        ax_grad.plot(p_y, grad, label=label, **style)
    ax_loss.set(xlabel="$p_y$", ylabel="loss", ylim=(0, 6))
    ax_grad.set(xlabel="$p_y$", ylabel="$\\partial L / \\partial z_y$", ylim=(-2.1, 0.1))
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
