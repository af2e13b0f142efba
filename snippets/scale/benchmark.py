"""Peak memory and time of forward + backward for five ways to compute the cross-entropy of a head.

Ways: F.cross_entropy(F.linear(...)) (the naive way), chunked_linear_cross_entropy from
large_vocabulary.py, F.linear_cross_entropy(options=None) (PyTorch's reference path),
F.linear_cross_entropy with LinearCrossEntropyOptions(batch_chunk_size=...) (PyTorch's chunked
path) and F.linear_cross_entropy with a plain LinearCrossEntropyOptions() (chunk size chosen
by "auto").

Memory: each (way, dtype, vocabulary size) runs once in a fresh Python process. On the CPU the
number is the peak resident set size (getrusage's ru_maxrss) minus the resident set size just
before the call, after the inputs exist; on CUDA it is torch.cuda.max_memory_allocated() minus
torch.cuda.memory_allocated() before the call. Time: for each vocabulary size, one fresh process
runs a warm-up call of each way, then --repeats rounds in which every way runs once, in turn;
the ratio to the naive way is taken in each round, and the medians are reported.

    python snippets/scale/benchmark.py                   # CPU, writes benchmark_results.json
    python snippets/scale/benchmark.py --device cuda     # writes benchmark_results_cuda.json
    python snippets/scale/benchmark.py --n 256 --h 32 --vocab 1024 --repeats 1 --output /tmp/x.json
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WAYS = ["naive", "chunked", "torch_reference", "torch_chunked", "torch_chunked_auto"]
DTYPES = ["float32", "bfloat16"]


def make_loss(way: str, chunk_size: int):
    """The loss function of one way, as a callable (hidden, weight, target) -> scalar.

    chunk_size is the number of rows per chunk of "chunked" and "torch_chunked";
    "torch_chunked_auto" lets LinearCrossEntropyOptions() choose.
    """
    import torch.nn.functional as F
    from torch.nn import LinearCrossEntropyOptions

    sys.path.insert(0, str(HERE.parent))  # the snippets root
    from scale.large_vocabulary import chunked_linear_cross_entropy

    if way == "naive":
        return lambda h, w, t: F.cross_entropy(F.linear(h, w), t)
    if way == "chunked":
        return lambda h, w, t: chunked_linear_cross_entropy(h, w, t, chunk_size=chunk_size)
    if way == "torch_reference":
        return lambda h, w, t: F.linear_cross_entropy(h, w, t, options=None)
    if way == "torch_chunked":
        options = LinearCrossEntropyOptions(batch_chunk_size=chunk_size)
        return lambda h, w, t: F.linear_cross_entropy(h, w, t, options=options)
    if way == "torch_chunked_auto":
        options = LinearCrossEntropyOptions()
        return lambda h, w, t: F.linear_cross_entropy(h, w, t, options=options)
    raise ValueError(f"way must be one of {WAYS}, got {way!r}")


def make_inputs(n: int, h: int, v: int, dtype_name: str, device: str, seed: int = 0):
    import torch

    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=generator).to(device, dtype).requires_grad_()
    weight = (torch.randn(v, h, generator=generator) / h**0.5).to(device, dtype).requires_grad_()
    target = torch.randint(v, (n,), generator=generator).to(device)
    target[:: max(1, n // 16)] = -100  # a few padding rows
    return hidden, weight, target


def step(loss_fn, hidden, weight, target):
    hidden.grad = weight.grad = None
    loss = loss_fn(hidden, weight, target)
    loss.backward()
    return loss


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_memory(args) -> dict:
    """One call of one way in this fresh process: the extra peak memory it needed."""
    import torch

    torch.set_num_threads(args.threads)
    loss_fn = make_loss(args.way, args.chunk_size)
    # A tiny call first loads the kernels, so that their memory is not counted.
    step(loss_fn, *make_inputs(64, 8, 256, args.dtype, args.device))
    hidden, weight, target = make_inputs(args.n, args.h, args.vocab, args.dtype, args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(loss_fn, hidden, weight, target)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        return {
            "peak_bytes": peak,
            "method": "torch.cuda.max_memory_allocated",
            "chunk_size": args.chunk_size,
        }
    before = rss_bytes()
    max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    step(loss_fn, hidden, weight, target)
    max_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_bytes": max_after - before,
        "rss_before_bytes": before,
        "maxrss_before_bytes": max_before,
        "method": "ru_maxrss - RSS before",
        "chunk_size": args.chunk_size,
    }


def worker_time(args) -> dict:
    """Every way, interleaved, in this fresh process: seconds per forward + backward."""
    import torch

    torch.set_num_threads(args.threads)
    inputs = make_inputs(args.n, args.h, args.vocab, args.dtype, args.device)
    losses = {way: make_loss(way, args.chunk_size) for way in WAYS}
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    seconds = {way: [] for way in WAYS}
    values = {}
    for round_ in range(args.repeats + 1):  # round 0 is the warm-up
        for way in WAYS:
            sync()
            start = time.perf_counter()
            loss = step(losses[way], *inputs)
            sync()
            elapsed = time.perf_counter() - start
            if round_:
                seconds[way].append(elapsed)
            values[way] = loss.item()
    return {"seconds": seconds, "loss": values, "chunk_size": args.chunk_size}


def run_worker(kind: str, args, **overrides) -> dict:
    options = {**vars(args), **overrides}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind]
    for name in ("way", "dtype", "device", "n", "h", "vocab", "threads", "repeats", "chunk_size"):
        command += [f"--{name.replace('_', '-')}", str(options[name])]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def machine(device: str) -> dict:
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def benchmark(args) -> dict:
    results = {
        "date": datetime.date.today().isoformat(),
        "device": args.device,
        "machine": machine(args.device),
        "n": args.n,
        "h": args.h,
        "threads": args.threads,
        "repeats": args.repeats,
        "chunk_size": args.chunk_size,
        "memory": [],
        "time": [],
    }
    for vocab in args.vocab_sizes:
        for dtype in DTYPES:
            for way in WAYS:
                row = run_worker("memory", args, way=way, dtype=dtype, vocab=vocab)
                results["memory"].append({"vocab": vocab, "dtype": dtype, "way": way, **row})
                print(f"memory V={vocab} {dtype} {way}: {row['peak_bytes'] / 2**20:.0f} MiB")
        timed = run_worker("time", args, way="naive", dtype="float32", vocab=vocab)
        naive = timed["seconds"]["naive"]
        for way in WAYS:
            ratios = [s / ref for s, ref in zip(timed["seconds"][way], naive, strict=True)]
            results["time"].append(
                {
                    "vocab": vocab,
                    "dtype": "float32",
                    "way": way,
                    "seconds": timed["seconds"][way],
                    "median_seconds": statistics.median(timed["seconds"][way]),
                    "median_ratio_to_naive": statistics.median(ratios),
                    "loss": timed["loss"][way],
                    "chunk_size": timed["chunk_size"],
                }
            )
            print(f"time V={vocab} {way}: x{statistics.median(ratios):.2f} of naive")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=512, help="rows (tokens)")
    parser.add_argument("--h", type=int, default=64, help="hidden size")
    parser.add_argument("--vocab", dest="vocab_sizes", type=int, nargs="+", default=[32768, 131072])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--chunk-size", type=int, default=0, help="rows per chunk; 0: 2**22 // V, the default"
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--worker", choices=["memory", "time"], help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=WAYS, default="naive", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.vocab = args.vocab_sizes[0]
        if args.chunk_size == 0:
            sys.path.insert(0, str(HERE.parent))  # the snippets root
            from scale.large_vocabulary import DEFAULT_CHUNK_ELEMENTS

            args.chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // args.vocab)
        work = worker_memory if args.worker == "memory" else worker_time
        print(json.dumps(work(args)))
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: CUDA is not available here", file=sys.stderr)
            return 2
    args.vocab = None
    output = args.output or HERE / (
        "benchmark_results.json" if args.device == "cpu" else "benchmark_results_cuda.json"
    )
    results = benchmark(args)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    tmp.replace(output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
