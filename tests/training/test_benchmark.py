"""snippets/training/benchmark_results.json, the committed output of benchmark.py.

The speed itself is measured by the benchmark, never by a timed test; these tests check that
the committed file is complete and consistent, so the table on the page is honest.
"""

import json
import statistics

import pytest

from tests.support.pages import SNIPPETS

RESULTS = SNIPPETS / "training" / "benchmark_results.json"


@pytest.fixture(scope="module")
def bench():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_the_results_name_the_machine_they_ran_on(bench):
    machine = bench["machine"]
    for field in ("cpu_model", "cores", "torch", "python", "platform", "numpy", "scikit-learn"):
        assert machine[field], field
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert bench["date"] and bench["target_accuracy"] == 0.97


def test_every_command_has_five_complete_runs_on_the_cpu(bench):
    commands = [row["command"] for row in bench["settings"]]
    assert commands[0] == "python train_digits.py --device cpu"  # the default command first
    assert bench["runs"] == 5
    for row in bench["settings"]:
        assert len(row["runs"]) == 5
        for run in row["runs"]:
            # An epoch is part of the training, the training part of the whole command.
            assert run["seconds_per_epoch"] < run["train_seconds"] < run["wall_seconds"]
            # A share of the 360 test images (test_train_digits.py checks the split sizes):

            correct = run["test_accuracy"] * 360
            assert 0 <= correct <= 360 and correct == pytest.approx(round(correct), abs=1e-9)
            assert "load_average_before" in run


def test_the_medians_are_the_medians_of_the_runs(bench):
    for row in bench["settings"]:
        runs, target = row["runs"], bench["target_accuracy"]
        wall = statistics.median(r["wall_seconds"] for r in runs)
        assert row["median_wall_seconds"] == wall
        epoch = statistics.median(r["seconds_per_epoch"] for r in runs)
        assert row["median_seconds_per_epoch"] == epoch
        reached = all(r["test_accuracy"] >= target for r in runs)
        assert row["median_seconds_to_target"] == (wall if reached else None)
