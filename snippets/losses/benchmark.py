"""Speed of the chapter's losses: forward + backward time relative to F.cross_entropy.

Same float32 CPU batch for every loss, one thread, interleaved runs: each round runs every
loss in a rotating order, one untimed call then `--calls` timed calls, and the ratio to
F.cross_entropy is taken within the round; the reported ratio is the median over the rounds.
Writes a JSON file that the chapter's index page renders (snippets/losses/benchmark_results.json
next to this file by default).

    python snippets/losses/benchmark.py                     # N=4096, C=1000, 30 rounds
    python snippets/losses/benchmark.py --n 64 --c 10 --repeats 3 --output tmp.json

kornia is a benchmark-only dependency: it is imported here and nowhere else.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the chapter's loss files sit next to this script

from class_balanced import class_balanced_weights  # noqa: E402
from focal import _check_inputs, focal_loss  # noqa: E402
from ldam import LDAMLoss  # noqa: E402
from logit_adjustment import logit_adjusted_cross_entropy  # noqa: E402
from poly import poly1_cross_entropy  # noqa: E402

REFERENCE = "cross_entropy"
# Targets of the chapter (issue 5): ratio to F.cross_entropy, and focal against kornia.
MAX_RATIO = {"focal_loss": 1.2, "poly1_cross_entropy": 1.2, "logit_adjusted_cross_entropy": 1.2}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_cases(num_classes: int) -> dict:
    """name -> loss(logits, target): every case returns a scalar ("mean") loss."""
    counts = torch.logspace(4, 1, num_classes).round()  # long-tailed class counts
    prior = counts / counts.sum()
    weight = class_balanced_weights(counts, beta=0.999)
    ldam = LDAMLoss(counts)
    cases = {
        REFERENCE: lambda x, t: F.cross_entropy(x, t),
        "focal_loss": lambda x, t: focal_loss(x, t, gamma=2.0),
        "poly1_cross_entropy": lambda x, t: poly1_cross_entropy(x, t, epsilon=1.0),
        "logit_adjusted_cross_entropy": lambda x, t: logit_adjusted_cross_entropy(x, t, prior),
        "cross_entropy_class_balanced": lambda x, t: F.cross_entropy(x, t, weight=weight),
        "focal_loss_class_balanced": lambda x, t: focal_loss(x, t, weight=weight),
        "LDAMLoss": lambda x, t: ldam(x, t),
    }
    try:
        import kornia
    except ImportError:
        print("kornia is not installed: its focal loss is left out", file=sys.stderr)
    else:
        cases["kornia_focal_loss"] = lambda x, t: kornia.losses.focal_loss(
            x, t, alpha=None, gamma=2.0, reduction="mean"
        )
    return cases


def time_block(loss_fn, logits, target, calls: int) -> float:
    """Seconds per forward + backward, over `calls` calls after one untimed call: the steady
    state of a training loop, where the allocator has seen the loss's tensors before."""
    logits.grad = None
    loss_fn(logits, target).backward()
    start = time.perf_counter()
    for _ in range(calls):
        logits.grad = None
        loss_fn(logits, target).backward()
    return (time.perf_counter() - start) / calls


def time_validation(logits, target) -> float:
    """The input checks alone (shapes, dtypes, and the one .any() over the targets)."""
    start = time.perf_counter()
    _check_inputs(logits, target, None, -100, "mean")
    return time.perf_counter() - start


def run(n: int, c: int, repeats: int, warmup: int, calls: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    logits = torch.randn(n, c).requires_grad_()
    target = torch.randint(c, (n,))
    cases = make_cases(c)
    names = list(cases)
    times = {name: [] for name in names}
    validation = []
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)  # rotate the order so no loss always runs first
        for name in names[shift:] + names[:shift]:
            elapsed = time_block(cases[name], logits, target, calls)
            if round_index >= warmup:
                times[name].append(elapsed)
        if round_index >= warmup:
            validation.append(time_validation(logits, target))
    reference = times[REFERENCE]
    results = {}
    for name in names:
        ratios = [t / r for t, r in zip(times[name], reference, strict=True)]
        results[name] = {
            "median_ms": statistics.median(times[name]) * 1e3,
            "min_ms": min(times[name]) * 1e3,
            "ratio_to_cross_entropy": statistics.median(ratios),
            "max_ratio": MAX_RATIO.get(name),
        }
    validation_ratios = [v / r for v, r in zip(validation, reference, strict=True)]
    checks = {
        f"{name} <= {limit}x cross_entropy": results[name]["ratio_to_cross_entropy"] <= limit
        for name, limit in MAX_RATIO.items()
    }
    if "kornia_focal_loss" in times:
        focal_vs_kornia = statistics.median(
            t / k for t, k in zip(times["focal_loss"], times["kornia_focal_loss"], strict=True)
        )
        checks["focal_loss <= kornia_focal_loss"] = focal_vs_kornia <= 1.0
    else:
        focal_vs_kornia = None
    return {
        "machine": {
            "cpu": cpu_model(),
            "torch": torch.__version__,
            "kornia": _kornia_version(),
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
        },
        "settings": {
            "n": n,
            "c": c,
            "dtype": "float32",
            "repeats": repeats,
            "warmup": warmup,
            "calls": calls,
        },
        "reference": REFERENCE,
        "results": results,
        "validation": {
            "median_ms": statistics.median(validation) * 1e3,
            "ratio_to_cross_entropy": statistics.median(validation_ratios),
        },
        "focal_loss_vs_kornia_focal_loss": focal_vs_kornia,
        "checks": checks,
    }


def _kornia_version():
    try:
        import kornia
    except ImportError:
        return None
    return kornia.__version__


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="batch size N")
    parser.add_argument("--c", type=int, default=1000, help="number of classes C")
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per loss and round")
    parser.add_argument(
        "--output", type=Path, default=HERE / "benchmark_results.json", help="JSON file to write"
    )
    args = parser.parse_args(argv)
    report = run(args.n, args.c, args.repeats, args.warmup, args.calls)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, row in report["results"].items():
        print(f"{name:30s} {row['median_ms']:8.2f} ms  {row['ratio_to_cross_entropy']:.3f}x")
    print("validation alone:", f"{report['validation']['ratio_to_cross_entropy']:.4f}x")
    print("focal_loss / kornia_focal_loss:", report["focal_loss_vs_kornia_focal_loss"])
    for check, passed in report["checks"].items():
        print(f"{'PASS' if passed else 'MISS'} {check}")
    print("written to", args.output)
    return report


if __name__ == "__main__":
    main()
