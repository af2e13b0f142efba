"""DDP on 2 CPU processes (gloo, 127.0.0.1): the naive mean's gradient against global_cross_entropy.

Both are compared with the gradient of F.cross_entropy over the whole global batch in one
process. The two ranks hold different numbers of valid targets (ignore_index padding), and in
the second case class weights as well; the third case adds gradient accumulation.

    python ddp_check.py                    # spawns its 2 worker processes
    python ddp_check.py --json out.json    # also writes the numbers (the tests read them)
"""

import argparse
import contextlib
import datetime
import json
import socket
import sys
from pathlib import Path

import torch
import torch._dynamo  # before the process group: see the end of worker()
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the snippets root
from distributed.global_loss import (
    global_cross_entropy,
    global_mean_for_logging,
    micro_batch_cross_entropy,
    normalizer,
    step_normalizer,
)

WORLD_SIZE = 2


# --8<-- [start:batch]
def global_batch():
    """12 samples, 5 classes. Rank 0 gets rows 0-5 (5 valid targets), rank 1 rows 6-11 (2)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 8, generator=generator)
    y = torch.randint(0, 5, (12,), generator=generator)
    y[[5, 8, 9, 10, 11]] = -100  # padding: ignore_index
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])  # class weights
    return x, y, weight


def make_model():
    torch.manual_seed(0)  # the same initial weights in every process
    return torch.nn.Linear(8, 5)


def gradient(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


# --8<-- [end:batch]


# --8<-- [start:reference]
def full_batch(weight=None):
    """One process, the whole global batch: the gradient DDP should reproduce."""
    model = make_model()
    x, y, _ = global_batch()
    loss = F.cross_entropy(model(x), y, weight=weight)
    loss.backward()
    return gradient(model), loss.item()


# --8<-- [end:reference]


# --8<-- [start:worker]
def one_step(x, y, loss_name, weight):
    model = DDP(make_model())  # DDP averages the gradients of the ranks in backward()
    if loss_name == "naive":  # each rank divides by its own valid targets
        loss = F.cross_entropy(model(x), y, weight=weight)
        logged = loss.detach().clone()
        dist.all_reduce(logged)
        logged = logged.item() / dist.get_world_size()  # the mean of the ranks' means
    else:
        loss = global_cross_entropy(model(x), y, weight=weight)
        logged = global_mean_for_logging(loss)
    loss.backward()
    return gradient(model.module), logged


def accumulated_step(x, y):
    """Two micro-batches per rank; DDP communicates only in the last backward (no_sync)."""
    model = DDP(make_model())
    micro_batches = [(x[:3], y[:3]), (x[3:], y[3:])]
    total = step_normalizer([yb for _, yb in micro_batches])  # all ranks, all micro-batches
    logged = 0.0
    for index, (xb, yb) in enumerate(micro_batches):
        last = index == len(micro_batches) - 1
        with model.no_sync() if not last else contextlib.nullcontext():
            share = micro_batch_cross_entropy(model(xb), yb, total)
            share.backward()
        logged += global_mean_for_logging(share)
    return gradient(model.module), logged


def worker(rank, port, queue):
    dist.init_process_group(
        "gloo",  # with GPUs: "nccl", and the tensors on cuda:rank
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=60),
    )
    x, y, weight = global_batch()
    rows = slice(rank * 6, rank * 6 + 6)  # this rank's share of the global batch
    x, y = x[rows], y[rows]
    steps = {}
    for case, case_weight in (("ignore_index", None), ("class weights", weight)):
        for loss_name in ("naive", "global"):
            steps[case, loss_name] = one_step(x, y, loss_name, case_weight)
    steps["accumulation", "global"] = accumulated_step(x, y)
    steps = {key: (grad.tolist(), logged) for key, (grad, logged) in steps.items()}
    queue.put((rank, int(normalizer(y)), steps))  # plain values: the worker exits before use
    dist.barrier()  # both ranks are done communicating before either tears down
    dist.destroy_process_group()  # frees the group and stops gloo's threads, because
    # torch._dynamo (which DDP imports) was imported before the group existed; imported after
    # it, it keeps references to the group, whose threads then outlive this call and can
    # abort the interpreter's shutdown. The worker returns and the process exits normally.


# --8<-- [end:worker]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(port=None) -> dict:
    """Spawn the ranks, collect their gradients and compare them with the full batch."""
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.spawn(worker, args=(port or free_port(), queue), nprocs=WORLD_SIZE, join=True)
    valid, steps = {}, {}
    for _ in range(WORLD_SIZE):
        rank, valid[rank], steps[rank] = queue.get()
    _, _, weight = global_batch()
    references = {
        "ignore_index": full_batch(),
        "class weights": full_batch(weight),
        "accumulation": full_batch(),
    }
    report = {"valid targets per rank": [valid[rank] for rank in range(WORLD_SIZE)]}
    for (case, loss_name), (grad, logged) in steps[0].items():
        reference_grad, reference_loss = references[case]
        report[f"{case} / {loss_name}"] = {
            "max_grad_error": (torch.tensor(grad) - reference_grad).abs().max().item(),
            "logged_loss": logged,
            "full_batch_loss": reference_loss,
            "ranks_agree": grad == steps[1][case, loss_name][0],  # DDP: the same on every rank
        }
    return report


# --8<-- [start:main]
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ddp_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="a free TCP port on 127.0.0.1 (default: any)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    report = run(args.port)
    print("valid targets per rank:", report["valid targets per rank"])
    print(f"{'case / loss':28} {'max |grad - full|':>18} {'logged loss':>12} {'full batch':>11}")
    for name, row in report.items():
        if isinstance(row, dict):
            print(
                f"{name:28} {row['max_grad_error']:18.2e} "
                f"{row['logged_loss']:12.6f} {row['full_batch_loss']:11.6f}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
# --8<-- [end:main]
