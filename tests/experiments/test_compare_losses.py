"""The loss-comparison experiment: its data regimes, its ECE, and its committed results, which a
short rerun must reproduce exactly."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from experiments import compare_losses as cl
from site_pages import SNIPPETS
from sklearn.datasets import load_digits

SCRIPT = SNIPPETS / "experiments" / "compare_losses.py"
COMMITTED = SNIPPETS / "experiments" / "results" / "compare_losses.json"
LABELS = load_digits().target


@pytest.fixture(scope="module")
def committed():
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


# ECE, checked against a case computed by hand -------------------------------------------------


def test_ece_of_a_hand_computed_case():
    # Top-1 confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.4 (wrong). With 15 bins
    # (b/15, (b+1)/15] they fall in bins 13, 13, 8 and 5 (0.6 = 9/15 and 0.4 = 6/15 are upper
    # edges): ECE = 2/4 * |0.5 - 0.9| + 1/4 * |1 - 0.6| + 1/4 * |0 - 0.4| = 0.4.
    probabilities = np.array(
        [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.4, 0.3, 0.3]]
    )
    target = np.array([0, 1, 1, 2])
    bins = cl.reliability_bins(probabilities, target, 15)
    assert [i for i, n in enumerate(bins["count"]) if n] == [5, 8, 13]
    assert bins["count"][13] == 2 and bins["accuracy"][13] == 0.5
    assert bins["confidence"][13] == pytest.approx(0.9)
    assert bins["confidence"][3] is None and bins["accuracy"][3] is None
    assert cl.expected_calibration_error(probabilities, target, 15) == pytest.approx(0.4)


def test_ece_is_zero_when_confidence_matches_accuracy():
    # Four predictions at confidence 0.75, three of them right.
    probabilities = np.tile([0.75, 0.25], (4, 1))
    assert cl.expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0)


def test_a_confidence_on_an_edge_belongs_to_the_lower_bin():
    edge = np.linspace(0, 1, 16)[11]  # upper edge of bin 10: (10/15, 11/15]
    probabilities = np.array([[edge, 1 - edge], [1.0, 0.0]])
    bins = cl.reliability_bins(probabilities, np.array([0, 0]), 15)
    assert bins["count"][10] == 1 and bins["count"][14] == 1
    assert sum(bins["count"]) == 2


# Data regimes ---------------------------------------------------------------------------------


def test_long_tailed_profile_has_imbalance_ratio_100():
    counts = cl.long_tailed_counts(10, 100, 100)
    assert counts == [100, 60, 36, 22, 13, 8, 5, 3, 2, 1]
    assert counts[0] / counts[-1] == 100


@pytest.mark.parametrize("regime", cl.REGIMES)
@pytest.mark.parametrize("seed", [0, 4])
def test_splits_are_disjoint_deterministic_and_the_test_split_is_balanced(regime, seed):
    train, test, y_train = cl.split_indices(regime, seed)
    assert not set(train) & set(test)
    assert np.bincount(LABELS[test]).tolist() == [cl.CONFIG["test_per_class"]] * 10
    again = cl.split_indices(regime, seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, test, y_train), again, strict=True))
    counts = sorted(np.bincount(y_train, minlength=10).tolist(), reverse=True)
    if regime == "long_tailed":
        assert counts == cl.long_tailed_counts(10, 100, 100)
    else:
        assert len(train) == len(LABELS) - len(test)


@pytest.mark.parametrize("seed", [0, 4])
def test_noisy_regime_moves_exactly_40_percent_of_labels_to_other_classes(seed):
    train, _, y_train = cl.split_indices("noisy", seed)
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
def test_a_rerun_of_a_slice_reproduces_the_committed_numbers_exactly(tmp_path, committed):
    # Seed 3 only, and losses that are not first in the order: a run must not depend on the
    # runs before it. posthoc_la needs CE's model; ldam_drw switches its weights mid-run.
    output = tmp_path / "slice.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--regimes",
        "long_tailed",
        "--seeds",
        "3",
        "--losses",
        "posthoc_la",
        "ldam_drw",
        "--output",
        str(output),
        "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rerun = json.loads(output.read_text(encoding="utf-8"))["runs"]
    assert [(r["loss"], r["seed"]) for r in rerun] == [("posthoc_la", 3), ("ldam_drw", 3)]
    assert output.with_suffix(".csv").is_file()
    wanted = {(r["regime"], r["seed"], r["loss"]): r for r in committed["runs"]}
    for run in rerun:
        # Compared as parsed from JSON: bit-for-bit equal floats, train time excepted.
        assert _without_time(run) == _without_time(wanted[run["regime"], run["seed"], run["loss"]])
        assert run["train_time_s"] > 0
