"""LDAM loss: label-distribution-aware margins (Cao et al., NeurIPS 2019), with deferred
re-weighting (DRW) through the module's `weight`.

Copy this file: it needs only PyTorch. Run it to see the examples of its page (the DRW example
also imports losses.class_balanced, snippets/losses/class_balanced.py, from the snippets root).
"""

# --8<-- [start:ldam]
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LDAMLoss(nn.Module):
    """Cross-entropy of scale * (z - m_y * onehot(y)): the true-class logit loses a margin m_y.

    Margins are proportional to n_c ** (-1/4) (n_c: training samples of class c), the largest,
    that of the rarest class, equal to max_margin. The paper applies it to cosine logits in
    [-1, 1] (normalized features and class vectors); scale then sets the softmax temperature.
    `weight` is a class-weight buffer as in nn.CrossEntropyLoss: assign it during training for
    deferred re-weighting (DRW). Targets equal to -100 are ignored, as with CrossEntropyLoss().
    """

    ignore_index = -100
    reduction = "mean"

    def __init__(
        self,
        class_counts,
        max_margin: float = 0.5,
        scale: float = 30.0,
        weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        if counts.dim() != 1 or counts.numel() == 0:
            raise ValueError(
                f"class_counts must be a 1-D sequence with one count per class, "
                f"got shape {tuple(counts.shape)}"
            )
        if not bool(((counts > 0) & torch.isfinite(counts)).all()):
            raise ValueError(f"class_counts must be positive and finite, got {counts.tolist()}")
        if not 0 <= max_margin < math.inf:
            raise ValueError(f"max_margin must be a finite number >= 0, got {max_margin!r}")
        if not 0 < scale < math.inf:
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        margins = counts**-0.25
        margins = margins * (max_margin / margins.max())  # the rarest class gets max_margin
        self.register_buffer("margins", margins.to(torch.get_default_dtype()))
        self.register_buffer("weight", weight)  # None or (C,): reassign it for DRW
        self.max_margin = max_margin
        self.scale = scale

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        num_classes = len(self.margins)
        if torch.is_tensor(input) and input.dim() >= 2 and input.shape[1] != num_classes:
            raise ValueError(
                f"input has {input.shape[1]} classes (dim 1), but class_counts has {num_classes}"
            )
        index, valid = _check_inputs(input, target, self.weight, self.ignore_index, self.reduction)
        dtype = input.dtype
        compute_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        margin = self.margins.to(compute_dtype)[index].masked_fill(~valid, 0.0)  # m_y, 0 if ignored
        logits = input.to(compute_dtype) * self.scale
        # Subtract scale * m_y from the true-class logit only.
        logits = logits.scatter_add(1, index.unsqueeze(1), (-self.scale * margin).unsqueeze(1))
        weight = None if self.weight is None else self.weight.to(compute_dtype)
        loss = F.cross_entropy(logits, target.long(), weight=weight, ignore_index=self.ignore_index)
        return loss.to(dtype)

    def __setattr__(self, name: str, value) -> None:
        # A weight assigned during training (DRW) follows the module, as .to() moves it: to
        # the device and floating-point dtype of the margins buffer.
        if name == "weight" and torch.is_tensor(value) and "margins" in self._buffers:
            value = value.to(device=self.margins.device, dtype=self.margins.dtype)
        super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return f"max_margin={self.max_margin}, scale={self.scale}"


# --8<-- [end:ldam]


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


# --8<-- [end:helpers]


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the snippets root
    from losses.class_balanced import class_balanced_weights  # the chapter's class_balanced.py

    # --8<-- [start:margins]
    class_counts = [5000, 500, 50, 5]
    criterion = LDAMLoss(class_counts)  # max_margin=0.5, scale=30
    print("margins:", criterion.margins.numpy().round(4))
    counts = torch.tensor(class_counts, dtype=torch.float64)
    print("n_c ** (-1/4) / max:", (counts**-0.25 / (counts**-0.25).max()).numpy().round(4))
    # --8<-- [end:margins]

    # --8<-- [start:example]
    torch.manual_seed(0)
    cosine = torch.rand(6, 4) * 2 - 1  # cosine logits in [-1, 1], as from a normalized head
    target = torch.tensor([0, 0, 1, 2, 3, 3])
    print("LDAMLoss:                          ", criterion(cosine, target).item())
    print("F.cross_entropy(scale * cosine):   ", F.cross_entropy(30.0 * cosine, target).item())
    no_margin = LDAMLoss(class_counts, max_margin=0.0, scale=1.0)
    print(
        "max_margin=0, scale=1 equals CE:",
        torch.allclose(no_margin(cosine, target), F.cross_entropy(cosine, target)),
    )
    # --8<-- [end:example]

    # --8<-- [start:drw]
    epochs, drw_epoch = 200, 160  # the schedule of the paper's CIFAR code
    criterion = LDAMLoss(class_counts)
    for epoch in range(epochs):
        if epoch == drw_epoch:  # deferred re-weighting: class-balanced weights from here on
            criterion.weight = class_balanced_weights(class_counts, beta=0.9999)
        if epoch in (0, drw_epoch - 1, drw_epoch, epochs - 1):
            weight = None if criterion.weight is None else criterion.weight.numpy().round(4)
            print(f"epoch {epoch:3d}: weight = {weight}")
        # ... train one epoch with loss = criterion(model(x), y) ...
    print("weight is a buffer:", "weight" in dict(criterion.named_buffers()))
    # --8<-- [end:drw]

    # --8<-- [start:checkpoint]
    saved = criterion.state_dict()  # saved after the switch: it holds "weight"
    print("saved keys:", list(saved))
    fresh = LDAMLoss(class_counts)  # weight=None: no "weight" key to load into
    print("fresh keys:", list(fresh.state_dict()))
    try:
        fresh.load_state_dict(saved)
    except RuntimeError as error:
        print(f"{type(error).__name__}: {str(error).splitlines()[-1].strip()}")
    fresh.weight = torch.ones(len(class_counts))  # any tensor of shape (C,): load overwrites it
    fresh.load_state_dict(saved)
    print("loaded after assigning a weight:", torch.equal(fresh.weight, criterion.weight))
    # --8<-- [end:checkpoint]

    # --8<-- [start:toy]
    def long_tailed_blobs(counts, seed):
        """2-D Gaussian blobs, one per class, centers on a circle; counts[c] points of class c."""
        generator = torch.Generator().manual_seed(seed)
        angles = torch.arange(len(counts)) * (2 * math.pi / len(counts))
        centers = 1.5 * torch.stack([angles.cos(), angles.sin()], dim=1)
        points = [centers[c] + torch.randn(n, 2, generator=generator) for c, n in enumerate(counts)]
        labels = [torch.full((n,), c) for c, n in enumerate(counts)]
        return torch.cat(points), torch.cat(labels)

    class CosineClassifier(nn.Module):
        """A small MLP and a cosine head: logits are cosines between features and class vectors."""

        def __init__(self, num_classes):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 16))
            self.class_vectors = nn.Parameter(torch.randn(num_classes, 16))

        def forward(self, x):
            features = F.normalize(self.features(x), dim=1)
            return features @ F.normalize(self.class_vectors, dim=1).T

    def train(criterion, counts, x, y, steps=400, drw_step=None):
        torch.manual_seed(0)
        model = CosineClassifier(len(counts))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for step in range(steps):  # full-batch steps stand in for epochs
            if step == drw_step:
                criterion.weight = class_balanced_weights(counts, beta=0.9999)
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
        return model

    def balanced_accuracy(logits, y):
        """Mean over classes of the recall: the accuracy on a class-balanced test set."""
        pred = logits.argmax(dim=1)
        return torch.stack([(pred[y == c] == c).float().mean() for c in y.unique()]).mean().item()

    counts = [1000, 300, 100, 30, 10]
    x_train, y_train = long_tailed_blobs(counts, seed=0)
    x_test, y_test = long_tailed_blobs([1000] * len(counts), seed=1)
    runs = {  # CE is LDAM with max_margin=0: the same cosine head and scale
        "CE": (LDAMLoss(counts, max_margin=0.0), None),
        "CE-DRW": (LDAMLoss(counts, max_margin=0.0), 300),
        "LDAM": (LDAMLoss(counts), None),
        "LDAM-DRW": (LDAMLoss(counts), 300),
    }
    threads = torch.get_num_threads()  # markdown-exec: hide
    torch.set_num_threads(1)  # tiny models train fastest on one thread  # markdown-exec: hide
    for name, (criterion, drw_step) in runs.items():
        model = train(criterion, counts, x_train, y_train, drw_step=drw_step)
        with torch.no_grad():
            print(f"{name:9s} balanced accuracy = {balanced_accuracy(model(x_test), y_test):.3f}")
    torch.set_num_threads(threads)  # markdown-exec: hide
    # --8<-- [end:toy]

    # --8<-- [start:errors]
    torch.manual_seed(0)
    bad_calls = {
        "zero count": lambda: LDAMLoss([100, 0, 5]),
        "negative max_margin": lambda: LDAMLoss([100, 10, 5], max_margin=-0.5),
        "weight of wrong length": lambda: LDAMLoss([100, 10, 5], weight=torch.ones(2))(
            torch.randn(2, 3), torch.tensor([0, 1])
        ),
        "input with 4 classes": lambda: LDAMLoss([100, 10, 5])(
            torch.randn(2, 4), torch.tensor([0, 1])
        ),
        "target out of range": lambda: LDAMLoss([100, 10, 5])(
            torch.randn(2, 3), torch.tensor([0, 3])
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

    plt.rcParams["svg.hashsalt"] = "ldam"
    p_y = torch.linspace(0.001, 0.999, 500, dtype=torch.float64)
    scale = 30.0

    def loss_and_gradient(loss_fn):
        """Loss and d loss / d z_y against p_y = softmax(scale * z)_y, two classes with cosine
        logits z = [logit(p_y) / scale, 0]; the gradient is with respect to z_y."""
        z = torch.stack([torch.logit(p_y) / scale, torch.zeros_like(p_y)], dim=1).requires_grad_()
        loss = loss_fn(z, torch.zeros(len(p_y), dtype=torch.long))
        loss.sum().backward()
        return loss.detach().numpy(), z.grad[:, 0].numpy()

    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(9, 3.5))
    for margin in (0.0, 0.05, 0.1, 0.2, 0.5):

        def loss_fn(z, t, margin=margin):
            shifted = z - margin * F.one_hot(t, 2)
            return F.cross_entropy(scale * shifted, t, reduction="none")

        loss, grad = loss_and_gradient(loss_fn)
        label = "CE ($m_y=0$)" if margin == 0 else f"LDAM $m_y={margin:g}$"
        style = {"color": "black", "linestyle": "--"} if margin == 0 else {}
        ax_loss.plot(p_y, loss, label=label, **style)
        ax_grad.plot(p_y, grad, label=label, **style)
    ax_loss.set(xlabel="$p_y$ (softmax of $s z$)", ylabel="loss", ylim=(0, 20))
    ax_grad.set(xlabel="$p_y$ (softmax of $s z$)", ylabel="$\\partial L / \\partial z_y$")
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]
