"""snippets/training/train_digits.py under torchrun: 2 processes on the CPU (gloo on 127.0.0.1).

Each test starts its own processes on a free port, bounded by a timeout; no GPU is needed.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset
from training import train_digits as td

from tests.support.pages import SNIPPETS

TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args, cwd, nproc=2):
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SNIPPETS)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def test_the_script_trains_under_torchrun_with_global_metrics(tmp_path):
    script = SNIPPETS / "training" / "train_digits.py"
    result = torchrun(script, "--epochs", "2", "--device", "cpu", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # rank 0 alone writes it
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["world_size"] == 2 and data["device"] == "cpu" and len(data["history"]) == 2
    # Accuracies are counts over the whole splits (360 test, 180 validation images), not over
    # one process's half of them.
    assert data["test_accuracy"] * 360 == pytest.approx(round(data["test_accuracy"] * 360))
    for epoch in data["history"]:
        assert epoch["val_accuracy"] * 180 == pytest.approx(round(epoch["val_accuracy"] * 180))
    assert data["test_accuracy"] > 0.8
    assert result.stdout.count("best epoch") == 1  # only rank 0 prints


def test_evaluation_in_two_processes_equals_one_process(tmp_path):
    # The same weights evaluated on 2 shards with all_reduce of sums and counts.
    (tmp_path / "evaluate.py").write_text(
        textwrap.dedent(
            """
            import json, os
            import torch, torch.distributed as dist
            from training import train_digits as td

            dist.init_process_group("gloo")
            torch.manual_seed(0)
            model, cpu = td.MLP(), torch.device("cpu")
            loader = td.make_loader(td.load_splits()["test"], 64, cpu)
            loss, accuracy = td.evaluate(model, loader, td.make_criterion("ce"), cpu, None)
            shard = len(loader.dataset)
            if dist.get_rank() == 0:
                print(json.dumps({"loss": loss, "accuracy": accuracy, "shard": shard}), flush=True)
            dist.barrier()
            dist.destroy_process_group()  # then a normal exit, as train_digits.py does
            """
        )
    )
    result = torchrun("evaluate.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads(result.stdout.strip().splitlines()[-1])
    assert two["shard"] == 180  # each process evaluates half of the 360 test images
    torch.manual_seed(0)
    model = td.MLP()
    loader = td.make_loader(td.load_splits()["test"], 64, torch.device("cpu"))
    loss, accuracy = td.evaluate(model, loader, td.make_criterion("ce"), torch.device("cpu"), None)
    assert two["accuracy"] == accuracy
    assert two["loss"] == pytest.approx(loss, rel=1e-6)


def test_distributed_sampler_gives_every_process_as_many_samples_by_repeating_some():
    dataset = TensorDataset(torch.arange(1257))  # the training split
    shares = [list(DistributedSampler(dataset, 2, rank, seed=0)) for rank in (0, 1)]
    assert [len(s) for s in shares] == [629, 629]
    assert len(set(shares[0]) | set(shares[1])) == 1257  # one sample appears twice


def test_mps_is_refused_for_several_processes(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(SystemExit) as stop:
        td.parse_args(["--device", "mps"])
    assert stop.value.code == 2
    assert "several processes need cpu (gloo) or cuda (nccl)" in capsys.readouterr().err


def test_torchrun_is_torch_distributed_run():
    from importlib.metadata import entry_points

    (torchrun_script,) = entry_points(group="console_scripts", name="torchrun")
    assert torchrun_script.value == "torch.distributed.run:main"


def test_two_processes_take_half_the_steps_per_epoch_and_reach_less_in_3_epochs(
    tmp_path, monkeypatch
):
    # --batch-size is per process: a global batch of 2 x 64, so half the optimizer steps.
    splits, cpu = td.load_splits(), torch.device("cpu")
    one = td.make_loader(splits["train"], 64, cpu, td.seed_everything(0), seed=0)
    monkeypatch.setattr(td, "world", lambda: (0, 2))
    two = td.make_loader(splits["train"], 64, cpu, td.seed_everything(0), seed=0)
    monkeypatch.undo()
    assert len(one) == 2 * len(two)
    # At the same learning rate, 3 epochs in 2 processes end below 3 epochs in one (as shown on
    # the page: both runs are deterministic on the CPU).
    script = SNIPPETS / "training" / "train_digits.py"
    options = ("--epochs", "3", "--device", "cpu", "--json", "r.json")
    result = torchrun(script, *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    distributed = json.loads((tmp_path / "r.json").read_text())["test_accuracy"]
    single = subprocess.run(
        [sys.executable, str(script), *options],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    assert distributed < json.loads((tmp_path / "r.json").read_text())["test_accuracy"]


def test_batch_size_is_per_process_and_evaluation_shards_have_no_repeats(monkeypatch):
    # make_loader as process 0 of 2 sees it (no process group needed to build the loaders).
    monkeypatch.setattr(td, "world", lambda: (0, 2))
    splits, cpu = td.load_splits(), torch.device("cpu")
    train = td.make_loader(splits["train"], 64, cpu, td.seed_everything(0), seed=0)
    assert isinstance(train.sampler, DistributedSampler)
    assert len(train.sampler) == 629 and len(next(iter(train))[1]) == 64
    test = td.make_loader(splits["test"], 512, cpu)
    assert list(test.dataset.indices) == list(range(0, 360, 2))  # every other sample
