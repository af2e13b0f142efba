"""Compare losses for multi-class classification on scikit-learn's digits, on a CPU.

Three training regimes (balanced; long-tailed with imbalance ratio 100; 40% symmetric label
noise), one small MLP, one optimizer budget, several seeds. A balanced validation split with
correct labels, carved from the training pool (never from the test split), is used for one
thing only: fitting each model's temperature (temperature scaling); the test metrics are
reported before and after it. Every run is deterministic, so the committed results
(experiment_results.json and .csv, next to this file) can be reproduced bit for bit:

    .venv/bin/python snippets/guide/experiment_run.py                # everything, a few minutes
    .venv/bin/python snippets/guide/experiment_run.py --regimes long_tailed --seeds 0 \
        --losses ce logit_adjusted --output /tmp/slice.json         # a slice
"""

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    recall_score,
)
from torch import nn
from tqdm import tqdm

# The losses come from snippets/losses/, one file per loss page; ECE and temperature scaling
# from snippets/guide/calibration.py, next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from guide.calibration import expected_calibration_error, fit_temperature, reliability_bins
from losses.class_balanced import class_balanced_weights
from losses.focal import focal_loss
from losses.ldam import LDAMLoss
from losses.logit_adjustment import (
    logit_adjusted_cross_entropy,
    post_hoc_logit_adjustment,
)
from losses.noisy_labels import generalized_cross_entropy, symmetric_cross_entropy
from losses.poly import poly1_cross_entropy

RESULTS = Path(__file__).resolve().parent / "experiment_results.json"

CONFIG = {
    "dataset": "sklearn.datasets.load_digits (1797 images, 8x8, 10 classes)",
    "features": "pixel / 16",
    "test_per_class": 50,  # test split: 50 images of every class, so it is balanced
    "val_per_class": 20,  # validation split: 20 more of every class, correct labels, balanced
    "long_tailed_max": 100,  # long-tailed training split: n_c = round(100 * 100 ** (-r / 9))
    "imbalance_ratio": 100,
    "noise_rate": 0.4,  # this fraction of training labels is replaced by a different class
    "hidden": 128,  # MLP 64 -> 128 -> 128 -> 10, ReLU
    "batch_size": 64,
    "steps": 1000,  # optimizer steps per run, the same for every loss and regime
    "curve_every": 50,  # test accuracy is also recorded every this many steps (not used to stop)
    "optimizer": "SGD",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "drw_start_fraction": 0.8,  # LDAM-DRW: class-balanced weights from this fraction of steps
    "cosine_scale": 30.0,  # LDAM-DRW and cosine CE: s * cos(feature, class vector), s = 30
    "ece_bins": 15,
    "seeds": [0, 1, 2, 3, 4],
}

REGIMES = ("balanced", "long_tailed", "noisy")

# name -> short language-neutral label used in tables and plots
LOSSES = {
    "ce": "CE",
    "weighted_ce": "CE + 1/n weights",
    "class_balanced": "CB CE β=0.99",
    "label_smoothing": "CE + LS 0.1",
    "focal": "focal γ=2",
    "poly1": "Poly-1 ε=1",
    "logit_adjusted": "LA loss τ=1",
    "posthoc_la": "CE + post-hoc LA τ=1",
    "cosine_ce": "cosine CE s=30",
    "ldam_drw": "LDAM-DRW s=30",
    "gce": "GCE q=0.7",
    "sce": "SCE α=0.1 β=1",
}
POSTHOC = {"posthoc_la": "ce"}  # computed from another loss's trained model, not trained itself
COSINE = ("cosine_ce", "ldam_drw")  # trained with a cosine head: logits = s * cos(h, w_c)
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "nll", "ece", "nll_ts", "ece_ts")
NOTES = {
    "accuracy": "test accuracy; the test split is balanced, so it equals balanced_accuracy",
    "nll": "sklearn.metrics.log_loss of the softmax of the loss's logits, in float64",
    "ece": "expected calibration error, 15 equal-width bins of the top-1 confidence",
    "temperature": "fit_temperature on the validation split's logits and labels",
    "nll_ts": "nll of the test logits divided by the temperature",
    "ece_ts": "ece of the test logits divided by the temperature",
    "accuracy_ts": "accuracy of the test logits divided by the temperature",
    "val_nll": "validation NLL before and after temperature scaling",
    "train_accuracy": "accuracy on the labels the model was trained on (noisy in 'noisy')",
    "train_time_s": "CPU seconds spent in training steps (one thread); depends on the machine",
    "test_accuracy_curve": "test accuracy every curve_every steps; never used to stop early",
    "posthoc_la": "CE's trained model with its logits adjusted at test time; CE's train time",
}
DRW_BETA = 0.9999  # deferred re-weighting uses class-balanced weights with this beta (Cao et al.)


