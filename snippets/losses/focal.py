"""Focal loss for multi-class classification: the softmax form of Lin et al. (ICCV 2017).

Copy this file: it needs only PyTorch. `focal_loss` and `FocalLoss` take logits and class
indices like `F.cross_entropy`, with the same `weight`, `ignore_index` and `reduction`;
with `gamma=0` they give `F.cross_entropy`. Run the file to see the examples of its page.
"""

# --8<-- [start:focal_loss]
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Focal loss of logits `input` (N, C, d1, ..., dk) for class indices `target` (N, d1, ..., dk).

    Per element: -weight[y] * (1 - p_y)**gamma * log(p_y). "mean" divides the sum by the sum of
    weight[y] over the elements whose target is not `ignore_index`, as F.cross_entropy does.
    """
    if not 0 <= gamma < math.inf:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    index, valid = _check_inputs(input, target, weight, ignore_index, reduction)
    log_p = _true_class_log_prob(input, index)  # log p_y, float32 for float16/bfloat16 input
    log_p = log_p.masked_fill(~valid, 0.0)  # ignored elements: zero loss and zero gradient
    loss = -log_p
    if gamma != 0:
        one_minus_p = -torch.expm1(log_p)  # 1 - p_y, without the cancellation of 1 - exp(log_p)
        # The clamp keeps the gradient finite where p_y rounds to 1 and gamma < 1.
        loss = loss * one_minus_p.clamp_min(torch.finfo(log_p.dtype).tiny).pow(gamma)
    return _reduce(loss, index, valid, weight, reduction).to(input.dtype)


# --8<-- [end:focal_loss]


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


# --8<-- [start:module]
class FocalLoss(nn.Module):
    """Module form of focal_loss, with the same keyword arguments (weight is a buffer)."""

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not 0 <= gamma < math.inf:
            raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"weight must be a 1-D tensor, got shape {tuple(weight.shape)}")
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.register_buffer("weight", weight)  # moves with .to(device); can be reassigned

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(
            input,
            target,
            gamma=self.gamma,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"


# --8<-- [end:module]


# --8<-- [start:sigmoid_focal_loss]
def sigmoid_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """The focal loss of Lin et al. in its original sigmoid form, for multi-label and dense
    prediction: one independent binary problem per element of `input` (logits, any shape).

    Per element, with p = sigmoid(input) and p_t = p if target = 1 else 1 - p:
    alpha_t * (1 - p_t)**gamma * BCE, where BCE is F.binary_cross_entropy_with_logits with the
    same `weight` and `pos_weight`, and alpha_t = alpha for target 1, 1 - alpha for target 0
    (alpha=None: no alpha_t). `target` has the shape of `input` and values in [0, 1]; for a
    soft target, 1 - p_t = target * (1 - p) + (1 - target) * p. "mean" is the mean over all
    elements, as in BCEWithLogitsLoss and torchvision.ops.sigmoid_focal_loss.
    """
    if not 0 <= gamma < math.inf:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    if alpha is not None and not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be None or a number in [0, 1], got {alpha!r}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if not (torch.is_tensor(input) and input.is_floating_point()):
        got = input.dtype if torch.is_tensor(input) else type(input).__name__
        raise ValueError(f"input must be a floating-point tensor of logits, got {got}")
    if not (torch.is_tensor(target) and target.is_floating_point()):
        got = target.dtype if torch.is_tensor(target) else type(target).__name__
        raise ValueError(f"target must be a floating-point tensor of 0/1 labels, got {got}")
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the shape of input {tuple(input.shape)}, got {tuple(target.shape)}"
        )
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    t = target.to(x.dtype)
    bce = F.binary_cross_entropy_with_logits(
        x, t, weight=weight, pos_weight=pos_weight, reduction="none"
    )
    loss = bce
    if gamma != 0:
        # 1 - p_t from sigmoid(x) and sigmoid(-x) = 1 - sigmoid(x): no cancellation near 1.
        one_minus_p_t = t * torch.sigmoid(-x) + (1 - t) * torch.sigmoid(x)
        # The clamp keeps the gradient finite where 1 - p_t rounds to 0 and gamma < 1.
        loss = loss * one_minus_p_t.clamp_min(torch.finfo(x.dtype).tiny).pow(gamma)
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(input.dtype)


# --8<-- [end:sigmoid_focal_loss]


if __name__ == "__main__":
    # --8<-- [start:example]
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = torch.randn(8, 5)  # 8 samples, 5 classes
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, -100])  # the last sample is ignored

    print("focal_loss, gamma=2:", focal_loss(logits, target).item())
    print("FocalLoss(gamma=2)  :", FocalLoss(gamma=2.0)(logits, target).item())
    print("F.cross_entropy     :", F.cross_entropy(logits, target).item())
    # --8<-- [end:example]

    # --8<-- [start:gamma_zero]
    torch.manual_seed(0)
    logits = torch.randn(8, 5)
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, -100])
    weight = torch.tensor([0.2, 1.0, 1.0, 2.0, 5.0])

    focal = focal_loss(logits, target, gamma=0.0, weight=weight)
    ce = F.cross_entropy(logits, target, weight=weight)
    print("focal_loss(gamma=0, weight):     ", focal.item())
    print("F.cross_entropy(weight):         ", ce.item())
    print("equal (torch.allclose):", torch.allclose(focal, ce))
    # --8<-- [end:gamma_zero]

    # --8<-- [start:modulating_factor]
    import torch

    p_y = torch.tensor([0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    print("p_y:      ", p_y.numpy())
    for gamma in (0.5, 1.0, 2.0, 5.0):
        print(f"gamma={gamma}:", ((1 - p_y) ** gamma).numpy().round(6))
    # --8<-- [end:modulating_factor]

    # --8<-- [start:gradient_ratio]
    p_y = torch.tensor([0.05, 0.1, 0.2, 0.5, 0.9, 0.99], dtype=torch.float64)
    logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1)  # two classes
    target = torch.zeros(len(p_y), dtype=torch.long)
    print("p_y:      ", p_y.numpy())
    for gamma in (0.5, 1.0, 2.0, 5.0):
        z = logits.clone().requires_grad_()
        focal_loss(z, target, gamma=gamma, reduction="sum").backward()
        ratio = z.grad[:, 0] / (p_y - 1)  # d CE / d z_y = p_y - 1
        print(f"gamma={gamma}:", ratio.numpy().round(3))
    # --8<-- [end:gradient_ratio]

    # --8<-- [start:alpha]
    torch.manual_seed(0)
    logits = torch.randn(8, 3)
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])  # class 0 is frequent, 1 and 2 are rare

    # A scalar alpha multiplies every element by the same number: it only rescales the loss,
    # and as a constant weight it cancels in the weighted mean.
    alpha = 0.25
    loss = focal_loss(logits, target)
    print("focal_loss:                    ", loss.item())
    print("alpha * focal_loss:            ", (alpha * loss).item())
    constant = torch.full((3,), alpha)
    print("focal_loss(weight=[alpha] * 3):", focal_loss(logits, target, weight=constant).item())

    # A per-class weight changes which samples count: here it lifts the rare classes.
    weight = torch.tensor([0.25, 1.0, 1.0])
    plain = focal_loss(logits, target, reduction="none")
    weighted = focal_loss(logits, target, weight=weight, reduction="none")
    print("rare-class share, no weight:", (plain[6:].sum() / plain.sum()).item())
    print("rare-class share, weight:   ", (weighted[6:].sum() / weighted.sum()).item())
    # --8<-- [end:alpha]

    # --8<-- [start:all_ignored]
    torch.manual_seed(0)
    logits = torch.randn(3, 4, requires_grad=True)
    target = torch.full((3,), -100)  # every element ignored
    for reduction in ("mean", "sum"):
        focal = focal_loss(logits, target, reduction=reduction)
        ce = F.cross_entropy(logits, target, reduction=reduction)
        print(f"{reduction}: focal_loss = {focal.item()}, F.cross_entropy = {ce.item()}")
    for name, loss_fn in {"focal_loss": focal_loss, "F.cross_entropy": F.cross_entropy}.items():
        logits.grad = None
        loss_fn(logits, target).backward()  # "mean": the nan above
        print(f"{name}: largest |gradient| of the nan = {logits.grad.abs().max().item()}")
    # --8<-- [end:all_ignored]

    # --8<-- [start:errors]
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    bad_calls = {
        "float target": lambda: focal_loss(logits, torch.tensor([0.0, 1.0, 2.0, 1.0])),
        "target out of range": lambda: focal_loss(logits, torch.tensor([0, 1, 3, 1])),
        "batch size mismatch": lambda: focal_loss(logits, torch.tensor([0, 1, 2])),
        "weight of wrong length": lambda: focal_loss(
            logits, torch.tensor([0, 1, 2, 1]), weight=torch.ones(2)
        ),
        "negative gamma": lambda: focal_loss(logits, torch.tensor([0, 1, 2, 1]), gamma=-1.0),
        "unknown reduction": lambda: focal_loss(
            logits, torch.tensor([0, 1, 2, 1]), reduction="avg"
        ),
    }
    for name, call in bad_calls.items():
        try:
            call()
        except (ValueError, IndexError) as error:
            print(f"{name}: {type(error).__name__}: {error}")
    # --8<-- [end:errors]

    # --8<-- [start:sigmoid_example]
    torch.manual_seed(0)
    logits = torch.randn(4, 3, dtype=torch.float64) * 3  # 4 samples, 3 independent labels
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0]], dtype=torch.float64)

    # The paper's definition, written out: p_t = p for label 1, 1 - p for label 0.
    p = 1 / (1 + torch.exp(-logits))
    p_t = torch.where(labels == 1, p, 1 - p)
    alpha_t = torch.where(labels == 1, 0.25, 0.75)
    reference = (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t)).mean()
    print("sigmoid_focal_loss:", sigmoid_focal_loss(logits, labels).item())
    print("definition:        ", reference.item())

    # gamma=0 and alpha=None: BCEWithLogitsLoss, with the same weight and pos_weight.
    pos_weight = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    plain = sigmoid_focal_loss(logits, labels, gamma=0.0, alpha=None, pos_weight=pos_weight)
    bce = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
    print("gamma=0, alpha=None equals BCE:", torch.allclose(plain, bce))

    # float32 logits of magnitude 1e4, confidently right and wrong: finite loss and gradient.
    huge = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    value = sigmoid_focal_loss(huge, torch.tensor([[1.0, 1.0], [1.0, 0.0]]), reduction="none")
    value.sum().backward()
    print("loss at |logit| = 1e4:", value.tolist(), " gradient:", huge.grad.tolist())
    # --8<-- [end:sigmoid_example]

    # --8<-- [start:plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "focal"
    p_y = torch.linspace(0.001, 0.999, 500, dtype=torch.float64)

    def loss_and_gradient(loss_fn):
        """Loss and d loss / d z_y against p_y, for two classes with logits [logit(p_y), 0]."""
        logits = torch.stack([torch.logit(p_y), torch.zeros_like(p_y)], dim=1).requires_grad_()
        loss = loss_fn(logits, torch.zeros(len(p_y), dtype=torch.long))
        loss.sum().backward()
        return loss.detach().numpy(), logits.grad[:, 0].numpy()

    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(9, 3.5))
    for gamma in (0.0, 0.5, 1.0, 2.0, 5.0):
        loss, grad = loss_and_gradient(
            lambda x, t, gamma=gamma: focal_loss(x, t, gamma=gamma, reduction="none")
        )
        label = "CE ($\\gamma=0$)" if gamma == 0 else f"focal $\\gamma={gamma:g}$"
        style = {"color": "black", "linestyle": "--"} if gamma == 0 else {}
        ax_loss.plot(p_y, loss, label=label, **style)
        ax_grad.plot(p_y, grad, label=label, **style)
    ax_loss.set(xlabel="$p_y$", ylabel="loss", ylim=(0, 5))
    ax_grad.set(xlabel="$p_y$", ylabel="$\\partial L / \\partial z_y$", ylim=(-1.45, 0.05))
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
