"""Benchmark train_digits.py on the CPU: wall time to 97% test accuracy and time per epoch.

Each run is the whole command a reader types, from process start to exit (imports, data,
training, test evaluation and the JSON file), and counts towards the target only if its test
accuracy reaches it. The default command is compared with the same command on two threads,
run alternately.
Run it on a quiet machine; it writes benchmark_results.json next to this file:

    python snippets/training/benchmark.py                   # 5 runs per command
    python snippets/training/benchmark.py --runs 1 --epochs 2 --output /tmp/check.json
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "train_digits.py"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the snippets root
from training.train_digits import write_json_atomic  # noqa: E402

TARGET_ACCURACY = 0.97
COMMANDS = {  # label -> extra arguments
    "python train_digits.py --device cpu": [],
    "python train_digits.py --device cpu --threads 2": ["--threads", "2"],
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import numpy
    import sklearn
    import torch

    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def one_run(extra: list[str], epochs: int | None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "result.json"
        command = [sys.executable, str(SCRIPT), "--device", "cpu", "--json", str(output), *extra]
        if epochs is not None:
            command += ["--epochs", str(epochs)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        result = json.loads(output.read_text(encoding="utf-8"))
    return {
        "wall_seconds": wall,
        "train_seconds": result["seconds"],
        "seconds_per_epoch": statistics.median(h["seconds"] for h in result["history"]),
        "test_accuracy": result["test_accuracy"],
        "best_epoch": result["best_epoch"],
    }


def benchmark(runs: int, epochs: int | None) -> dict:
    results = {
        "date": datetime.date.today().isoformat(),
        "runs": runs,
        "target_accuracy": TARGET_ACCURACY,
        "machine": machine(),
        "settings": [],
    }
    rows = {label: [] for label in COMMANDS}
    for _ in range(runs):  # interleaved, so that both commands see the same conditions
        for label, extra in COMMANDS.items():
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            rows[label].append({**one_run(extra, epochs), "load_average_before": load})
    for label, extra in COMMANDS.items():
        reached = all(row["test_accuracy"] >= TARGET_ACCURACY for row in rows[label])
        median_wall = statistics.median(row["wall_seconds"] for row in rows[label])
        results["settings"].append(
            {
                "command": label,
                "args": extra,
                "median_seconds_to_target": median_wall if reached else None,
                "median_wall_seconds": median_wall,
                "median_train_seconds": statistics.median(
                    row["train_seconds"] for row in rows[label]
                ),
                "median_seconds_per_epoch": statistics.median(
                    row["seconds_per_epoch"] for row in rows[label]
                ),
                "runs": rows[label],
            }
        )
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override (short checks only)")
    parser.add_argument("--output", type=Path, default=HERE / "benchmark_results.json")
    args = parser.parse_args(argv)
    results = benchmark(args.runs, args.epochs)
    write_json_atomic(args.output, results)
    for row in results["settings"]:
        print(
            f"{row['command']}: median {row['median_wall_seconds']:.2f} s per run "
            f"(to 97%: {row['median_seconds_to_target']}), "
            f"{row['median_seconds_per_epoch']:.4f} s per epoch, accuracies "
            f"{[round(r['test_accuracy'], 4) for r in row['runs']]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
