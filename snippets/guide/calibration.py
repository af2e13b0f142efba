"""Calibration of a classifier's probabilities: the expected calibration error (ECE) with
equal-width or equal-mass bins, reliability tables, and temperature scaling (Guo et al., ICML
2017) as fit_temperature(logits, target) -> float and a module that applies it.

The functions above `if __name__ == "__main__":` need only PyTorch: copy them. Run the file to
see the examples of its page (docs/guide/calibration.md); those also train the comparison
experiment's model (snippets/guide/experiment_run.py, which needs scikit-learn).
"""

# --8<-- [start:ece]
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BINNINGS = ("equal_width", "equal_mass")


def _check_logits_and_target(logits, target, name="logits"):
    if not (torch.is_tensor(logits) and logits.is_floating_point()):
        got = logits.dtype if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(f"{name} must be a floating-point tensor of shape (N, C), got {got}")
    if logits.dim() != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (N, C) with N >= 1 and C >= 2, got {tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} must be finite (no nan or inf)")
    if not torch.is_tensor(target) or target.is_floating_point() or target.dtype == torch.bool:
        got = target.dtype if torch.is_tensor(target) else type(target).__name__
        raise ValueError(f"target must hold integer class indices (torch.int64), got {got}")
    if tuple(target.shape) != (logits.shape[0],):
        raise ValueError(
            f"target must have shape ({logits.shape[0]},) for {name} of shape "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if bool(((target < 0) | (target >= logits.shape[1])).any()):
        raise ValueError(f"target must be class indices in [0, {logits.shape[1]})")


def reliability_bins(logits: Tensor, target: Tensor, bins: int = 15, binning="equal_width"):
    """Count, mean top-1 confidence and accuracy of each confidence bin.

    The confidence of a prediction is its largest softmax probability (computed in float64).
    "equal_width": bin b holds the confidences in (b / bins, (b + 1) / bins] (bin 0 also holds
    0), as in Guo et al.'s code. "equal_mass": the predictions sorted by confidence are cut into
    `bins` groups whose sizes differ by at most one (ties may fall on both sides of a cut).
    Empty bins have confidence and accuracy None.
    """
    _check_logits_and_target(logits, target)
    if not (isinstance(bins, int) and not isinstance(bins, bool) and bins >= 1):
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")
    probabilities = torch.softmax(logits.double(), dim=1)
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == target).double()
    if binning == "equal_width":
        inner_edges = torch.arange(1, bins, dtype=torch.float64) / bins
        index = torch.bucketize(confidence, inner_edges)  # (edge[b-1], edge[b]] -> b
    else:
        order = torch.argsort(confidence, stable=True)
        index = torch.empty_like(order)
        for b, members in enumerate(torch.tensor_split(order, bins)):
            index[members] = b
    table = {"count": [], "confidence": [], "accuracy": []}
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        table["count"].append(n)
        table["confidence"].append(confidence[members].mean().item() if n else None)
        table["accuracy"].append(correct[members].mean().item() if n else None)
    return table


def expected_calibration_error(
    logits: Tensor, target: Tensor, bins: int = 15, binning="equal_width"
) -> float:
    """ECE = sum over bins of (bin size / N) * |accuracy - mean confidence| (Guo et al. 2017)."""
    table = reliability_bins(logits, target, bins, binning)
    n = sum(table["count"])
    return sum(
        count / n * abs(accuracy - confidence)
        for count, confidence, accuracy in zip(*table.values(), strict=True)
        if count
    )


# --8<-- [end:ece]


# --8<-- [start:temperature]
def fit_temperature(logits: Tensor, target: Tensor) -> float:
    """The temperature T > 0 that minimizes the mean NLL of softmax(logits / T) on a held-out
    split (temperature scaling, Guo et al. 2017). Use validation logits, never test logits.

    The NLL is convex in beta = 1 / T, so its derivative in beta, mean(E_p[z] - z_y), is
    increasing: its zero is found by bisection on log(beta), in float64, for T in [1e-3, 1e3].
    A minimum exists only if some prediction is wrong (otherwise the NLL keeps decreasing as
    T -> 0) and the logits do better than a uniform guess (otherwise it decreases as T -> inf);
    ValueError says which condition failed, or that the minimum lies outside [1e-3, 1e3].
    """
    _check_logits_and_target(logits, target)
    z = logits.detach().double()
    z_true = z.gather(1, target.long().unsqueeze(1)).squeeze(1)
    if bool((z_true >= z.max(dim=1).values).all()):
        raise ValueError(
            "every validation prediction is right, so the NLL keeps decreasing as T -> 0 and "
            "no temperature minimizes it; use a larger validation split"
        )

    def slope(log_beta: float) -> float:  # d NLL / d beta at beta = exp(log_beta)
        p = torch.softmax(math.exp(log_beta) * z, dim=1)
        return ((p * z).sum(dim=1) - z_true).mean().item()

    if (z.mean(dim=1) - z_true).mean().item() >= 0:  # the slope at beta = 0
        raise ValueError(
            "the logits do no better than a uniform guess on average (the NLL decreases as "
            "T -> inf); check that logits and target belong together"
        )
    low, high = math.log(1e-3), math.log(1e3)  # log(beta) bounds: T from 1e3 down to 1e-3
    if slope(low) > 0:
        raise ValueError("the NLL-minimizing temperature is above 1e3")
    if slope(high) < 0:
        raise ValueError("the NLL-minimizing temperature is below 1e-3")
    for _ in range(100):  # 100 halvings of an interval of width 13.8 reach float64 precision
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
    return math.exp(-(low + high) / 2)


