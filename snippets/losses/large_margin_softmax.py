"""Large-margin softmax heads: CosFace / AM-Softmax and ArcFace.

Importing this file defines margin_logits and CosineMarginHead and needs only torch. Running it
also prints the examples and plots of docs/losses/large_margin_softmax.md (those need matplotlib
and scikit-learn).
"""

# --8<-- [start:checks]
import math

import torch
import torch.nn.functional as F

LOW_PRECISION = (torch.float16, torch.bfloat16)
KINDS = ("arcface", "cosface")


def describe(value):
    return str(value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__


def check_settings(kind, scale, margin):
    """Raise a ValueError that names the argument at fault."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not 0 < scale < math.inf:
        raise ValueError(f"scale must be a positive number, got {scale}")
    if not margin >= 0:
        raise ValueError(f"margin must be a nonnegative number, got {margin}")
    if kind == "arcface" and not margin < math.pi:
        raise ValueError(f"margin must be below pi (radians) for kind='arcface', got {margin}")


def check_labels(labels, batch, classes):
    integer = isinstance(labels, torch.Tensor) and not (
        labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool
    )
    if not integer:
        raise ValueError(f"labels must hold integer class indices, got {describe(labels)}")
    if tuple(labels.shape) != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    outside = (labels < 0) | (labels >= classes)
    if torch.compiler.is_compiling() or labels.device.type in ("cuda", "mps", "meta"):
        # Compiled, reading the data would break the graph; on CUDA or MPS, the host would wait
        # for the device. torch._assert_async checks on the device (CPU, CUDA, MPS kernels).
        torch._assert_async(~outside.any(), "labels must be in [0, C)")
    elif outside.any():  # eager: CPU (no device to wait for), or another device
        raise IndexError(
            f"labels {labels[outside][0].item()} is out of bounds: labels must be in [0, {classes})"
        )


# --8<-- [end:checks]


# --8<-- [start:margin_logits]
def margin_logits(cosine, labels, *, kind="arcface", scale=64.0, margin=0.5, easy_margin=False):
    """Scaled cosine logits (N, C) with an additive margin on each sample's true class.

    cosine[i, j] = cos(theta_ij), the cosine between embedding i and the weight of class j.
    kind="cosface": s * (cos(theta_y) - m).  kind="arcface": s * cos(theta_y + m).
    The other classes keep s * cos(theta_j). Feed the result to F.cross_entropy.
    """
    check_settings(kind, scale, margin)
    if not isinstance(cosine, torch.Tensor) or not cosine.is_floating_point():
        raise ValueError(f"cosine must be a floating-point tensor, got {describe(cosine)}")
    if cosine.dim() != 2:
        raise ValueError(f"cosine must have shape (N, C), got {tuple(cosine.shape)}")
    check_labels(labels, *cosine.shape)
    cos = cosine.float() if cosine.dtype in LOW_PRECISION else cosine
    index = labels.long().unsqueeze(1)
    cos_y = cos.gather(1, index)
    if kind == "cosface":
        target = cos_y - margin
    else:
        theta = torch.acos(cos_y.clamp(-1 + 1e-7, 1 - 1e-7))  # finite value and gradient
        target = torch.cos(theta + margin)
        if easy_margin:  # margin only where theta_y < 90 degrees
            target = torch.where(cos_y > 0, target, cos_y)
        else:  # beyond pi - m, keep the target logit decreasing in theta_y
            target = torch.where(
                theta <= math.pi - margin, target, cos_y - margin * math.sin(margin)
            )
    return (scale * cos.scatter(1, index, target)).to(cosine.dtype)


# --8<-- [end:margin_logits]


# --8<-- [start:head]
class CosineMarginHead(torch.nn.Module):
    """Last layer for CosFace/ArcFace training: one weight vector per class, used normalized.

    forward(embeddings, labels) -> logits with the margin, for F.cross_entropy (training).
    forward(embeddings)         -> s * cos(theta_j), no margin (inference, evaluation).
    """

    def __init__(
        self,
        embedding_size,
        num_classes,
        *,
        kind="arcface",
        scale=64.0,
        margin=0.5,
        easy_margin=False,
    ):
        super().__init__()
        check_settings(kind, scale, margin)
        self.kind, self.scale, self.margin, self.easy_margin = kind, scale, margin, easy_margin
        self.weight = torch.nn.Parameter(torch.randn(num_classes, embedding_size))

    def cosine(self, embeddings):
        if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
            raise ValueError(
                f"embeddings must be a floating-point tensor, got {describe(embeddings)}"
            )
        if embeddings.dim() != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape (N, {self.weight.shape[1]}), "
                f"got {tuple(embeddings.shape)}"
            )
        x = embeddings.float() if embeddings.dtype in LOW_PRECISION else embeddings
        weight = F.normalize(self.weight.to(x.dtype), dim=1)
        return F.normalize(x, dim=1) @ weight.T

    def forward(self, embeddings, labels=None):
        cosine = self.cosine(embeddings)
        if labels is None:
            return (self.scale * cosine).to(embeddings.dtype)
        logits = margin_logits(
            cosine,
            labels,
            kind=self.kind,
            scale=self.scale,
            margin=self.margin,
            easy_margin=self.easy_margin,
        )
        return logits.to(embeddings.dtype)


# --8<-- [end:head]


if __name__ == "__main__":
    # --8<-- [start:example]
    torch.manual_seed(0)
    head = CosineMarginHead(8, 3, kind="cosface", scale=30.0, margin=0.35)
    embeddings = torch.randn(4, 8)
    labels = torch.tensor([0, 1, 2, 0])
    train_logits = head(embeddings, labels)  # training: margin on the true class
    test_logits = head(embeddings)  # inference: s * cos(theta), no margin
    print(train_logits.detach())
    print(test_logits.detach())
    print("difference:", (test_logits - train_logits).detach())  # s * m = 10.5 at true class
    loss = F.cross_entropy(train_logits, labels)
    print("loss:", loss.item())
    # --8<-- [end:example]

    # --8<-- [start:arcface_angle]
    torch.manual_seed(0)
    arcface = CosineMarginHead(8, 3, kind="arcface", scale=64.0, margin=0.5)
    cosine = arcface.cosine(embeddings)
    theta = torch.acos(cosine.gather(1, labels.unsqueeze(1)))
    with_margin = arcface(embeddings, labels).gather(1, labels.unsqueeze(1)) / arcface.scale
    print("theta_y          :", theta.squeeze(1).detach())
    print("acos(logit_y / s):", torch.acos(with_margin).squeeze(1).detach())  # theta_y + 0.5
    # --8<-- [end:arcface_angle]

    # --8<-- [start:acos_nan]
    torch.manual_seed(0)
    v = F.normalize(torch.randn(10000, 128), dim=1)
    self_cosine = (v * v).sum(dim=1)  # mathematically exactly 1
    print("largest cos(v, v) in float32:", self_cosine.max().item())
    print("how many exceed 1          :", (self_cosine > 1).sum().item())
    print("acos of the largest        :", torch.acos(self_cosine.max()).item())
    one = torch.tensor(1.0, requires_grad=True)
    torch.acos(one).backward()
    print("d acos(c) / dc at c = 1    :", one.grad.item())
    # --8<-- [end:acos_nan]

    # --8<-- [start:errors]
    cosine = torch.zeros(4, 3)
    labels = torch.tensor([0, 2, 1, 2])
    for bad in (
        lambda: margin_logits(cosine, labels, kind="sphereface"),
        lambda: margin_logits(cosine, labels, margin=-0.5),
        lambda: margin_logits(cosine, labels, scale=0.0),
        lambda: margin_logits(cosine, labels.float()),
        lambda: margin_logits(cosine, torch.tensor([0, 3, 1, 2])),
        lambda: CosineMarginHead(8, 3)(torch.zeros(4, 6), labels),
    ):
        try:
            bad()
        except (ValueError, IndexError) as error:
            print(f"{type(error).__name__}: {error}")
    # --8<-- [end:errors]

    # --8<-- [start:margin_jumps]
    m, step = 0.5, 1e-6  # ArcFace margin (radians); angles just below and just above
    for name, easy_margin, edge in (
        ("easy_margin=True, at 90 degrees", True, math.pi / 2),
        ("threshold (default), at pi - m", False, math.pi - m),
    ):
        theta = torch.tensor([edge - step, edge + step], dtype=torch.float64)
        cosine = torch.stack([theta.cos(), torch.zeros_like(theta)], dim=1)  # class 0: target
        labels = torch.zeros(2, dtype=torch.long)
        logit = margin_logits(cosine, labels, scale=1.0, margin=m, easy_margin=easy_margin)
        below, above = logit[:, 0].tolist()
        print(f"{name}: {below:.4f} -> {above:.4f} (jump {above - below:+.4f})")
    # --8<-- [end:margin_jumps]

    # --8<-- [start:plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "large_margin_softmax"
    degrees = torch.linspace(0, 180, 721, dtype=torch.float64)
    theta = torch.deg2rad(degrees)
    cosine = torch.stack([theta.cos(), torch.zeros_like(theta)], dim=1)  # class 0 is the target
    labels = torch.zeros(len(theta), dtype=torch.long)
    cosface = margin_logits(cosine, labels, kind="cosface", scale=1.0, margin=0.35)[:, 0]
    arcface = margin_logits(cosine, labels, kind="arcface", scale=1.0, margin=0.5)[:, 0]
    easy = margin_logits(cosine, labels, scale=1.0, margin=0.5, easy_margin=True)[:, 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    left.plot(degrees, cosine[:, 0], label="softmax, $m=0$")
    left.plot(degrees, cosface, label="CosFace, $m=0.35$")
    left.plot(degrees, arcface, label="ArcFace, $m=0.5$")
    right.plot(degrees, torch.cos(theta + 0.5), "--", color="gray", label=r"$\cos(\theta_y+m)$")
    right.plot(
        degrees, arcface, color="C2", label=r"$\theta_y > \pi - m$: $\cos\theta_y - m\sin m$"
    )
    right.plot(
        degrees, easy, ":", color="C3", label=r"easy_margin: $\cos\theta_y$ if $\theta_y > 90°$"
    )
    right.axvline(180 - math.degrees(0.5), color="gray", linewidth=0.8)
    left.set(ylabel="$z_y / s$")
    for ax in (left, right):
        ax.set(xlabel=r"$\theta_y$ (°)", xticks=range(0, 181, 30))
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]

    # --8<-- [start:experiment]
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()  # 1797 images of 8x8 pixels, 10 classes
    split = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )
    X_train, X_test = (torch.tensor(a, dtype=torch.float32) for a in split[:2])
    y_train, y_test = (torch.tensor(a) for a in split[2:])

    def train(**head_settings):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
        head = CosineMarginHead(16, 10, scale=16.0, **head_settings)
        optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=3e-3)
        for _ in range(300):
            loss = F.cross_entropy(head(net(X_train), y_train), y_train)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            cosine = head.cosine(net(X_test))
        accuracy = (cosine.argmax(dim=1) == y_test).float().mean().item()
        own = torch.acos(cosine.gather(1, y_test.unsqueeze(1)).clamp(-1, 1))
        return accuracy, torch.rad2deg(own).mean().item()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains faster on one thread
    results = {
        "normalized softmax, $m=0$": train(kind="cosface", margin=0.0),
        "CosFace, $m=0.35$": train(kind="cosface", margin=0.35),
        "ArcFace, $m=0.5$": train(kind="arcface", margin=0.5),
    }
    torch.set_num_threads(threads)
    print("| head ($s=16$) | acc | mean $\\theta_y$ (°) |")
    print("|---|---:|---:|")
    for name, (accuracy, angle) in results.items():
        print(f"| {name} | {accuracy:.3f} | {angle:.1f} |")
    # --8<-- [end:experiment]
