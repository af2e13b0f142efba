"""snippets/guide/experiment_run.py, the experiment of docs/guide/experiment.md: its data
regimes, its ECE, and its committed results, which a short rerun must reproduce exactly."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from guide import calibration as cal
from guide import experiment_run as cl
from sklearn.datasets import load_digits

from tests.support.pages import SNIPPETS

SCRIPT = SNIPPETS / "guide" / "experiment_run.py"
COMMITTED = SNIPPETS / "guide" / "experiment_results.json"
LABELS = load_digits().target


@pytest.fixture(scope="module")
def committed():
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


# ECE and temperature scaling come from the calibration page's code --------------------------------


def test_ece_and_temperature_are_those_of_the_calibration_page():
    # Their own tests (a hand-computed ECE, a recovered temperature) are in
    # tests/guide/test_calibration.py; the experiment must use exactly those functions.
    assert cl.expected_calibration_error is cal.expected_calibration_error
    assert cl.reliability_bins is cal.reliability_bins
    assert cl.fit_temperature is cal.fit_temperature


def test_temperature_is_fitted_on_validation_logits_only(monkeypatch):
    seen = []

    def recording_fit(logits, target):
        seen.append(target.clone())
        return 1.5

    monkeypatch.setattr(cl, "fit_temperature", recording_fit)
    data = cl.make_split("noisy", 1)
    tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in data]
    x_train, y_train, _, y_val, x_test, _, classes = tensors
    outcome = cl.train("ce", x_train, y_train, x_test, classes, 1, {**cl.CONFIG, "steps": 3})
    row = cl.record("ce", outcome, (*tensors[:5], data[5], classes))
    assert len(seen) == 1 and torch.equal(seen[0], y_val)
    assert row["temperature"] == 1.5


# Data regimes ---------------------------------------------------------------------------------


def test_long_tailed_profile_has_imbalance_ratio_100():
    counts = cl.long_tailed_counts(10, 100, 100)
    assert counts == [100, 60, 36, 22, 13, 8, 5, 3, 2, 1]
    assert counts[0] / counts[-1] == 100


@pytest.mark.parametrize("regime", cl.REGIMES)
@pytest.mark.parametrize("seed", [0, 4])
def test_splits_are_disjoint_deterministic_and_the_test_split_is_balanced(regime, seed):
    train, val, test, y_train = cl.split_indices(regime, seed)
    assert not set(train) & set(test) and not set(train) & set(val) and not set(val) & set(test)
    assert np.bincount(LABELS[test]).tolist() == [cl.CONFIG["test_per_class"]] * 10
    assert np.bincount(LABELS[val]).tolist() == [cl.CONFIG["val_per_class"]] * 10
    again = cl.split_indices(regime, seed)
    assert all(
        np.array_equal(a, b) for a, b in zip((train, val, test, y_train), again, strict=True)
    )
    counts = sorted(np.bincount(y_train, minlength=10).tolist(), reverse=True)
    if regime == "long_tailed":
        assert counts == cl.long_tailed_counts(10, 100, 100)
    else:
        assert len(train) == len(LABELS) - len(test) - len(val)


@pytest.mark.parametrize("seed", [0, 4])
def test_noisy_regime_moves_exactly_40_percent_of_labels_to_other_classes(seed):
    train, _, _, y_train = cl.split_indices("noisy", seed)
    wrong = y_train != LABELS[train]
    assert wrong.sum() == round(0.4 * len(train))
    # Symmetric: a wrong label is any of the 9 other classes, each about equally often.
    offsets = np.bincount((y_train[wrong] - LABELS[train][wrong]) % 10, minlength=10)
    assert offsets[0] == 0
    assert offsets[1:].min() > 0.5 * wrong.sum() / 9 and offsets[1:].max() < 1.5 * wrong.sum() / 9


def test_splits_differ_between_seeds():
    assert not np.array_equal(
        cl.split_indices("balanced", 0)[0], cl.split_indices("balanced", 1)[0]
    )


def test_unknown_loss_is_rejected_by_name():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        cl.make_criterion("hinge", torch.ones(10))


def test_command_line_rejects_unknown_loss(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--losses", "hinge", "--output", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--losses: invalid choice: 'hinge'" in result.stderr


# Committed results ----------------------------------------------------------------------------


def test_committed_results_cover_every_regime_seed_and_loss_once(committed):
    keys = [(r["regime"], r["seed"], r["loss"]) for r in committed["runs"]]
    expected = [(g, s, n) for g in cl.REGIMES for s in cl.CONFIG["seeds"] for n in cl.LOSSES]
    assert sorted(keys) == sorted(expected) and len(keys) == len(set(keys))
    assert len(cl.CONFIG["seeds"]) >= 3


def test_committed_results_were_made_with_this_script_and_these_versions(committed):
    assert committed["config"] == json.loads(json.dumps(cl.CONFIG))
    assert committed["losses"] == cl.LOSSES
    # A different PyTorch can change the numbers: regenerate the results after an upgrade.
    assert committed["versions"]["torch"] == torch.__version__


def test_committed_results_name_the_script_that_wrote_them_and_its_machine(committed):
    # The header is written by write(); a file written by an older script (another path) fails.
    writer = committed["about"].removeprefix("Written by ").split(". ", 1)[0]
    assert SNIPPETS.parent / writer == SCRIPT and SCRIPT.is_file()
    assert set(committed["machine"]) == set(cl.machine()) == {"cpu_model", "cores", "torch_threads"}


def test_committed_csv_is_the_summary_of_the_committed_runs(committed):
    with COMMITTED.with_suffix(".csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    expected = cl.summarize(committed["runs"])
    assert [(r["regime"], r["loss"]) for r in rows] == [(r["regime"], r["loss"]) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            if key.startswith("train_time_s"):
                continue
            assert (float(row[key]) if isinstance(value, float) else type(value)(row[key])) == value


def _without_time(run):
    return {key: value for key, value in run.items() if key != "train_time_s"}


@pytest.mark.slow
def test_a_rerun_of_one_regime_and_seed_reproduces_the_committed_numbers_exactly(
    tmp_path, committed
):
    # Every loss of seed 3 of the long-tailed regime: seed 3 is not first, so a run must not
    # depend on the runs before it; posthoc_la needs CE's model, ldam_drw switches its weights
    # mid-run, and every run fits a temperature on the validation split.
    output = tmp_path / "slice.json"
    command = [
        sys.executable,
        str(SCRIPT),
        *("--regimes", "long_tailed", "--seeds", "3", "--output", str(output), "--no-progress"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    header = json.loads(output.read_text(encoding="utf-8"))
    assert header["about"] == committed["about"]
    assert header["machine"]["torch_threads"] == 1 and header["machine"]["cores"] >= 1
    rerun = header["runs"]
    assert sorted(r["loss"] for r in rerun) == sorted(cl.LOSSES)
    assert output.with_suffix(".csv").is_file()
    wanted = {(r["regime"], r["seed"], r["loss"]): r for r in committed["runs"]}
    for run in rerun:
        # Compared as parsed from JSON: bit-for-bit equal floats, train time excepted.
        assert _without_time(run) == _without_time(wanted[run["regime"], run["seed"], run["loss"]])
        assert run["train_time_s"] > 0
