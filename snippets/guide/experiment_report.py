"""Read the committed results of experiment_run.py (next to this file): summaries, tables, plots.

The guide pages' code (snippets/guide/index.py, experiment.py, calibration.py) and their tests
import this file; it only reads experiment_results.json and never trains anything.
"""

import io
import json
from functools import cache
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "experiment_results.json"

# Short, language-neutral column labels
METRIC_LABELS = {
    "accuracy": "acc",
    "balanced_accuracy": "bal. acc",
    "macro_f1": "macro-F1",
    "nll": "NLL",
    "ece": "ECE",
    "temperature": "T",
    "nll_ts": "NLL after TS",
    "ece_ts": "ECE after TS",
    "train_accuracy": "train acc",
    "train_time_s": "train s",
}
# Shorter names for tight spaces (the diagram)
SHORT_NAMES = {
    "ce": "CE",
    "weighted_ce": "1/n",
    "class_balanced": "CB",
    "label_smoothing": "LS",
    "focal": "focal",
    "poly1": "Poly-1",
    "logit_adjusted": "LA loss",
    "posthoc_la": "post-hoc LA",
    "cosine_ce": "cos CE",
    "ldam_drw": "LDAM-DRW",
    "gce": "GCE",
    "sce": "SCE",
}
LOWER_IS_BETTER = {"nll", "ece", "nll_ts", "ece_ts", "train_time_s"}
# Neither higher nor lower is "better": no Δ, no bold
NEUTRAL = {"train_accuracy", "train_time_s", "temperature"}
BASELINE = "ce"
NBSP = "\u00a0"  # keeps "0.834 ± 0.037" on one line in narrow table cells


