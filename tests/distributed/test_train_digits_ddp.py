"""snippets/train_digits.py under torchrun: 2 processes on the CPU (gloo on 127.0.0.1).

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
import train_digits as td
from site_pages import SNIPPETS
from torch.utils.data import DistributedSampler, TensorDataset

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
    script = SNIPPETS / "train_digits.py"
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
            import train_digits as td

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_gloo_threads_outlive_destroy_process_group_unless_dynamo_is_imported_first(tmp_path):
    # Why train_digits.py and ddp_check.py import torch._dynamo before the process group: an
    # optimizer (or DDP) imports it on first use; imported after init_process_group, it keeps
    # references to the group, destroy_process_group() cannot free it, and gloo's threads are
    # still running at interpreter shutdown.
    script = tmp_path / "outlive.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            import torch
            if sys.argv[1] == "dynamo first":
                import torch._dynamo
            import torch.distributed as dist

            def gloo_threads():
                names = [open(f"/proc/self/task/{t}/comm").read().strip()
                         for t in os.listdir("/proc/self/task")]
                return sum("pt_gloo" in name for name in names)

            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
            dist.init_process_group("gloo", rank=0, world_size=1)
            group, before = dist.group.WORLD, None
            before = sys.getrefcount(group)
            dynamo_before = "torch._dynamo" in sys.modules
            if sys.argv[1] == "ddp":
                torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
            elif sys.argv[1] != "plain":
                torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
            dynamo_after = "torch._dynamo" in sys.modules
            extra_references = sys.getrefcount(group) - before
            t = torch.ones(2)
            dist.all_reduce(t)
            del group
            dist.destroy_process_group()
            time.sleep(0.5)
            print(gloo_threads(), extra_references, int(dynamo_before), int(dynamo_after))
            """
        )
    )

    def after_destroy(mode):
        result = subprocess.run(
            [sys.executable, str(script), mode, str(free_port())],
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        threads, references, dynamo_before, dynamo_after = map(int, result.stdout.split())
        return threads, references, (dynamo_before, dynamo_after)

    assert after_destroy("plain") == (0, 0, (0, 0))  # import torch alone does not load it
    for first_use in ("optimizer", "ddp"):  # each imports torch._dynamo when first used
        threads, references, loaded = after_destroy(first_use)
        assert loaded == (0, 1), first_use
        assert threads > 0 and references > 0, first_use  # the late import keeps references
    assert after_destroy("dynamo first") == (0, 0, (1, 1))


def test_the_scripts_import_dynamo_before_any_process_group_and_exit_normally():
    for path in (SNIPPETS / "train_digits.py", SNIPPETS / "distributed" / "ddp_check.py"):
        source = path.read_text(encoding="utf-8")
        assert "os._exit" not in source, path
        first_import = source.index("import torch._dynamo")
        assert first_import < source.index("init_process_group"), path
        assert first_import < source.index("import torch.distributed"), path


def test_the_committed_shutdown_runs_are_complete_and_the_fixed_programs_never_failed():
    stress = json.loads((SNIPPETS / "distributed" / "shutdown_results.json").read_text())
    variants = stress["variants"]
    fixed, baseline = variants["ddp_check.py"], variants["ddp_check.py without the fix"]
    assert fixed["runs"] >= 50 and len(fixed["rows"]) == fixed["runs"]
    assert isinstance(stress["jobs"], int) and stress["jobs"] >= 1  # printed above the table
    for variant in variants.values():
        assert len(variant["rows"]) == variant["runs"]
    for variant in variants.values():
        assert variant["failed"] == sum(row["failed"] for row in variant["rows"])
        assert variant["runs_with_gloo_threads_at_exit"] == sum(
            any(row["gloo_threads_at_exit"]) for row in variant["rows"]
        )
        assert all(row["gloo_threads_at_exit"] for row in variant["rows"])  # every process said
    assert fixed["failed"] == 0 and fixed["runs_with_gloo_threads_at_exit"] == 0
    assert variants["torchrun train_digits.py"]["failed"] == 0
    assert variants["torchrun train_digits.py"]["runs_with_gloo_threads_at_exit"] == 0
    assert baseline["runs_with_gloo_threads_at_exit"] == baseline["runs"]  # the precondition


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
    script = SNIPPETS / "train_digits.py"
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


def test_os_exit_skips_atexit_handlers_and_buffered_output(tmp_path):
    # What the scripts would lose by leaving with os._exit (the page's reason not to).
    script = tmp_path / "leave.py"
    script.write_text(
        "import atexit, os, sys\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "sys.stdout.write('buffered line\\n')\n"  # stdout is a pipe here: block-buffered
        "os._exit(0) if sys.argv[1] == 'os._exit' else sys.exit(0)\n"
    )

    def output(mode):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        done = subprocess.run(
            [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0
        return done.stdout

    assert output("sys.exit") == "buffered line\natexit ran\n"
    assert output("os._exit") == ""
