"""Train a small MLP on scikit-learn's handwritten digits with CrossEntropyLoss.

A complete, copyable training loop for multi-class classification. It runs as-is on CPU,
CUDA or Apple MPS and needs no download: the 1,797 8x8 digit images ship with scikit-learn.

    python train_digits.py                      # defaults: CPU or the best device found
    python train_digits.py --device cpu --epochs 5 --json result.json
    python train_digits.py --amp                # autocast (bfloat16; float16 on pre-Ampere GPUs)
    torchrun --nproc_per_node=2 train_digits.py --device cpu    # 2 processes, DDP over gloo
"""

# --8<-- [start:imports]
import argparse
import copy
import json
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch._dynamo  # before any process group exists: see init_distributed
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset
from tqdm import tqdm

# --8<-- [end:imports]


# --8<-- [start:config]
@dataclass
class Config:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    loss: str = "ce"  # "ce": CrossEntropyLoss on logits; "nll": LogSoftmax + NLLLoss
    device: str = "auto"  # "auto", "cpu", "cuda" or "mps"
    amp: bool = False  # autocast: bfloat16, or float16 on CUDA GPUs older than Ampere


# --8<-- [end:config]


# --8<-- [start:device]
def available_devices() -> list[str]:
    """The device types this machine can train on, best first."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; any other name must be available here."""
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise ValueError(
            f"device {name!r} is not available here; available: {', '.join(available)}"
        )
    return torch.device(name)


# --8<-- [end:device]


# --8<-- [start:distributed]
def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless a process group is initialized, as under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> None:
    """Join the process group that torchrun describes in the environment variables.

    torch._dynamo (imported on first use by DDP and by the optimizers) keeps references to a
    process group that already exists when it is imported, so destroy_process_group() could
    not free the group, and gloo's threads would still run at interpreter shutdown, where they
    can abort the process. The import at the top of this file comes before the group.
    """
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # "cuda" is now this process's GPU
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def all_reduce_sums(*values, device) -> list[float]:
    """Add numbers over all processes: global sums and counts give global means."""
    if world()[1] == 1:
        return list(values)
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)  # default op: SUM
    return totals.tolist()


# --8<-- [end:distributed]


# --8<-- [start:seed]
def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that shuffles the DataLoader."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


# --8<-- [end:seed]


# --8<-- [start:data]
SPLIT_SEED = 0  # the split stays the same whatever --seed is, so runs share one test set


