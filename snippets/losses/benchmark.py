"""Speed of the chapter's losses: forward + backward time, eager and torch.compile'd, relative
to F.cross_entropy measured in the same round.

Method (docs/losses/index.md says what the numbers mean):
- the script reruns itself in a subprocess whose environment raises glibc's
  MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_, so that freed (N, C) buffers stay in the
  process instead of going back to the OS and coming back zero-filled on every call: otherwise
  the allocator, not the loss, decides the ratio;
- one thread; the same float32 logits and targets for every loss; `logits.grad = None` before
  every call, so every variant sees the same allocation pattern;
- compiled variants use torch.compile(fullgraph=True, dynamic=True) and are compiled before
  timing starts (untimed warm-up rounds);
- each round runs every variant once untimed and then `--calls` times timed, in a rotating
  order; a ratio is taken within a round, and the reported ratio is the median over rounds.

    python snippets/losses/benchmark.py                      # the committed CPU table
    python snippets/losses/benchmark.py --device cuda        # writes benchmark_results_cuda.json
    python snippets/losses/benchmark.py --sizes 64x10 --repeats 3 --output tmp.json

kornia is a benchmark-only dependency: it is imported here and nowhere else.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the snippets root

from losses.focal import focal_loss  # noqa: E402
from losses.logit_adjustment import logit_adjusted_cross_entropy  # noqa: E402
from losses.poly import poly1_cross_entropy  # noqa: E402

REFERENCE = "cross_entropy"
SIZES = ((4096, 1000), (1024, 100), (256, 10))
# Goals: eager within 1.1x of eager F.cross_entropy; compiled within 1.05x of compiled
# F.cross_entropy and no slower than the same loss eager.
EAGER_GOAL, COMPILED_GOAL = 1.1, 1.05
GOAL_LOSSES = ("focal_loss", "poly1_cross_entropy", "logit_adjusted_cross_entropy")
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_losses(num_classes: int, device: str) -> dict:
    """name -> loss(logits, target), each returning the "mean" loss."""
    counts = torch.logspace(4, 1, num_classes).round()  # long-tailed class counts
    prior = (counts / counts.sum()).to(device)
    log_prior = prior.log()
    losses = {
        REFERENCE: F.cross_entropy,
        "focal_loss": focal_loss,
        "poly1_cross_entropy": poly1_cross_entropy,
        "logit_adjusted_cross_entropy": lambda x, t: logit_adjusted_cross_entropy(x, t, prior),
        # F.cross_entropy has no bias argument: an eager logit adjustment made of PyTorch's
        # operators needs input + log(prior), one more pass over (N, C). This row times only
        # that, with the bias computed once, here, and no checks.
        "cross_entropy_of_adjusted_logits": lambda x, t: F.cross_entropy(x + log_prior, t),
    }
    try:
        import kornia
    except ImportError:
        print("kornia is not installed: its focal loss is left out", file=sys.stderr)
    else:
        losses["kornia_focal_loss"] = lambda x, t: kornia.losses.focal_loss(
            x, t, alpha=None, gamma=2.0, reduction="mean"
        )
    return losses


def make_variants(num_classes: int, device: str) -> dict:
    """(name, "eager" | "compiled") -> callable; kornia is timed eager only."""
    variants = {}
    for name, loss in make_losses(num_classes, device).items():
        variants[name, "eager"] = loss
        if name != "kornia_focal_loss":
            variants[name, "compiled"] = torch.compile(loss, fullgraph=True, dynamic=True)
    return variants


def timer(device: str):
    def now():
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    return now


def time_calls(loss_fn, logits, target, calls: int, now) -> float:
    """Seconds per forward + backward over `calls` calls, after one untimed call."""
    logits.grad = None
    loss_fn(logits, target).backward()
    start = now()
    for _ in range(calls):
        logits.grad = None
        loss_fn(logits, target).backward()
    return (now() - start) / calls


def measure(n: int, c: int, device: str, repeats: int, warmup: int, calls: int) -> dict:
    torch.manual_seed(0)
    logits = torch.randn(n, c, device=device).requires_grad_()
    target = torch.randint(c, (n,), device=device)
    variants = make_variants(c, device)
    keys = list(variants)
    times = {key: [] for key in keys}
    now = timer(device)
    for round_index in range(warmup + repeats):
        shift = round_index % len(keys)  # rotate the order: no variant always runs first
        for key in keys[shift:] + keys[:shift]:
            elapsed = time_calls(variants[key], logits, target, calls, now)
            if round_index >= warmup:
                times[key].append(elapsed)

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    rows = {}
    for name, mode in keys:
        row = rows.setdefault(name, {})
        row[f"{mode}_ms"] = statistics.median(times[name, mode]) * 1e3
        row[f"{mode}_ratio"] = ratio((name, mode), (REFERENCE, mode))
        if mode == "compiled":
            row["compiled_over_eager"] = ratio((name, "compiled"), (name, "eager"))
    if "kornia_focal_loss" in rows:
        rows["focal_loss"]["eager_over_kornia"] = ratio(
            ("focal_loss", "eager"), ("kornia_focal_loss", "eager")
        )
    checks = {}
    for name in GOAL_LOSSES:
        row = rows[name]
        checks[f"{name}: eager <= {EAGER_GOAL}x cross_entropy"] = row["eager_ratio"] <= EAGER_GOAL
        checks[f"{name}: compiled <= {COMPILED_GOAL}x compiled cross_entropy"] = (
            row["compiled_ratio"] <= COMPILED_GOAL
        )
        checks[f"{name}: compiled <= eager"] = row["compiled_over_eager"] <= 1.0
    return {"n": n, "c": c, "results": rows, "checks": checks}


def run(sizes, device: str, repeats: int, warmup: int, calls: int) -> dict:
    torch.set_num_threads(1)
    measured = [measure(n, c, device, repeats, warmup, calls) for n, c in sizes]
    return {
        "machine": {
            "device": torch.cuda.get_device_name() if device == "cuda" else cpu_model(),
            "torch": torch.__version__,
            "kornia": _kornia_version(),
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "malloc_env": {key: os.environ.get(key) for key in MALLOC_ENV},
        },
        "settings": {
            "device": device,
            "dtype": "float32",
            "repeats": repeats,
            "warmup": warmup,
            "calls": calls,
            "compile": "torch.compile(fullgraph=True, dynamic=True)",
        },
        "reference": REFERENCE,
        "goals": {"eager": EAGER_GOAL, "compiled": COMPILED_GOAL, "losses": list(GOAL_LOSSES)},
        "sizes": measured,
    }


def _kornia_version():
    try:
        import kornia
    except ImportError:
        return None
    return kornia.__version__


def parse_size(text: str) -> tuple[int, int]:
    n, c = text.lower().split("x")
    return int(n), int(c)


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=parse_size, nargs="+", default=list(SIZES), help="N x C, e.g. 4096x1000"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per variant and round")
    parser.add_argument("--output", type=Path, help="JSON file to write (default: next to this)")
    args = parser.parse_args(argv)
    if any(os.environ.get(key) != value for key, value in MALLOC_ENV.items()):
        # glibc reads these at start-up: rerun this script in a process that has them.
        env = {**os.environ, **MALLOC_ENV}
        arguments = sys.argv[1:] if argv is None else [str(a) for a in argv]
        command = [sys.executable, str(Path(__file__).resolve()), *arguments]
        raise SystemExit(subprocess.run(command, env=env, check=False).returncode)
    if args.output is None:
        suffix = "" if args.device == "cpu" else f"_{args.device}"
        args.output = HERE / f"benchmark_results{suffix}.json"
    report = run(args.sizes, args.device, args.repeats, args.warmup, args.calls)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for size in report["sizes"]:
        print(f"N={size['n']} C={size['c']}")
        for name, row in size["results"].items():
            compiled = f"{row['compiled_ratio']:.3f}x" if "compiled_ratio" in row else "-"
            print(f"  {name:30s} eager {row['eager_ratio']:.3f}x  compiled {compiled}")
        for check, passed in size["checks"].items():
            print(f"  {'MET ' if passed else 'MISS'} {check}")
    print("written to", args.output)
    return report


if __name__ == "__main__":
    main()
