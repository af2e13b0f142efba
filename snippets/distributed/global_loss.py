"""Cross-entropy whose mean is the mean over the global batch, under DDP and gradient accumulation.

With reduction="mean", each rank (or each micro-batch) divides by its own number of valid
targets (or their summed class weights). Averaging those means is not the mean over the global
batch when the counts differ. The functions below divide the summed loss by the global count.

    python global_loss.py     # runs the demonstrations of the page (2 processes, gloo, CPU)
"""

# --8<-- [start:imports]
import torch
import torch.distributed as dist
import torch.nn.functional as F

# --8<-- [end:imports]


# --8<-- [start:normalizer]
def normalizer(target, *, weight=None, ignore_index=-100) -> torch.Tensor:
    """The denominator of F.cross_entropy(reduction="mean") for class-index targets.

    The number of targets that are not ignore_index, or, with class weights, the sum of the
    weights of those targets.
    """
    valid = target != ignore_index
    if weight is None:
        return valid.sum().to(torch.float32)
    return weight[target[valid]].sum().to(torch.float32)


# --8<-- [end:normalizer]


# --8<-- [start:global_cross_entropy]
def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def global_cross_entropy(logits, target, *, weight=None, ignore_index=-100, group=None):
    """Cross-entropy whose gradient, after DDP averages it over the ranks, is the gradient of
    F.cross_entropy over the concatenated global batch.

    Sums the local losses, divides by the valid targets (or their weights) of all ranks, and
    multiplies by the world size to undo DDP's averaging. Without an initialized process group
    it is F.cross_entropy(..., reduction="mean").
    """
    summed = F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction="sum"
    )
    total = normalizer(target, weight=weight, ignore_index=ignore_index).to(logits.device)
    world_size = 1
    if _distributed():
        dist.all_reduce(total, group=group)  # a constant: no gradient flows through it
        world_size = dist.get_world_size(group)
    return summed * world_size / total


def global_mean_for_logging(loss, group=None) -> float:
    """The true global mean, for logging: the ranks' global_cross_entropy values, averaged.

    Each rank's value is its local sum times world_size over the global total, so their mean
    over the ranks is the global sum over the global total.
    """
    value = loss.detach().clone()
    if _distributed():
        dist.all_reduce(value, group=group)
        value /= dist.get_world_size(group)
    return value.item()


# --8<-- [end:global_cross_entropy]


# --8<-- [start:accumulation]
def step_normalizer(targets, *, weight=None, ignore_index=-100, group=None) -> torch.Tensor:
    """The denominator of one optimizer step: valid targets of all its micro-batches (and of
    all ranks, when a process group is initialized). Compute it before the first backward."""
    total = sum(normalizer(t, weight=weight, ignore_index=ignore_index) for t in targets)
    if _distributed():
        dist.all_reduce(total, group=group)
    return total


def micro_batch_cross_entropy(logits, target, total, *, weight=None, ignore_index=-100, group=None):
    """One micro-batch's share of the step's loss: its summed loss over the step's total.

    The shares of a step add up to the mean over the step's whole batch; under DDP the
    world size undoes DDP's averaging, as in global_cross_entropy.
    """
    summed = F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction="sum"
    )
    world_size = dist.get_world_size(group) if _distributed() else 1
    return summed * world_size / total.to(logits.device)


# --8<-- [end:accumulation]


