"""A clean exit with gloo (docs/distributed/global_loss.md#clean-exit): why train_digits.py and
ddp_check.py import torch._dynamo before the process group, and the committed shutdown runs of
snippets/distributed/shutdown_stress.py (shutdown_results.json), re-checked.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.support.pages import SNIPPETS

TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    for path in (
        SNIPPETS / "training" / "train_digits.py",
        SNIPPETS / "distributed" / "ddp_check.py",
    ):
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


def test_the_pages_state_how_often_the_rarely_run_programs_ran():
    from tests.support.pages import DOCS

    variants = json.loads((SNIPPETS / "distributed" / "shutdown_results.json").read_text())[
        "variants"
    ]
    baseline = variants["ddp_check.py without the fix"]["runs"]
    torchrun = variants["torchrun train_digits.py"]["runs"]
    en = " ".join((DOCS / "distributed" / "global_loss.en.md").read_text(encoding="utf-8").split())
    ja = (DOCS / "distributed" / "global_loss.md").read_text(encoding="utf-8")
    once = {1: "once", 2: "twice"}.get(torchrun, f"{torchrun} times")
    assert f"without the fix was run {baseline} times" in en
    assert f"training script under `torchrun` {once}." in en
    assert f"修正なしの版は {baseline} 回、`torchrun` での学習スクリプトは {torchrun} 回" in ja


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