class TemperatureScaling(nn.Module):
    """Divides logits by a fixed temperature. nn.Sequential(model, TemperatureScaling(T))
    gives calibrated logits; for T > 0 the argmax, and so the accuracy, does not change (up to
    floating-point ties: two different logits may round to the same quotient)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        if not (isinstance(temperature, int | float) and 0 < temperature < math.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    @classmethod
    def fit(cls, logits: Tensor, target: Tensor) -> "TemperatureScaling":
        """The module with the temperature that fit_temperature finds on (logits, target)."""
        return cls(fit_temperature(logits, target))

    def forward(self, logits: Tensor) -> Tensor:
        return logits / self.temperature.to(logits.dtype)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature.item():.4f}"


def nll(logits: Tensor, target: Tensor) -> float:
    """Mean negative log-likelihood in float64."""
    return F.cross_entropy(logits.double(), target).item()


# --8<-- [end:temperature]


if __name__ == "__main__":
    # --8<-- [start:hand]
    # Four predictions: top-1 confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.4 (wrong).
    probabilities = torch.tensor(
        [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.4, 0.3, 0.3]],
        dtype=torch.float64,
    )
    target = torch.tensor([0, 1, 1, 2])
    logits = probabilities.log()  # softmax(log p) = p
    table = reliability_bins(logits, target, bins=15)
    for b, (n, conf, acc) in enumerate(zip(*table.values(), strict=True)):
        if n:
            print(f"bin {b:2d} ({b}/15, {b + 1}/15]: n = {n}, confidence {conf:.2f}, acc {acc:.2f}")
    print("ECE =", round(expected_calibration_error(logits, target, bins=15), 12))
    # --8<-- [end:hand]

    # --8<-- [start:synthetic]
    # Logits whose true distribution is known: labels are drawn from softmax(z), and the
    # model reports z * 3, i.e. it is overconfident by a temperature of exactly 3.
    generator = torch.Generator().manual_seed(0)
    z = 2.0 * torch.randn(20000, 10, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    reported = 3.0 * z
    half = len(labels) // 2  # fit on the first half, measure on the second
    t = fit_temperature(reported[:half], labels[:half])
    print(f"fitted temperature: {t:.3f} (true: 3)")
    scaled = TemperatureScaling(t)(reported[half:])
    for name, values in (("before", reported[half:]), ("after", scaled)):
        ece = expected_calibration_error(values, labels[half:])
        print(f"{name:6s}: NLL {nll(values, labels[half:]):.4f}, ECE {ece:.4f}")
    same = torch.equal(reported[half:].argmax(dim=1), scaled.argmax(dim=1))
    print("argmax unchanged:", same)
    # --8<-- [end:synthetic]

    # --8<-- [start:experiment]
    import sys
    from pathlib import Path

    # The comparison experiment, experiment_run.py, is in this file's folder; the site runs this
    # code from the repository root, where __file__ is not set.
    here = Path(globals().get("__file__", "snippets/guide/calibration.py")).resolve().parent
    sys.path.insert(0, str(here.parent))  # the snippets root
    from guide import experiment_run as cl

    torch.set_num_threads(1)  # as the experiment runs: the results are then bit for bit its own
    torch.use_deterministic_algorithms(True)
    regime, seed = "balanced", 0
    x_train, y_train, x_val, y_val, x_test, y_test, classes = cl.make_split(regime, seed)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_val, y_val = torch.from_numpy(x_val), torch.from_numpy(y_val)
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    counts = torch.bincount(y_train, minlength=classes).float()
    runs = {}
    for name in ("ce", "label_smoothing", "focal"):
        model = cl.train(name, x_train, y_train, x_test, classes, seed)[0]
        with torch.no_grad():
            runs[name] = (
                cl.predicted_logits(name, model(x_val), counts),
                cl.predicted_logits(name, model(x_test), counts),
            )
    print(f"{regime}, seed {seed}: {len(y_train)} training, {len(y_val)} validation and "
          f"{len(y_test)} test images")  # fmt: skip
    # --8<-- [end:experiment]

    # --8<-- [start:bins]
    val_logits, test_logits = runs["ce"]
    print("CE's test ECE with different bins")
    print("bins  equal_width  equal_mass")
    for bins in (5, 10, 15, 20, 30, 50, 100):
        width = expected_calibration_error(test_logits, y_test, bins, "equal_width")
        mass = expected_calibration_error(test_logits, y_test, bins, "equal_mass")
        print(f"{bins:4d}  {width:11.4f}  {mass:10.4f}")
    filled = sum(n > 0 for n in reliability_bins(test_logits, y_test, 15)["count"])
    top = reliability_bins(test_logits, y_test, 15)["count"][-1]
    print(f"15 equal-width bins: {filled} hold predictions; the last one holds {top} of "
          f"{len(y_test)}")  # fmt: skip
    table = reliability_bins(test_logits, y_test, 15)
    rows = zip(table["count"], table["confidence"], table["accuracy"], strict=True)
    print("bin m  predictions  confidence  accuracy  contribution |B_m|/N |acc - conf|")
    for m, (n, conf, acc) in enumerate(rows, start=1):
        if n:
            part = n / len(y_test) * abs(acc - conf)
            print(f"{m:5d}  {n:11d}  {conf:10.3f}  {acc:8.3f}  {part:.4f}")
    # --8<-- [end:bins]

    # --8<-- [start:scaling]
    print("loss             T      acc before/after   NLL before/after   ECE before/after")
    scalers = {}
    for name, (val_logits, test_logits) in runs.items():
        scalers[name] = TemperatureScaling.fit(val_logits, y_val)  # fitted on validation only
        scaled = scalers[name](test_logits)
        acc = [(v.argmax(dim=1) == y_test).double().mean().item() for v in (test_logits, scaled)]
        nlls = [nll(v, y_test) for v in (test_logits, scaled)]
        eces = [expected_calibration_error(v, y_test) for v in (test_logits, scaled)]
        t = scalers[name].temperature.item()
        print(f"{cl.LOSSES[name]:15s} {t:5.3f}  {acc[0]:.3f} / {acc[1]:.3f}      "
              f"{nlls[0]:.4f} / {nlls[1]:.4f}    {eces[0]:.4f} / {eces[1]:.4f}")  # fmt: skip
    # --8<-- [end:scaling]

    # --8<-- [start:diagrams]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "calibration", "font.size": 10})
    fig, axes = plt.subplots(2, 3, figsize=(7.8, 5.4), sharex=True, sharey=True)
    for column, (name, (_, test_logits)) in enumerate(runs.items()):
        for row, logits in enumerate((test_logits, scalers[name](test_logits))):
            table = reliability_bins(logits, y_test, 15)
            filled = [i for i, n in enumerate(table["count"]) if n]
            x = [table["confidence"][i] for i in filled]
            y = [table["accuracy"][i] for i in filled]
            size = [4 + 300 * table["count"][i] / len(y_test) for i in filled]
            ax = axes[row, column]
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
            ax.plot(x, y, color="tab:blue", linewidth=1, alpha=0.6)
            ax.scatter(x, y, s=size, color="tab:blue", zorder=3, clip_on=False)
            when = "" if row == 0 else f", T = {scalers[name].temperature.item():.2f}"
            ece = expected_calibration_error(logits, y_test)
            ax.set_title(f"{cl.LOSSES[name]}{when}\nECE {ece:.3f}", fontsize=9)
            ax.set(xlim=(0, 1.02), ylim=(0, 1.02), aspect="equal")
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("$\\hat{p}$")
    for ax in axes[:, 0]:
        ax.set_ylabel("acc")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    print(f'<div class="plot">{svg[svg.index("<svg") :]}</div>')
    # --8<-- [end:diagrams]

    # --8<-- [start:all_runs]
    from guide import experiment_report as lc  # it reads the committed results

    results = lc.load()
    print(lc.scaling_table(results, list(results["losses"]), "ece"), end="\n\n")
    print(lc.scaling_table(results, list(results["losses"]), "nll"), end="\n\n")
    # How closely the losses' mean NLL after temperature scaling follows their mean accuracy
    for regime in results["regimes"]:
        metric = lc.HEADLINE[regime]  # balanced accuracy in the long-tailed regime
        accuracy = [lc.mean(results, regime, x, metric) for x in results["losses"]]
        nll_ts = [lc.mean(results, regime, x, "nll_ts") for x in results["losses"]]
        r = torch.corrcoef(torch.tensor([accuracy, nll_ts], dtype=torch.float64))[0, 1].item()
        print(f"{regime}: correlation of mean {metric} and mean NLL after TS over "
              f"{len(accuracy)} losses: {r:.3f}")  # fmt: skip
    # --8<-- [end:all_runs]

    # --8<-- [start:errors]
    bad_calls = {
        "integer logits": lambda: fit_temperature(torch.ones(4, 3, dtype=torch.long), target),
        "1-D logits": lambda: fit_temperature(torch.randn(4), target),
        "float target": lambda: fit_temperature(torch.randn(4, 3), target.float()),
        "target out of range": lambda: fit_temperature(torch.randn(4, 3), target + 1),
        "nan logit": lambda: fit_temperature(torch.tensor([[0.0, math.nan]] * 4), target % 2),
        "all right": lambda: fit_temperature(10.0 * F.one_hot(target, 3).double(), target),
        "temperature 0": lambda: TemperatureScaling(0.0),
    }
    for name, call in bad_calls.items():
        try:
            call()
        except ValueError as error:
            print(f"{name}: ValueError: {error}")
    # --8<-- [end:errors]