def long_tailed_counts(classes: int, largest: int, ratio: float) -> list[int]:
    """Exponential profile: n_r = round(largest * ratio ** (-r / (classes - 1))), r = 0..C-1."""
    return [round(largest * ratio ** (-r / (classes - 1))) for r in range(classes)]


def symmetric_noise(labels: np.ndarray, rate: float, classes: int, rng) -> np.ndarray:
    """A copy of labels where exactly round(rate * n) of them, drawn at random, are moved to a
    uniformly drawn *other* class."""
    noisy = labels.copy()
    flip = rng.permutation(len(labels))[: round(rate * len(labels))]
    noisy[flip] = (labels[flip] + rng.integers(1, classes, size=len(flip))) % classes
    return noisy


def split_indices(regime: str, seed: int, config: dict = CONFIG):
    """Indices into load_digits() of the training, validation and test images, and the training
    labels (noisy in the "noisy" regime). The same for every loss, different for every seed.
    The validation split comes out of the training pool before the regime is applied, so it is
    balanced and its labels are correct in every regime."""
    y = load_digits().target.astype(np.int64)
    classes = int(y.max()) + 1
    rng = np.random.default_rng([seed, REGIMES.index(regime)])
    test, val, pool = [], [], []
    held_out = config["test_per_class"] + config["val_per_class"]
    for c in range(classes):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: config["test_per_class"]])  # a balanced test split
        val.append(members[config["test_per_class"] : held_out])  # a balanced validation split
        pool.append(members[held_out:])
    if regime == "long_tailed":
        # Classes take the ranks of the exponential profile in a random order.
        counts = long_tailed_counts(classes, config["long_tailed_max"], config["imbalance_ratio"])
        rank = rng.permutation(classes)
        pool = [members[: counts[r]] for members, r in zip(pool, rank, strict=True)]
    train = rng.permutation(np.concatenate(pool))
    y_train = y[train]
    if regime == "noisy":
        y_train = symmetric_noise(y_train, config["noise_rate"], classes, rng)
    return train, np.sort(np.concatenate(val)), np.sort(np.concatenate(test)), y_train


def make_split(regime: str, seed: int, config: dict = CONFIG):
    """x_train, y_train, x_val, y_val, x_test, y_test (numpy) and the number of classes."""
    digits = load_digits()
    x, y = digits.data.astype(np.float32) / 16.0, digits.target.astype(np.int64)
    train, val, test, y_train = split_indices(regime, seed, config)
    return x[train], y_train, x[val], y[val], x[test], y[test], int(y.max()) + 1


class CosineHead(nn.Module):
    """cos(h, w_c) for every class c: normalized features times normalized class vectors, as in
    the LDAM paper's NormedLinear. It wraps a linear layer to reuse its initial weight (its
    bias is not used); the loss multiplies the cosines by its scale s."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, features):
        return F.normalize(features, dim=1) @ F.normalize(self.linear.weight, dim=1).T


def make_model(features: int, classes: int, hidden: int, cosine: bool = False) -> nn.Module:
    """The MLP 64 -> hidden -> hidden -> classes; with cosine=True its last layer is a cosine
    head built on the same initial weight."""
    layers = [nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()]
    last = nn.Linear(hidden, classes)  # created last, so every model starts from one draw
    return nn.Sequential(*layers, CosineHead(last) if cosine else last)


def make_criterion(name: str, class_counts: torch.Tensor, config: dict = CONFIG):
    """The training loss as a function (logits, target) -> scalar, from the training counts.
    For the cosine-head losses the "logits" are the cosines, which the loss multiplies by s."""
    prior = class_counts / class_counts.sum()
    if name == "ce":
        return F.cross_entropy
    if name == "weighted_ce":  # inverse-frequency class weights
        weight = (1.0 / class_counts) * len(class_counts) / (1.0 / class_counts).sum()
        return lambda z, y: F.cross_entropy(z, y, weight=weight)
    if name == "class_balanced":
        weight = class_balanced_weights(class_counts, beta=0.99)
        return lambda z, y: F.cross_entropy(z, y, weight=weight)
    if name == "label_smoothing":
        return lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1)
    if name == "focal":
        return lambda z, y: focal_loss(z, y, gamma=2.0)
    if name == "poly1":
        return lambda z, y: poly1_cross_entropy(z, y, epsilon=1.0)
    if name == "logit_adjusted":
        return lambda z, y: logit_adjusted_cross_entropy(z, y, prior, tau=1.0)
    if name == "cosine_ce":  # LDAM without margins is CE of s * cosine
        return LDAMLoss(class_counts, max_margin=0.0, scale=config["cosine_scale"])
    if name == "ldam_drw":
        return LDAMLoss(class_counts, max_margin=0.5, scale=config["cosine_scale"])
    if name == "gce":
        return lambda z, y: generalized_cross_entropy(z, y, q=0.7)
    if name == "sce":
        return lambda z, y: symmetric_cross_entropy(z, y, alpha=0.1, beta=1.0, log_zero=-4.0)
    raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")


def predicted_logits(name, model_logits, class_counts, config: dict = CONFIG):
    """The logits whose softmax is the model's predicted distribution under its loss."""
    if name in COSINE:  # softmax(s * cosine), without margins: the predicted distribution
        return model_logits * config["cosine_scale"]
    if name == "posthoc_la":  # CE's logits minus tau * log(prior)
        return post_hoc_logit_adjustment(model_logits, class_counts / class_counts.sum(), tau=1.0)
    return model_logits


