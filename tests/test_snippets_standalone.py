"""Every snippet runs on its own, as a reader who copied only that file would run it."""

import os
import subprocess
import sys

import pytest
from site_pages import SNIPPETS, relative

SCRIPTS = sorted(p for p in SNIPPETS.rglob("*.py") if "__pycache__" not in p.parts)

# Scripts whose full run is long, or writes results, get a short run here; their own tests
# check the full behaviour. Paths are relative to snippets/.
SHORT_RUN_ARGUMENTS: dict[str, list[str]] = {
    "losses/benchmark.py": [
        *("--sizes", "64x10", "--repeats", "2", "--warmup", "1", "--output", "short.json")
    ],
    "guide/experiment_run.py": (
        "--regimes balanced --seeds 0 --losses ce posthoc_la --output short.json --no-progress"
    ).split(),
    "training/train_digits.py": ["--epochs", "2"],
    "training/benchmark.py": ["--runs", "1", "--epochs", "2", "--output", "short.json"],
    # Builds the whole site six times, so only its --help here; it has no test of its own yet
    # (the 'no test' row of docs/contributing/index.md in tests/test_layout_rule.py).
    "contributing/build_benchmark.py": ["--help"],
    "scale/benchmark.py": "--n 64 --h 8 --vocab 256 --repeats 1 --output short.json".split(),
    "training/seeds.py": ["--seeds", "1", "--output", "short.json"],
    "distributed/shutdown_stress.py": (
        "--runs 1 --baseline-runs 0 --torchrun-runs 0 --output short.json".split()
    ),
}


@pytest.mark.parametrize("script", SCRIPTS, ids=relative)
def test_snippet_runs_alone(script, tmp_path):
    # A fresh interpreter in an empty folder: no repository paths, no test fixtures.
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            *SHORT_RUN_ARGUMENTS.get(script.relative_to(SNIPPETS).as_posix(), []),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{relative(script)} failed:\n{result.stderr[-3000:]}"


def test_there_are_snippets():
    assert len(SCRIPTS) >= 1
