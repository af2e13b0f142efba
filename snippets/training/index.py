"""What the training page runs: the parts of train_digits.py, called one by one."""
# ruff: noqa: E402  (each section imports what it adds, as the page shows it)

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the snippets root

import torch
from training.train_digits import (  # the page defines these by including the script's sections
    MLP,
    Config,
    autocast_dtype,
    build_parser,
    fit,
    forward_loss,
    load_splits,
    main,
    make_criterion,
)

# --8<-- [start:help]
parser = build_parser()
parser.formatter_class = lambda prog: argparse.ArgumentDefaultsHelpFormatter(prog, width=90)
print(parser.format_help())
# --8<-- [end:help]

# --8<-- [start:data]
splits = load_splits()
for name, (x, y) in splits.items():
    counts = torch.bincount(y).tolist()
    print(f"{name:5}  x {tuple(x.shape)} {x.dtype}  y {y.dtype}  per class {counts}")
x_train, x_val = splits["train"][0], splits["val"][0]
print("largest |mean| of a pixel, train:", round(x_train.mean(dim=0).abs().max().item(), 6))
print("largest |mean| of a pixel, val:  ", round(x_val.mean(dim=0).abs().max().item(), 6))
# --8<-- [end:data]

# --8<-- [start:model]
torch.manual_seed(0)
model = MLP()
print(model)
print("parameters:", sum(p.numel() for p in model.parameters()))
print("logits for 4 images:", tuple(model(x_train[:4]).shape))
# --8<-- [end:model]

# --8<-- [start:loss]
import math

torch.manual_seed(0)
logits = MLP()(x_train[:64])
target = splits["train"][1][:64]
ce = make_criterion("ce")(logits, target)
nll = make_criterion("nll")(logits, target)
print("ce :", ce.item())
print("nll:", nll.item())
print("bit-for-bit equal:", torch.equal(ce, nll))
print("log(10), the loss of a uniform guess over 10 classes:", math.log(10))
# --8<-- [end:loss]

# --8<-- [start:amp]
torch.manual_seed(0)
cpu = torch.device("cpu")
amp_dtype = autocast_dtype(cpu)
print("autocast dtype on cpu:", amp_dtype)
model = MLP()
with torch.autocast("cpu", dtype=amp_dtype):
    print("model output under autocast:", model(x_train[:64]).dtype)
logits, loss = forward_loss(model, make_criterion("ce"), x_train[:64], target, amp_dtype)
print("logits passed to the loss:", logits.dtype, " loss:", loss.dtype)
# --8<-- [end:amp]

# --8<-- [start:amp_speed]
import statistics

flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
found = sorted({flag for flag in flags if flag in ("avx512_bf16", "amx_bf16")})
print("bfloat16 instructions in /proc/cpuinfo:", ", ".join(found) or "none")
threads = torch.get_num_threads()
torch.set_num_threads(1)  # as the script runs by default (--threads 1)
epoch_seconds = {False: [], True: []}
for _ in range(3):  # alternately, so that a busy moment of the machine hits both
    for amp in (False, True):
        _, run = fit(Config(epochs=2, device="cpu", amp=amp), progress=False, log=lambda _: None)
        epoch_seconds[amp] += [epoch["seconds"] for epoch in run["history"]]
torch.set_num_threads(threads)
fp32, bf16 = (statistics.median(epoch_seconds[amp]) for amp in (False, True))
print(
    f"median s per epoch ({len(epoch_seconds[False])} epochs each): "
    f"float32 {fp32:.3f}, bfloat16 autocast {bf16:.3f}"
)
print(f"bfloat16 / float32: {bf16 / fp32:.1f}")
# --8<-- [end:amp_speed]

# --8<-- [start:short_run]
main(["--epochs", "3", "--device", "cpu"])
# --8<-- [end:short_run]

# --8<-- [start:bad_device]
import contextlib
import io

unavailable = "mps" if torch.cuda.is_available() else "cuda"  # a device this machine lacks
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    try:
        main(["--device", unavailable, "--json", "never_written.json"])
    except SystemExit as stop:
        print("exit code:", stop.code)
print(stderr.getvalue().strip().splitlines()[-1])
print("JSON written:", Path("never_written.json").exists())
# --8<-- [end:bad_device]

# --8<-- [start:benchmark]
import json
import statistics

# The committed results of snippets/training/benchmark.py (the page is built from the repo root).
folder = Path(__file__).parent if "__file__" in globals() else Path("snippets/training")
bench = json.loads((folder / "benchmark_results.json").read_text(encoding="utf-8"))
machine = bench["machine"]
loads = [run.get("load_average_before") for row in bench["settings"] for run in row["runs"]]
load = "n/a" if None in loads else f"{statistics.median(loads):.2f}"
print(
    f"{machine['cpu_model']}, {machine['cores']} cores, torch {machine['torch']}, "
    f"Python {machine['python']}, {bench['date']}; median of {bench['runs']} runs; "
    f"median load average before a run: {load}\n"
)
print("| command | s per whole run | s per epoch | test accuracy of the runs |")
print("| --- | ---: | ---: | ---: |")
for row in bench["settings"]:
    accuracies = sorted({run["test_accuracy"] for run in row["runs"]})
    same = "every run" if len(accuracies) == 1 else "runs ranged"
    shown = " to ".join(f"{a:.4f}" for a in accuracies[:: max(1, len(accuracies) - 1)])
    print(
        f"| `{row['command']}` | {row['median_wall_seconds']:.2f} "
        f"| {row['median_seconds_per_epoch']:.4f} | {same}: {shown} |"
    )
# --8<-- [end:benchmark]

# --8<-- [start:seeds]
seeds_file = folder / "seeds_results.json"  # written by seeds.py
if not seeds_file.exists():
    print("No results file yet: run python snippets/training/seeds.py")
else:
    seeds = json.loads(seeds_file.read_text(encoding="utf-8"))
    runs = seeds["runs"]
    print(
        f"{len(runs)} seeds, {seeds['epochs']} epochs, torch {seeds['torch']}, "
        f"Python {seeds['python']}, {seeds['date']}\n"
    )
    print("| seed | test accuracy | correct of 360 | best epoch |")
    print("| ---: | ---: | ---: | ---: |")
    for run in runs:
        print(
            f"| {run['seed']} | {run['test_accuracy']:.4f} | {run['test_correct']} "
            f"| {run['best_epoch']} |"
        )
    accuracies = [run["test_accuracy"] for run in runs]
    print(
        f"\nmin {min(accuracies):.4f}, median {statistics.median(accuracies):.4f}, "
        f"max {max(accuracies):.4f}; "
        f"{sum(a >= 0.97 for a in accuracies)} of {len(runs)} seeds reach 97%"
    )
# --8<-- [end:seeds]