def train(name, x_train, y_train, x_test, classes, seed, config=CONFIG):
    """Train one MLP with one loss.

    Returns the model, the CPU time of the training steps in seconds, the test logits every
    curve_every steps, and the criterion.
    """
    torch.manual_seed(seed)  # the same initial weights for every loss
    model = make_model(x_train.shape[1], classes, config["hidden"], cosine=name in COSINE)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config["lr"],
        momentum=config["momentum"],
        weight_decay=config["weight_decay"],
    )
    counts = torch.bincount(y_train, minlength=classes).float()
    criterion = make_criterion(name, counts, config)
    order = torch.Generator().manual_seed(seed)  # the same mini-batches for every loss
    drw_start = int(config["drw_start_fraction"] * config["steps"])
    checkpoints, seconds, step = [], 0.0, 0
    while step < config["steps"]:
        for batch in torch.randperm(len(y_train), generator=order).split(config["batch_size"]):
            start = time.process_time()
            if name == "ldam_drw" and step == drw_start:  # deferred re-weighting
                criterion.weight = class_balanced_weights(counts, beta=DRW_BETA)
            loss = criterion(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            seconds += time.process_time() - start
            if step % config["curve_every"] == 0:
                with torch.no_grad():
                    checkpoints.append(model(x_test))
            if step == config["steps"]:
                break
    return model, seconds, checkpoints, criterion


def evaluate(logits: torch.Tensor, target: np.ndarray, classes: int, bins: int) -> dict:
    """The test metrics of one run from its logits: scikit-learn's on the softmax in float64,
    and ECE from snippets/guide/calibration.py."""
    labels = list(range(classes))
    probabilities = torch.softmax(logits.double(), dim=1).numpy()
    predicted = probabilities.argmax(axis=1)
    target_tensor = torch.from_numpy(target)
    return {
        "accuracy": float(accuracy_score(target, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(target, predicted)),
        "macro_f1": float(f1_score(target, predicted, average="macro", labels=labels)),
        "nll": float(log_loss(target, probabilities, labels=labels)),
        "ece": float(expected_calibration_error(logits, target_tensor, bins)),
        "per_class_recall": [
            float(r) for r in recall_score(target, predicted, average=None, labels=labels)
        ],
        "reliability": reliability_bins(logits, target_tensor, bins),
    }


def record(name, outcome, data, config=CONFIG) -> dict:
    """Everything the pages show about one run, from train()'s outcome and the data."""
    model, seconds, checkpoints, _ = outcome
    x_train, y_train, x_val, y_val, x_test, y_test, classes = data
    counts = torch.bincount(y_train, minlength=classes).float()
    with torch.no_grad():
        test_logits = predicted_logits(name, model(x_test), counts, config)
        val_logits = predicted_logits(name, model(x_val), counts, config)
        train_logits = predicted_logits(name, model(x_train), counts, config)
    result = evaluate(test_logits, y_test, classes, config["ece_bins"])
    # Temperature scaling: T from the validation split only, then the test logits divided by it.
    temperature = fit_temperature(val_logits, y_val)
    scaled = evaluate(test_logits.double() / temperature, y_test, classes, config["ece_bins"])
    val_nll = [
        F.cross_entropy(v.double(), y_val).item()
        for v in (val_logits, val_logits.double() / temperature)
    ]
    curve = [predicted_logits(name, c, counts, config).argmax(dim=1) for c in checkpoints]
    return {
        "loss": name,
        **{metric: result[metric] for metric in METRICS if not metric.endswith("_ts")},
        "temperature": temperature,
        "nll_ts": scaled["nll"],
        "ece_ts": scaled["ece"],
        "accuracy_ts": scaled["accuracy"],
        "val_nll": val_nll,
        "train_accuracy": float(accuracy_score(y_train, train_logits.argmax(dim=1))),
        "train_time_s": seconds,
        "train_class_counts": [int(n) for n in counts],
        "per_class_recall": result["per_class_recall"],
        "reliability": result["reliability"],
        "reliability_ts": scaled["reliability"],
        "test_accuracy_curve": [float(accuracy_score(y_test, p)) for p in curve],
    }


def run(regimes, seeds, losses, config=CONFIG, progress=True) -> list[dict]:
    """Every (regime, seed, loss) run, in a fixed order; each run is independent of the others."""
    torch.set_num_threads(1)  # results and timings do not depend on the number of cores
    torch.use_deterministic_algorithms(True)
    needed = {POSTHOC.get(name, name) for name in losses}
    trained = [name for name in LOSSES if name in needed]  # in a fixed order
    runs = []
    total = len(regimes) * len(seeds) * len(trained)
    with tqdm(total=total, disable=not progress, unit="run") as bar:
        for regime in regimes:
            for seed in seeds:
                x_train, y_train, x_val, y_val, x_test, y_test, classes = make_split(
                    regime, seed, config
                )
                data = (
                    torch.from_numpy(x_train),
                    torch.from_numpy(y_train),
                    torch.from_numpy(x_val),
                    torch.from_numpy(y_val),
                    torch.from_numpy(x_test),
                    y_test,
                    classes,
                )
                for base in trained:
                    bar.set_description(f"{regime} seed={seed} {base}")
                    outcome = train(base, data[0], data[1], data[4], classes, seed, config)
                    for name in [base, *(p for p, b in POSTHOC.items() if b == base)]:
                        if name in losses:
                            row = record(name, outcome, data, config)
                            runs.append({"regime": regime, "seed": seed, **row})
                    bar.update()
    return runs


def summarize(runs: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof=1) over seeds of each metric, per regime, loss."""
    rows = []
    for regime in REGIMES:
        for name in LOSSES:
            group = [r for r in runs if r["regime"] == regime and r["loss"] == name]
            if not group:
                continue
            row = {"regime": regime, "loss": name, "label": LOSSES[name], "seeds": len(group)}
            for metric in (*METRICS, "temperature", "train_accuracy", "train_time_s"):
                values = np.array([r[metric] for r in group])
                row[f"{metric}_mean"] = float(values.mean())
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            rows.append(row)
    return rows


def cpu_model() -> str:
    """The CPU's model name as Linux reports it (platform.processor() is often empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where train_time_s was measured: the CPU, how many cores, how many threads torch used."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def write(runs: list[dict], output: Path, config=CONFIG) -> None:
    """The runs as JSON (one line per run) and their summary as CSV next to it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    about = {
        "about": "Written by snippets/guide/experiment_run.py. "
        "train_time_s depends on the machine; everything else is reproducible bit for bit.",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "machine": machine(),
        "config": config,
        "regimes": list(REGIMES),
        "losses": LOSSES,
        "metrics": list(METRICS),
        "notes": NOTES,
    }
    header = json.dumps(about, indent=1, ensure_ascii=False)[:-2]  # without the closing "\n}"
    lines = ",\n".join(json.dumps(run, ensure_ascii=False) for run in runs)
    output.write_text(f'{header},\n "runs": [\n{lines}\n ]\n}}\n', encoding="utf-8")
    rows = summarize(runs)
    with output.with_suffix(".csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def seed_argument(text: str) -> int:
    seed = int(text)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seeds must be integers >= 0, got {seed}")
    return seed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    parser.add_argument("--seeds", nargs="+", type=seed_argument, default=CONFIG["seeds"])
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES))
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="JSON file; a CSV is written next to it"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    regimes, seeds, losses = (
        list(dict.fromkeys(a)) for a in (args.regimes, args.seeds, args.losses)
    )
    runs = run(regimes, seeds, losses, progress=not args.no_progress)
    write(runs, args.output)
    print(f"{len(runs)} results written to {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