def load_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified 70/10/20 train/validation/test split, standardized with training statistics."""
    features, labels = load_digits(return_X_y=True)  # (1797, 64) pixels in 0..16, labels 0..9
    x_rest, x_test, y_rest, y_test = train_test_split(
        features, labels, test_size=0.2, stratify=labels, random_state=SPLIT_SEED
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.125, stratify=y_rest, random_state=SPLIT_SEED
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # pixels that are blank in every training image stay 0

    def tensors(x, y):
        x = torch.tensor((x - mean) / std, dtype=torch.float32)
        return x, torch.tensor(y, dtype=torch.int64)  # class indices, int64

    return {
        "train": tensors(x_train, y_train),
        "val": tensors(x_val, y_val),
        "test": tensors(x_test, y_test),
    }


def make_loader(split, batch_size, device, generator=None, seed=0) -> DataLoader:
    """Shuffled when a generator is given (training), in order otherwise (evaluation).

    In several processes, a DistributedSampler deals each one its share of the shuffled
    training data (every process gets the same number of samples, so a few are repeated);
    evaluation takes every world-size-th sample, with no repeats, so sums are exact.
    Memory is pinned only for CUDA.
    """
    dataset, (rank, world_size) = TensorDataset(*split), world()
    sampler = None
    if world_size > 1 and generator is not None:
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed)
        generator = None
    elif world_size > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=generator is not None,
        generator=generator,
        sampler=sampler,
        pin_memory=device.type == "cuda",
    )


# --8<-- [end:data]


# --8<-- [start:model]
class MLP(nn.Module):
    """64 pixels -> two hidden layers -> 10 logits (no softmax: the loss takes logits)."""

    def __init__(self, in_features=64, hidden=256, classes=10, dropout=0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.layers(x)


# --8<-- [end:model]


# --8<-- [start:loss]
class LogSoftmaxNLLLoss(nn.Module):
    """The two-step route: LogSoftmax turns logits into log-probabilities for NLLLoss."""

    def __init__(self):
        super().__init__()
        self.log_softmax = nn.LogSoftmax(dim=1)
        self.nll = nn.NLLLoss()

    def forward(self, logits, target):
        return self.nll(self.log_softmax(logits), target)


def make_criterion(name: str) -> nn.Module:
    if name == "ce":
        return nn.CrossEntropyLoss()  # takes raw logits
    if name == "nll":
        return LogSoftmaxNLLLoss()
    raise ValueError(f"loss must be 'ce' or 'nll', got {name!r}")


# --8<-- [end:loss]


# --8<-- [start:amp]
def autocast_dtype(device: torch.device):
    """The dtype for --amp: bfloat16 where autocast supports it, float16 on CUDA GPUs older
    than Ampere (compute capability 8.0), None where autocast is unsupported. On a CPU without
    bfloat16 instructions, bfloat16 runs, but slower than float32: there --amp checks the path."""
    if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
        # torch.cuda.is_bf16_supported() is True there too, but bfloat16 would be emulated
        # (slow); the usual choice is float16, with a GradScaler (see fit).
        return torch.float16
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # autocast warns, and disables itself, if unsupported
            with torch.autocast(device.type, dtype=torch.bfloat16):
                probe = torch.ones(2, 2, device=device) @ torch.ones(2, 2, device=device)
    except (RuntimeError, UserWarning):
        return None
    return torch.bfloat16 if probe.dtype == torch.bfloat16 else None


def forward_loss(model, criterion, x, y, amp_dtype):
    """Forward pass under autocast when amp_dtype is set; the loss is computed in float32."""
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    logits = logits.float()  # low-precision logits -> float32 before log-softmax and the loss
    return logits, criterion(logits, y)


# --8<-- [end:amp]


# --8<-- [start:train]
def train_one_epoch(
    model, loader, criterion, optimizer, device, amp_dtype, progress=True, scaler=None
):
    """One pass over the training data; returns the mean training loss over its samples."""
    if scaler is None:  # a disabled GradScaler is a no-op: scale, step and update pass through
        scaler = torch.amp.GradScaler(device.type, enabled=False)
    model.train()
    loss_sum, count = 0.0, 0
    for x, y in tqdm(loader, desc="train", leave=False, disable=not progress):
        x = x.to(device, non_blocking=True)  # asynchronous copy from pinned memory on CUDA
        y = y.to(device, non_blocking=True)
        _, loss = forward_loss(model, criterion, x, y, amp_dtype)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # float16: a scaled loss keeps small gradients from 0
        scaler.step(optimizer)  # unscales first; skips the step if a gradient is inf or nan
        scaler.update()
        loss_sum += loss.item() * len(y)  # .item() waits for the device: once per batch
        count += len(y)
    loss_sum, count = all_reduce_sums(loss_sum, count, device=device)  # over all processes
    return loss_sum / count


# --8<-- [end:train]


# --8<-- [start:evaluate]
@torch.no_grad()
def evaluate(model, loader, criterion, device, amp_dtype):
    """Mean loss and accuracy over a whole split (sums over batches, divided once)."""
    model.eval()  # dropout off
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        logits, loss = forward_loss(model, criterion, x, y, amp_dtype)
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
    loss_sum, correct, count = all_reduce_sums(loss_sum, correct, count, device=device)
    return loss_sum / count, correct / count


@torch.no_grad()
def predict(model, x, device):
    """Predicted class indices for a tensor of inputs."""
    model.eval()
    return model(x.to(device)).argmax(dim=1).cpu()


# --8<-- [end:evaluate]


# --8<-- [start:fit]
def fit(config: Config, criterion=None, progress=True, log=None):
    """Train, validate every epoch, keep the best weights, and evaluate them on the test split.

    Under torchrun every process runs this; the metrics are global, and only rank 0 logs.
    """
    log = log or print  # looked up at call time
    start = time.perf_counter()
    rank, world_size = world()
    progress = progress and rank == 0
    device = resolve_device(config.device)
    generator = seed_everything(config.seed)
    splits = load_splits()
    train_loader = make_loader(splits["train"], config.batch_size, device, generator, config.seed)
    val_loader = make_loader(splits["val"], 512, device)
    test_loader = make_loader(splits["test"], 512, device)

    model = MLP().to(device)
    trained = model  # in several processes, DDP averages the gradients in backward()
    if world_size > 1:
        device_ids = [torch.cuda.current_device()] if device.type == "cuda" else None
        trained = DistributedDataParallel(model, device_ids=device_ids)
    criterion = criterion if criterion is not None else make_criterion(config.loss)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    amp_dtype = autocast_dtype(device) if config.amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    history, best = [], None
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)  # a new shuffle every epoch
        train_loss = train_one_epoch(
            trained, train_loader, criterion, optimizer, device, amp_dtype, progress, scaler
        )
        val_loss, val_accuracy = evaluate(model, val_loader, criterion, device, amp_dtype)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "seconds": time.perf_counter() - epoch_start,
            }
        )
        if best is None or (val_accuracy, -val_loss) > (best["val_accuracy"], -best["val_loss"]):
            best = {**history[-1], "state": copy.deepcopy(model.state_dict())}
        if rank == 0:
            log(
                f"epoch {epoch:3d}/{config.epochs}  train_loss {train_loss:.4f}  "
                f"val_loss {val_loss:.4f}  val_acc {val_accuracy:.4f}"
            )

    del trained  # drop the DDP wrapper: it holds the process group
    model.load_state_dict(best["state"])  # the weights of the best validation epoch
    test_loss, test_accuracy = evaluate(model, test_loader, criterion, device, amp_dtype)
    result = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_epoch": best["epoch"],
        "epochs": config.epochs,
        "seconds": time.perf_counter() - start,
        "device": str(device),
        "world_size": world_size,
        "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else None,
        "config": asdict(config),
        "torch": torch.__version__,
        "history": history,
    }
    return model, result


# --8<-- [end:fit]


# --8<-- [start:json]
def write_json_atomic(path, data) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over the target.

    os.replace is atomic within one file system: readers see the old file or the new one,
    never half a file; a failure (even a value json cannot encode) leaves the target as it was.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # after a failure; after success it is gone already


# --8<-- [end:json]


# --8<-- [start:cli]
def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value" errors
    return parse


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="train_digits.py",
        description="Train an MLP on the scikit-learn digits with CrossEntropyLoss.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # --epoch is an error, not --epochs
    )
    add = parser.add_argument
    add("--epochs", type=positive(int), default=defaults.epochs, help="training epochs")
    add("--batch-size", type=positive(int), default=defaults.batch_size, help="mini-batch size")
    add("--lr", type=positive(float), default=defaults.lr, help="AdamW learning rate")
    add("--seed", type=int, default=defaults.seed, help="seed for torch, numpy and shuffling")
    add("--loss", choices=["ce", "nll"], default=defaults.loss, help="ce or LogSoftmax+NLLLoss")
    add(
        "--device",
        choices=["auto", "cpu", "cuda", "mps"],
        default=defaults.device,
        help="auto: cuda, mps, cpu",
    )
    add("--amp", action="store_true", help="autocast: bfloat16, float16 on pre-Ampere CUDA")
    add("--threads", type=positive(int), default=1, help="CPU threads for torch")
    add("--json", type=Path, help="write the results to this file")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)  # fail before any work, with argparse's exit code 2
    except ValueError as error:
        parser.error(f"argument --device: {error}")
    if launched_by_torchrun() and device.type == "mps":
        parser.error("argument --device: several processes need cpu (gloo) or cuda (nccl)")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"argument --json: folder {str(args.json.parent)!r} does not exist")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    config = Config(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        loss=args.loss,
        device=args.device,
        amp=args.amp,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # 1 by default: see the benchmark on the training page
    distributed = launched_by_torchrun() and not dist.is_initialized()
    if distributed:
        init_distributed(resolve_device(args.device))
    rank = world()[0]
    try:
        _, result = fit(config, progress=sys.stderr.isatty())
        if distributed:
            dist.barrier()  # every process is done communicating before any tears down
    finally:
        torch.set_num_threads(threads)  # leave the interpreter as it was (notebooks, tests)
        if distributed:
            dist.destroy_process_group()
    result["threads"] = args.threads
    if rank != 0:
        return 0  # rank 0 reports and writes the file
    print(
        f"best epoch {result['best_epoch']}: test_accuracy {result['test_accuracy']:.4f}  "
        f"test_loss {result['test_loss']:.4f}  device {result['device']}  "
        f"{result['seconds']:.1f} s"
    )
    if args.json is not None:
        write_json_atomic(args.json, result)
    return 0


# --8<-- [end:cli]

if __name__ == "__main__":
    sys.exit(main())
