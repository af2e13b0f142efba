"""Every snippet runs on its own, as a reader who copied only that file would run it."""

import os
import re
import subprocess
import sys

import pytest

from tests.support.pages import DOCS, SNIPPETS, relative

INCLUDE = re.compile(r'--8<-- "snippets/([\w/]+\.py)(?::[\w-]+)?"')
SCRIPTS = sorted(p for p in SNIPPETS.rglob("*.py") if "__pycache__" not in p.parts)

# Scripts whose full run is long, or writes results, get a short run here; their own tests
# check the full behaviour. Paths are relative to snippets/.
SHORT_RUN_ARGUMENTS: dict[str, list[str]] = {
    # Its short run, alone in an empty folder, is tests/losses/test_benchmark.py's (not twice).
    "losses/benchmark.py": ["--help"],
    "guide/experiment_run.py": (
        "--regimes balanced --seeds 0 --losses ce posthoc_la --output short.json --no-progress"
    ).split(),
    "training/train_digits.py": ["--epochs", "2"],
    "training/benchmark.py": ["--runs", "1", "--epochs", "2", "--output", "short.json"],
    # Builds the whole site six times, so only its --help here; tests/contributing/test_index.py
    # re-checks the results file it wrote.
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


def test_every_included_snippet_and_every_short_run_is_collected():
    """The glob above finds every file a page includes, and no short run names a stale path."""
    names = {script.relative_to(SNIPPETS).as_posix() for script in SCRIPTS}
    included = {
        match[1]
        for page in DOCS.rglob("*.md")
        for match in INCLUDE.finditer(page.read_text(encoding="utf-8"))
    }
    assert included, "no page includes a snippet: the include pattern is out of date"
    assert included <= names, sorted(included - names)
    assert set(SHORT_RUN_ARGUMENTS) <= names, sorted(set(SHORT_RUN_ARGUMENTS) - names)
