"""Run the two-process gloo programs of this site many times; count the failed shutdowns.

Each run is a fresh `python ddp_check.py` (2 worker processes via torch.multiprocessing) or a
fresh `torchrun --nproc_per_node=2 train_digits.py --device cpu --epochs 1`, which ends with an
ordinary interpreter shutdown. A run fails if a process exits with a non-zero code or prints
"terminate called". A sitecustomize module on PYTHONPATH makes every process
report, at exit, how many of gloo's pt_gloo_* threads are still running.

The "without the fix" variant is ddp_check.py with its `import torch._dynamo` line removed.
Runs may overlap (--jobs); each is still its own set of processes with its own port.
It writes shutdown_results.json next to this file (the page renders it). The committed file
records 50, 3 and 1 runs, at most 4 at a time:

    python snippets/distributed/shutdown_stress.py \
        --runs 50 --baseline-runs 3 --torchrun-runs 1 --jobs 4
"""

import argparse
import concurrent.futures
import datetime
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the snippets root
import torch  # noqa: E402
from training.train_digits import write_json_atomic  # noqa: E402

REPORT = """
import atexit, os, sys
def _report():
    tasks = os.listdir("/proc/self/task")
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks]
    print("GLOO_THREADS_AT_EXIT=%d" % sum("pt_gloo" in n for n in names), file=sys.stderr)
atexit.register(_report)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_once(command, env) -> dict:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    threads = [int(n) for n in re.findall(r"GLOO_THREADS_AT_EXIT=(\d+)", done.stderr)]
    failed = done.returncode != 0 or "terminate called" in done.stderr
    return {
        "returncode": done.returncode,
        "failed": failed,
        "gloo_threads_at_exit": threads,
        "seconds": round(time.perf_counter() - start, 2),
        "stderr_tail": done.stderr[-600:] if failed else "",
    }


def train_command(torchrun):
    return [
        *torchrun, "--master_addr=127.0.0.1", f"--master_port={free_port()}",
        str(HERE.parent / "training" / "train_digits.py"), "--device", "cpu", "--epochs", "1",
    ]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="shutdown_stress.py", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs of ddp_check.py as it is")
    parser.add_argument("--baseline-runs", type=int, default=15, help="runs without the fix")
    parser.add_argument("--torchrun-runs", type=int, default=5, help="runs of train_digits.py")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time")
    parser.add_argument("--output", type=Path, default=HERE / "shutdown_results.json")
    args = parser.parse_args(argv)
    import os

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "sitecustomize.py").write_text(REPORT, encoding="utf-8")
        baseline = folder / "baseline"
        baseline.mkdir()
        shutil.copy(HERE / "global_loss.py", baseline)
        source = (HERE / "ddp_check.py").read_text(encoding="utf-8")
        without = re.sub(r"^import torch\._dynamo.*\n", "", source, flags=re.MULTILINE)
        assert without != source
        (baseline / "ddp_check.py").write_text(without, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(folder)}
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
        variants = {
            "ddp_check.py": (args.runs, lambda: [sys.executable, str(HERE / "ddp_check.py")]),
            "ddp_check.py without the fix": (
                args.baseline_runs,
                lambda: [sys.executable, str(baseline / "ddp_check.py")],
            ),
            "torchrun train_digits.py": (args.torchrun_runs, lambda: train_command(torchrun)),
        }
        results = {}
        for name, (runs, command) in variants.items():
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
                futures = [pool.submit(run_once, command(), env) for _ in range(runs)]
                rows = [future.result() for future in futures]
            for index, row in enumerate(rows):
                print(name, index, row["returncode"], row["gloo_threads_at_exit"], row["seconds"])
            results[name] = {
                "runs": runs,
                "failed": sum(row["failed"] for row in rows),
                "runs_with_gloo_threads_at_exit": sum(
                    any(row["gloo_threads_at_exit"]) for row in rows
                ),
                "rows": rows,
            }
    write_json_atomic(
        args.output,
        {
            "date": datetime.date.today().isoformat(),
            "jobs": args.jobs,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "variants": results,
        },
    )
    for name, result in results.items():
        print(f"{name}: {result['failed']} of {result['runs']} runs failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