@cache
def load(path: Path = RESULTS) -> dict:
    """The results document: config, versions, loss labels and one entry per run."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def values(results: dict, regime: str, loss: str, metric: str) -> np.ndarray:
    """One value per seed, in seed order."""
    runs = sorted(
        (r for r in results["runs"] if r["regime"] == regime and r["loss"] == loss),
        key=lambda r: r["seed"],
    )
    if not runs:
        raise KeyError(f"no runs for regime={regime!r}, loss={loss!r}")
    return np.array([r[metric] for r in runs], dtype=np.float64)


def mean(results: dict, regime: str, loss: str, metric: str) -> float:
    return float(values(results, regime, loss, metric).mean())


def std(results: dict, regime: str, loss: str, metric: str) -> float:
    """Sample standard deviation over seeds (ddof=1)."""
    v = values(results, regime, loss, metric)
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0


def delta(results: dict, regime: str, loss: str, metric: str, baseline: str = BASELINE) -> float:
    """Mean over seeds of (loss - baseline), paired by seed."""
    diff = values(results, regime, loss, metric) - values(results, regime, baseline, metric)
    return float(diff.mean())


def wins(results: dict, regime: str, loss: str, metric: str, baseline: str = BASELINE) -> int:
    """In how many seeds the loss did strictly better than the baseline on this metric."""
    a, b = values(results, regime, loss, metric), values(results, regime, baseline, metric)
    return int(((a < b) if metric in LOWER_IS_BETTER else (a > b)).sum())


def seeds(results: dict) -> list[int]:
    return sorted({r["seed"] for r in results["runs"]})


def provenance(results: dict) -> str:
    """One line saying what the numbers are: how many runs, and with which versions."""
    losses = {r["loss"] for r in results["runs"]}
    regimes = {r["regime"] for r in results["runs"]}
    versions = results["versions"]
    return (
        f"{len(results['runs'])} runs = {len(regimes)} regimes × {len(seeds(results))} seeds × "
        f"{len(losses)} losses; torch {versions['torch']}, scikit-learn {versions['scikit-learn']}"
    )


def machine_text(results: dict) -> str:
    """Where the training times were measured, as the results file records it."""
    machine = results.get("machine")
    if machine is None:
        return "train s measured on: a machine the results file does not record"
    threads = machine["torch_threads"]
    return (
        f"train s measured on: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{threads} torch thread{'s' if threads != 1 else ''}"
    )


REGIME_LABELS = {"balanced": "balanced", "long_tailed": "long-tailed", "noisy": "noisy"}


def table(results: dict, regime: str, losses: list[str], metrics: list[str]) -> str:
    """A Markdown table for one regime: mean ± std over seeds, and the paired difference to CE
    with the number of seeds in which the loss did better. The best mean of each metric is bold."""
    return columns_table(results, losses, [(regime, m) for m in metrics], show_regime=False)


def calibration_table(results: dict, losses: list[str]) -> str:
    """ECE in every regime, as table() does for one regime."""
    return columns_table(results, losses, [(r, "ece") for r in REGIME_LABELS], show_regime=True)


def summary_table(results: dict, regime: str, losses: list[str], metrics: list[str]) -> str:
    """A Markdown table of mean ± std over seeds for one regime; the best mean is bold
    (training time excepted)."""
    header = ["loss", *(METRIC_LABELS[m] for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(metrics)]
    for loss in losses:
        cells = [results["losses"][loss]]
        for metric in metrics:
            m, s = mean(results, regime, loss, metric), std(results, regime, loss, metric)
            digits = 2 if metric == "train_time_s" else 3
            text = f"{m:.{digits}f}{NBSP}±{NBSP}{s:.{digits}f}"
            means = [mean(results, regime, x, metric) for x in losses]
            best = min(means) if metric in LOWER_IS_BETTER else max(means)
            cells.append(f"**{text}**" if m == best and metric not in NEUTRAL else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def delta_table(results: dict, losses: list[str], headline: dict[str, str]) -> str:
    """Paired difference to CE of each regime's headline metric, with the seeds that did better."""
    n = len(seeds(results))
    header = ["loss"] + [f"Δ {METRIC_LABELS[m]} ({REGIME_LABELS[g]})" for g, m in headline.items()]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(headline)]
    for loss in losses:
        cells = [results["losses"][loss]]
        for regime, metric in headline.items():
            d, k = delta(results, regime, loss, metric), wins(results, regime, loss, metric)
            cells.append(f"{d:+.3f}{NBSP}({k}/{n})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pairwise_table(results: dict, regime: str, metric: str, losses: list[str]) -> str:
    """Paired differences between losses, seed by seed: the cell in row a, column b is the mean
    over seeds of (a - b) and the number of seeds in which a did better than b."""
    n = len(seeds(results))
    short = [SHORT_NAMES[x] for x in losses]
    lines = [
        f"{METRIC_LABELS[metric]}, row − column: mean paired Δ (seeds in which the row did better)",
        "",
        "| | " + " | ".join(short[1:]) + " |",
        "| --- |" + " ---: |" * (len(losses) - 1),
    ]
    for i, a in enumerate(losses[:-1]):
        cells = [SHORT_NAMES[a]]
        for j, b in enumerate(losses[1:], start=1):
            if j <= i:
                cells.append("")
                continue
            d, k = delta(results, regime, a, metric, b), wins(results, regime, a, metric, b)
            cells.append(f"{d:+.3f}{NBSP}({k}/{n})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(results: dict, losses: list[str], metric: str = "ece") -> str:
    """The metric before → after temperature scaling in every regime (means over seeds), with
    the number of seeds in which temperature scaling lowered it."""
    n = len(seeds(results))
    regimes = list(REGIME_LABELS)
    header = ["loss", *(f"{METRIC_LABELS[metric]} ({REGIME_LABELS[g]})" for g in regimes)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(regimes)]
    for loss in losses:
        cells = [results["losses"][loss]]
        for regime in regimes:
            before = values(results, regime, loss, metric)
            after = values(results, regime, loss, f"{metric}_ts")
            lowered = int((after < before).sum())
            cells.append(f"{before.mean():.3f} → {after.mean():.3f}{NBSP}({lowered}/{n})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


HEADLINE = {"balanced": "accuracy", "long_tailed": "balanced_accuracy", "noisy": "accuracy"}
GAIN_DELTA, GAIN_SEEDS = 0.01, 0.8  # a gain: mean paired Δ >= 0.01, better in >= 80% of seeds


def gained(results: dict, regime: str, loss: str, metric: str) -> bool:
    """Whether the loss beat CE clearly: by GAIN_DELTA on average and in most seeds."""
    enough = wins(results, regime, loss, metric) >= GAIN_SEEDS * len(seeds(results))
    return delta(results, regime, loss, metric) >= GAIN_DELTA and enough


def gain_table(results: dict, headline: dict[str, str] = HEADLINE) -> str:
    """For each regime, the losses that beat CE on its headline metric and those that did not."""
    n = len(seeds(results))
    lines = [
        f"gain: Δ ≥ +{GAIN_DELTA:.3f} and better than CE in ≥ {round(GAIN_SEEDS * n)}/{n} seeds",
        "",
        "| regime | metric | gain over CE | no gain |",
        "| --- | --- | --- | --- |",
    ]
    for regime, metric in headline.items():
        losses = [x for x in results["losses"] if x != BASELINE]
        yes = [results["losses"][x] for x in losses if gained(results, regime, x, metric)]
        no = [results["losses"][x] for x in losses if not gained(results, regime, x, metric)]
        lines.append(
            f"| {REGIME_LABELS[regime]} | {METRIC_LABELS[metric]} | {', '.join(yes) or '—'} | "
            f"{', '.join(no) or '—'} |"
        )
    return "\n".join(lines)


def setup_text(results: dict) -> str:
    """The experiment's configuration, one "key = value" line per setting."""
    width = max(map(len, results["config"]))
    return "\n".join(f"{key:<{width}} = {value}" for key, value in results["config"].items())


def columns_table(results, losses, columns, show_regime) -> str:
    n = len(seeds(results))
    header = ["loss"]
    for regime, metric in columns:
        label = METRIC_LABELS[metric]
        header.append(f"{label} ({REGIME_LABELS[regime]})" if show_regime else label)
        if metric not in NEUTRAL:
            header.append("Δ vs CE")
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for loss in losses:
        cells = [results["losses"][loss]]
        for regime, metric in columns:
            m, s = mean(results, regime, loss, metric), std(results, regime, loss, metric)
            means = [mean(results, regime, x, metric) for x in losses]
            best = min(means) if metric in LOWER_IS_BETTER else max(means)
            text = f"{m:.3f}{NBSP}±{NBSP}{s:.3f}"
            cells.append(f"**{text}**" if m == best and metric not in NEUTRAL else text)
            if metric in NEUTRAL:
                continue
            if loss == BASELINE:
                cells.append("")
            else:
                d = delta(results, regime, loss, metric)
                cells.append(f"{d:+.3f}{NBSP}({wins(results, regime, loss, metric)}/{n})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return f'<div class="plot">{svg[svg.index("<svg") :]}</div>'


def _pyplot(salt: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": salt, "font.size": 10, "legend.fontsize": 9})
    return plt


def pooled_reliability(results: dict, regime: str, loss: str, key: str = "reliability") -> dict:
    """Reliability bins pooled over seeds: total count, mean confidence and accuracy per bin;
    key "reliability_ts" pools those after temperature scaling."""
    runs = [r for r in results["runs"] if r["regime"] == regime and r["loss"] == loss]
    bins = results["config"]["ece_bins"]
    count = np.zeros(bins)
    confidence_sum, correct_sum = np.zeros(bins), np.zeros(bins)
    for r in runs:
        table_ = r[key]
        for b in range(bins):
            if table_["count"][b]:
                count[b] += table_["count"][b]
                confidence_sum[b] += table_["count"][b] * table_["confidence"][b]
                correct_sum[b] += table_["count"][b] * table_["accuracy"][b]
    with np.errstate(invalid="ignore"):
        return {
            "count": count,
            "confidence": confidence_sum / count,
            "accuracy": correct_sum / count,
        }


def reliability_diagrams(
    results: dict, regime: str, losses: list[str], salt: str, with_ts: bool = False
) -> str:
    """One reliability diagram per loss, pooled over seeds, as SVG: a point per confidence bin
    at (mean confidence, accuracy), its area proportional to the number of test images in it.
    Points below the diagonal are overconfident, points above it underconfident. with_ts adds
    the bins after temperature scaling, as orange squares."""
    plt = _pyplot(salt)
    columns = min(len(losses), 2)
    rows = -(-len(losses) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.5 * rows), sharex=True, sharey=True, squeeze=False
    )
    for ax, loss in zip(axes.flat, losses, strict=False):
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
        kinds = [("reliability", "tab:blue", "o")]
        kinds += [("reliability_ts", "tab:orange", "s")] if with_ts else []
        for key, color, marker in kinds:
            pooled = pooled_reliability(results, regime, loss, key)
            filled = pooled["count"] > 0
            size = 4 + 300 * pooled["count"][filled] / pooled["count"].sum()
            x, y = pooled["confidence"][filled], pooled["accuracy"][filled]
            ax.plot(x, y, color=color, linewidth=1, alpha=0.6)
            ax.scatter(x, y, s=size, color=color, marker=marker, zorder=3, clip_on=False)
        ece = f"ECE {mean(results, regime, loss, 'ece'):.3f}"
        if with_ts:
            ece += f" → {mean(results, regime, loss, 'ece_ts'):.3f}"
        ax.set_title(f"{results['losses'][loss]}\n{ece}", fontsize=9)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(losses) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("$\\hat{p}$")
    for ax in axes[:, 0]:
        ax.set_ylabel("acc")
    fig.tight_layout()
    return _svg(fig)


def per_class_recall(results: dict, regime: str, losses: list[str], salt: str) -> str:
    """Test recall of each class, classes ordered from the most to the least frequent in the
    training split (mean over seeds), as SVG."""
    plt = _pyplot(salt)
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    counts = None
    for i, loss in enumerate(losses):
        runs = [r for r in results["runs"] if r["regime"] == regime and r["loss"] == loss]
        by_rank = []
        for r in runs:
            order = np.argsort(r["train_class_counts"], kind="stable")[::-1]
            by_rank.append(np.asarray(r["per_class_recall"])[order])
            counts = np.asarray(r["train_class_counts"])[order]
        ax.plot(
            range(len(counts)),
            np.mean(by_rank, axis=0),
            marker="os^vD<>"[i % 7],
            markersize=4,
            label=results["losses"][loss],
        )
    ax.set_xticks(range(len(counts)), [str(c) for c in counts])
    return _finish(fig, ax, "$n_c$", "recall", (0, 1.02), "lower left")


def _finish(fig, ax, xlabel: str, ylabel: str, ylim: tuple, legend: str) -> str:
    """Labels, limits, grid and legend of a line plot, as SVG."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc=legend)
    fig.tight_layout()
    return _svg(fig)


def accuracy_curves(results: dict, regime: str, losses: list[str], salt: str) -> str:
    """Test accuracy during training (mean over seeds, band = ±1 std), as SVG."""
    plt = _pyplot(salt)
    every = results["config"]["curve_every"]
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    for loss in losses:
        curves = np.array(
            [
                r["test_accuracy_curve"]
                for r in results["runs"]
                if r["regime"] == regime and r["loss"] == loss
            ]
        )
        steps = every * np.arange(1, curves.shape[1] + 1)
        m, s = curves.mean(axis=0), curves.std(axis=0, ddof=1) if len(curves) > 1 else 0
        ax.plot(steps, m, label=results["losses"][loss])
        ax.fill_between(steps, m - s, m + s, alpha=0.15)
    return _finish(fig, ax, "$t$", "acc", (0, 1), "lower right")


if __name__ == "__main__":
    results = load()
    print(len(results["runs"]), "runs,", "seeds", seeds(results), results["versions"])