if __name__ == "__main__":
    # --8<-- [start:accumulation_demo]
    # One optimizer step over 4 padded sequences, in 2 micro-batches of 2 sequences.
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 5)  # 8 features per token -> 5 classes
    x = torch.randn(4, 6, 8)  # 4 sequences of 6 token positions
    y = torch.randint(0, 5, (4, 6))
    for row, length in enumerate([6, 5, 2, 1]):
        y[row, length:] = -100  # padding, ignored by the loss
    micro_batches = [(x[:2], y[:2]), (x[2:], y[2:])]

    def token_logits(xb):
        return model(xb).flatten(0, 1)  # (sequences * positions, classes)

    def gradient_of(losses):
        model.zero_grad()
        for loss in losses:
            loss.backward()  # gradients add up over the micro-batches
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    full = gradient_of([F.cross_entropy(token_logits(x), y.flatten())])
    naive = gradient_of(
        [F.cross_entropy(token_logits(xb), yb.flatten()) / 2 for xb, yb in micro_batches]
    )
    total = step_normalizer([yb for _, yb in micro_batches])
    shares = [
        micro_batch_cross_entropy(token_logits(xb), yb.flatten(), total) for xb, yb in micro_batches
    ]
    fixed = gradient_of(shares)

    print("valid tokens per micro-batch:", [int(normalizer(yb)) for _, yb in micro_batches])
    print("full-batch loss:   ", F.cross_entropy(token_logits(x), y.flatten()).item())
    print("sum of the shares: ", sum(shares).item())
    print("max |grad - full-batch grad|:")
    print(f"  naive, mean of the 2 micro-batch means: {(naive - full).abs().max().item():.2e}")
    print(
        f"  fixed, summed losses / {int(total)} tokens:     {(fixed - full).abs().max().item():.2e}"
    )
    # --8<-- [end:accumulation_demo]

    # --8<-- [start:ddp_demo]
    import subprocess
    import sys
    from pathlib import Path

    # This folder (the page is built from the repository root).
    here = Path(__file__).parent if "__file__" in globals() else Path("snippets/distributed")
    check = subprocess.run(
        [sys.executable, str(here / "ddp_check.py")],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    print(check.stdout)
    # --8<-- [end:ddp_demo]

    # --8<-- [start:torchrun_demo]
    import json
    import socket
    import tempfile

    with socket.socket() as probe:  # a free port on 127.0.0.1 for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "torch.distributed.run",  # what the torchrun command runs
            "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={port}",
            str(here.parent / "training" / "train_digits.py"), "--device", "cpu", "--epochs", "3",
            "--json", f"{folder}/result.json",
        ]  # fmt: skip
        training = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
        result = json.loads(Path(folder, "result.json").read_text(encoding="utf-8"))
        script = str(here.parent / "training" / "train_digits.py")
        script_and_options = command[command.index(script) :]
        one_process = [sys.executable, *script_and_options]  # the same run, in one process
        subprocess.run(one_process, capture_output=True, text=True, timeout=300, check=True)
        single = json.loads(Path(folder, "result.json").read_text(encoding="utf-8"))
    print(training.stdout)
    for run in (result, single):
        correct = run["test_accuracy"] * 360
        print(
            f"world_size {run['world_size']}, {run['epochs']} epochs: "
            f"{correct:.0f} of the 360 test images classified right"
        )
    # --8<-- [end:torchrun_demo]

    # --8<-- [start:dynamo_references]
    # One process with a gloo group (world_size 1): torch._dynamo imported after the group, as
    # an optimizer does on first use, or before it, as ddp_check.py and train_digits.py do.
    import socket
    import textwrap

    probe = textwrap.dedent(
        """
        import os, sys, time
        import torch
        if sys.argv[1] == "before":
            import torch._dynamo
        import torch.distributed as dist

        def gloo_threads():
            tasks = os.listdir("/proc/self/task")
            return sum("pt_gloo" in open(f"/proc/self/task/{t}/comm").read() for t in tasks)

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
        dist.init_process_group("gloo", rank=0, world_size=1)
        loaded = "torch._dynamo" in sys.modules
        references = sys.getrefcount(dist.group.WORLD)
        torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
        print(f"torch._dynamo imported {sys.argv[1]} the group:")
        print(f"  imported before AdamW(...): {loaded}, after: {'torch._dynamo' in sys.modules}")
        print(f"  references to the group: {references} -> {sys.getrefcount(dist.group.WORLD)}")
        threads = gloo_threads()
        dist.destroy_process_group()
        time.sleep(0.5)
        print(f"  pt_gloo threads: {threads} -> {gloo_threads()} after destroy_process_group()")
        """
    )
    for when in ("after", "before"):
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", probe, when, str(port)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        print(done.stdout, end="")
    # --8<-- [end:dynamo_references]

    # --8<-- [start:shutdown_results]
    # The committed results of shutdown_stress.py (fresh runs, each to a normal exit).
    import json

    stress_file = here / "shutdown_results.json"
    if not stress_file.exists():
        print("No results file yet: run python snippets/distributed/shutdown_stress.py")
    else:
        stress = json.loads(stress_file.read_text(encoding="utf-8"))
        print(
            f"torch {stress['torch']}, Python {stress['python']}, {stress['date']}; "
            f"at most {stress['jobs']} runs at the same time\n"
        )
        print("| program | runs | failed | runs with gloo threads alive at exit |")
        print("| --- | ---: | ---: | ---: |")
        for name, variant in stress["variants"].items():
            print(
                f"| `{name}` | {variant['runs']} | {variant['failed']} "
                f"| {variant['runs_with_gloo_threads_at_exit']} |"
            )
    # --8<-- [end:shutdown_results]
