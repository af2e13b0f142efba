"""Losses that tolerate noisy labels: generalized cross-entropy (GCE) and symmetric CE (SCE).

Importing this file defines generalized_cross_entropy and symmetric_cross_entropy and needs only
torch. Running it also prints the examples and plots of docs/losses/noisy_labels.md (those need
matplotlib and scikit-learn).
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


# --8<-- [start:true_class_log_prob]
def true_class_log_prob(input, target):
    """log p_y from log_softmax, in float32 for float16/bfloat16 input; shape (N, d1, ..., dk)."""
    logits = input.float() if input.dtype in LOW_PRECISION else input
    log_probs = torch.log_softmax(logits, dim=1)
    return log_probs.gather(1, target.long().unsqueeze(1)).squeeze(1)


# --8<-- [end:true_class_log_prob]


# --8<-- [start:gce]
def generalized_cross_entropy(input, target, *, q=0.7, reduction="mean"):
    """GCE (Zhang & Sabuncu, NeurIPS 2018): (1 - p_y**q) / q per sample."""
    check_logits_and_target(input, target)
    check_reduction(reduction)
    if not 0 < q <= 1:  # also rejects NaN
        raise ValueError(f"q must be in (0, 1], got {q}")
    log_p_y = true_class_log_prob(input, target)
    loss = -torch.expm1(q * log_p_y) / q  # (1 - p_y**q) / q
    return reduce(loss, reduction).to(input.dtype)


# --8<-- [end:gce]


# --8<-- [start:sce]
def symmetric_cross_entropy(input, target, *, alpha=0.1, beta=1.0, log_zero=-4.0, reduction="mean"):
    """SCE (Wang et al., ICCV 2019): alpha * CE + beta * RCE, with log 0 taken as log_zero."""
    check_logits_and_target(input, target)
    check_reduction(reduction)
    for name, value in {"alpha": alpha, "beta": beta}.items():
        if not value >= 0:
            raise ValueError(f"{name} must be a nonnegative number, got {value}")
    if not log_zero < 0:
        raise ValueError(f"log_zero must be a negative number, got {log_zero}")
    log_p_y = true_class_log_prob(input, target)
    cross_entropy = -log_p_y
    reverse_cross_entropy = log_zero * torch.expm1(log_p_y)  # -log_zero * (1 - p_y)
    loss = alpha * cross_entropy + beta * reverse_cross_entropy
    return reduce(loss, reduction).to(input.dtype)


# --8<-- [end:sce]


if __name__ == "__main__":
    # --8<-- [start:limits]
    import math

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = torch.randn(6, 5, dtype=torch.float64) * 2
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    ce = F.cross_entropy(logits, target)
    p_y = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)

    print(f"cross_entropy             : {ce.item():.8f}")
    for q in (1.0, 0.7, 0.1, 1e-2, 1e-4, 1e-8):
        gce = generalized_cross_entropy(logits, target, q=q)
        print(f"GCE q={q:<8g}            : {gce.item():.8f}")
    print(f"mean(1 - p_y)             : {(1 - p_y).mean().item():.8f}")
    one_hot = F.one_hot(target, 5).double()
    mae = (F.softmax(logits, dim=1) - one_hot).abs().sum(dim=1).mean()
    print(f"MAE(softmax, one-hot) / 2 : {(mae / 2).item():.8f}")
    sce = symmetric_cross_entropy(logits, target, alpha=1.0, beta=0.0)
    print(f"SCE alpha=1, beta=0       : {sce.item():.8f}")
    rce = symmetric_cross_entropy(logits, target, alpha=0.0, beta=1.0)
    print(f"SCE alpha=0, beta=1 (RCE) : {rce.item():.8f}")
    print(f"4 * mean(1 - p_y)         : {(4 * (1 - p_y)).mean().item():.8f}")
    # --8<-- [end:limits]

    # --8<-- [start:bounded]
    wrong = torch.tensor([[0.0, 30.0, 0.0], [0.0, 300.0, 0.0]])  # class 1 wins, target is 0
    target = torch.tensor([0, 0])
    print("cross_entropy :", F.cross_entropy(wrong, target, reduction="none"))
    print("GCE q=0.7     :", generalized_cross_entropy(wrong, target, reduction="none"))
    print("  its bound 1/q =", 1 / 0.7)
    print("SCE           :", symmetric_cross_entropy(wrong, target, reduction="none"))
    print(
        "  RCE part, bound -beta*log_zero:",
        symmetric_cross_entropy(wrong, target, alpha=0.0, reduction="none"),
    )
    wrong_logits = wrong.clone().requires_grad_()
    gradients = {}  # d loss / d z_y (the true class, 0) for each of the two samples
    for name, loss_fn in {
        "cross_entropy": F.cross_entropy,
        "GCE q=0.7": generalized_cross_entropy,
        "SCE": symmetric_cross_entropy,
    }.items():
        (gradient,) = torch.autograd.grad(
            loss_fn(wrong_logits, target, reduction="sum"), wrong_logits
        )
        gradients[name] = gradient[:, 0]
        print(f"d/dz_y {name:13}:", gradients[name])
    # --8<-- [end:bounded]

    # --8<-- [start:authors_code]
    torch.manual_seed(0)
    logits = torch.randn(8, 10)
    target = torch.randint(0, 10, (8,))
    # The authors' code computes RCE with the one-hot target clipped to [1e-4, 1]:
    p = F.softmax(logits, dim=1)
    clipped_one_hot = F.one_hot(target, 10).float().clamp(1e-4, 1.0)
    reference = (-(p * clipped_one_hot.log()).sum(dim=1)).mean()
    ours = symmetric_cross_entropy(logits, target, alpha=0.0, beta=1.0, log_zero=math.log(1e-4))
    print("RCE, authors' clipping :", reference.item())
    print("RCE, log_zero=log(1e-4):", ours.item())
    # Its CE term clips the prediction to [1e-7, 1], which caps that term at -log(1e-7):
    far = torch.tensor([[0.0, 30.0, 0.0], [0.0, 300.0, 0.0]], requires_grad=True)  # target 0
    clipped_p_y = F.softmax(far, dim=1)[:, 0].clamp(1e-7, 1.0)
    clipped_ce = -clipped_p_y.log()
    (clipped_grad,) = torch.autograd.grad(clipped_ce.sum(), far)
    print("CE, authors' clipping  :", clipped_ce.detach(), " -log(1e-7) =", -math.log(1e-7))
    print("  its d/dz_y           :", clipped_grad[:, 0])
    # --8<-- [end:authors_code]

    # --8<-- [start:errors]
    logits = torch.zeros(4, 3)
    target = torch.tensor([0, 2, 1, 2])
    for bad in (
        lambda: generalized_cross_entropy(logits, target, q=0.0),
        lambda: generalized_cross_entropy(logits, target, q=1.5),
        lambda: symmetric_cross_entropy(logits, target, log_zero=0.0),
        lambda: symmetric_cross_entropy(logits, target, beta=-1.0),
        lambda: generalized_cross_entropy(logits, target.float()),
        lambda: generalized_cross_entropy(logits, torch.tensor([0, 3, 1, 2])),
        lambda: symmetric_cross_entropy(logits, target[:3]),
        lambda: symmetric_cross_entropy(logits, target, reduction="batchmean"),
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

    plt.rcParams["svg.hashsalt"] = "noisy_labels-curves"
    C = 10  # every other logit is 0, so p_y = exp(z) / (exp(z) + C - 1)
    p_y = torch.linspace(0.005, 0.995, 397, dtype=torch.float64)
    z = torch.log(p_y * (C - 1) / (1 - p_y))
    curves = {
        "CE": lambda x, y: F.cross_entropy(x, y, reduction="none"),
        "GCE $q=0.7$": lambda x, y: generalized_cross_entropy(x, y, reduction="none"),
        "GCE $q=1$ (MAE/2)": lambda x, y: generalized_cross_entropy(x, y, q=1.0, reduction="none"),
        "SCE $\\alpha=0.1, \\beta=1$": lambda x, y: symmetric_cross_entropy(x, y, reduction="none"),
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
    left.set(xlabel="$p_y$", ylabel="loss", ylim=(0, 5), title="$C = 10$")
    right.set(xlabel="$p_y$", ylabel=r"$\partial L / \partial z_y$")
    left.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:plot]

    # --8<-- [start:experiment]
    import torch.nn as nn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()  # 1797 images of 8x8 pixels, 10 classes
    split = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )
    X_train, X_test = (torch.tensor(a, dtype=torch.float32) for a in split[:2])
    y_train, y_test = (torch.tensor(a) for a in split[2:])

    generator = torch.Generator().manual_seed(0)
    flipped = torch.rand(len(y_train), generator=generator) < 0.4  # 40% of the labels...
    shift = torch.randint(1, 10, (len(y_train),), generator=generator)
    y_noisy = torch.where(flipped, (y_train + shift) % 10, y_train)  # ...move to another class
    print(f"Flipped: {flipped.float().mean():.1%} of the {len(y_train)} training labels.\n")

    def train(loss_fn, steps=600):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        history = []
        for step in range(1, steps + 1):
            loss = loss_fn(model(X_train), y_noisy)  # full batch: the whole training set
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 20 == 0:
                with torch.no_grad():
                    test = (model(X_test).argmax(1) == y_test).float().mean().item()
                    fitted = model(X_train[flipped]).argmax(1) == y_noisy[flipped]
                history.append((step, test, fitted.float().mean().item()))
        return history

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains faster on one thread
    histories = {
        "CE": train(F.cross_entropy),
        "GCE q=0.7": train(generalized_cross_entropy),
        "GCE q=1 (MAE/2)": train(lambda x, y: generalized_cross_entropy(x, y, q=1.0)),
        "SCE": train(symmetric_cross_entropy),
    }
    torch.set_num_threads(threads)

    print("| loss | acc@100 | max acc | acc@600 | flipped fitted@600 |")
    print("|---|---:|---:|---:|---:|")
    for name, history in histories.items():
        at_100 = next(test for step, test, _ in history if step == 100)
        best = max(test for _, test, _ in history)
        _, last, fitted = history[-1]
        print(f"| {name} | {at_100:.3f} | {best:.3f} | {last:.3f} | {fitted:.2f} |")
    # --8<-- [end:experiment]

    # --8<-- [start:experiment_plot]
    plt.rcParams["svg.hashsalt"] = "noisy_labels-experiment"
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, history in histories.items():
        steps, test, fitted = zip(*history, strict=True)
        left.plot(steps, test, label=name)
        right.plot(steps, fitted, label=name)
    left.set(xlabel="step", ylabel="acc (test)")
    right.set(xlabel="step", ylabel="flipped fitted (train)")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:experiment_plot]
