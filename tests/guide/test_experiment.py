"""The experiment page (docs/guide/experiment.md and experiment.en.md): its description of the
setup matches the code, its claims hold in the committed results, and the helpers that turn the
results into tables and plots compute what the tables say."""

import contextlib
import io
import math
import re
import runpy
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from guide import experiment_report as lc
from guide import experiment_run as cl
from losses.class_balanced import class_balanced_weights
from losses.focal import focal_loss
from losses.logit_adjustment import logit_adjusted_cross_entropy
from losses.noisy_labels import generalized_cross_entropy, symmetric_cross_entropy
from losses.poly import poly1_cross_entropy
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from tests.support.pages import SNIPPETS

R = lc.load()
LT_COUNTS = torch.tensor([100.0, 60, 36, 22, 13, 8, 5, 3, 2, 1])


def batch(seed=0, n=32, classes=10):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=generator), torch.randint(
        0, classes, (n,), generator=generator
    )


# Setup ------------------------------------------------------------------------------------------


def test_accuracy_equals_balanced_accuracy_in_every_run():
    """ "Because the test split is balanced, accuracy and balanced accuracy are equal in every
    run"."""
    for run in R["runs"]:
        assert math.isclose(run["accuracy"], run["balanced_accuracy"], rel_tol=0, abs_tol=1e-12)


def test_every_loss_of_a_seed_starts_from_the_same_weights():
    """ "every loss sees the same training data, the same initial weights"."""
    x, y, _, _, x_test, _, classes = cl.make_split("long_tailed", 3)
    config = {**cl.CONFIG, "steps": 0}
    args = (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), classes)
    models = {n: cl.train(n, *args, 3, config)[0] for n in ("ce", "focal", "ldam_drw")}
    # The cosine head of LDAM-DRW wraps the same last layer: the same tensors, in order.
    states = [list(m.state_dict().values()) for m in models.values()]
    for state in states[1:]:
        assert len(state) == len(states[0])
        assert all(torch.equal(a, b) for a, b in zip(state, states[0], strict=True))
    other = list(cl.train("ce", *args, 4, config)[0].state_dict().values())
    assert not all(torch.equal(a, b) for a, b in zip(other, states[0], strict=True))


def test_every_loss_of_a_seed_sees_the_same_mini_batches(monkeypatch):
    """ "and the same mini-batches"."""
    seen = {}

    def recording_criterion(name, counts, config=None):
        seen[name] = []

        def criterion(logits, target):
            seen[name].append(target.clone())
            return logits.sum() * 0

        return criterion

    monkeypatch.setattr(cl, "make_criterion", recording_criterion)
    x, y, _, _, x_test, _, classes = cl.make_split("balanced", 2)
    args = (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), classes, 2)
    for name in ("ce", "gce"):
        cl.train(name, *args, {**cl.CONFIG, "steps": 25})  # more than one pass over the data
    assert len(seen["ce"]) == 25
    assert all(torch.equal(a, b) for a, b in zip(seen["ce"], seen["gce"], strict=True))


def test_data_model_and_post_hoc_adjustment_are_as_described():
    """8x8 images of 10 digits, pixel values divided by 16; an MLP with 64 inputs, two hidden
    ReLU layers and 10 logits; post-hoc LA subtracts tau * log(prior) with tau = 1."""
    digits = cl.load_digits()
    assert digits.images.shape[1:] == (8, 8) and sorted(set(digits.target)) == list(range(10))
    x = cl.make_split("balanced", 0)[0]
    train = cl.split_indices("balanced", 0)[0]
    assert np.array_equal(x, (digits.data[train] / 16).astype(np.float32))
    model = cl.make_model(64, 10, cl.CONFIG["hidden"])
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert model[0].in_features == 64 and model[-1].out_features == 10
    z, _ = batch(2)
    adjusted = cl.predicted_logits("posthoc_la", z, LT_COUNTS)
    assert torch.allclose(adjusted, z - torch.log(LT_COUNTS / LT_COUNTS.sum()))


def test_a_run_is_deterministic():
    """ "Every run is deterministic": the same short run twice gives the same weights."""
    x, y, _, _, x_test, _, classes = cl.make_split("noisy", 1)
    config = {**cl.CONFIG, "steps": 30}
    args = (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), classes, 1, config)
    first, second = cl.train("sce", *args)[0].state_dict(), cl.train("sce", *args)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_training_runs_the_full_budget_and_the_curve_is_only_recorded():
    """ "It was recorded for the plot only and never used to stop training"."""
    points = cl.CONFIG["steps"] // cl.CONFIG["curve_every"]
    assert all(len(run["test_accuracy_curve"]) == points for run in R["runs"])


def test_class_balanced_beta_0999_is_almost_inverse_frequency_for_these_counts():
    """ "With at most 100 images per class, the usual beta = 0.999 gives almost exactly
    inverse-frequency weights, so the experiment uses beta = 0.99"."""
    inverse = (1 / LT_COUNTS) * 10 / (1 / LT_COUNTS).sum()
    usual = class_balanced_weights(LT_COUNTS, beta=0.999)
    chosen = class_balanced_weights(LT_COUNTS, beta=0.99)
    assert ((usual - inverse).abs() / inverse).max() < 0.06
    assert ((chosen - inverse).abs() / inverse).max() > 0.3
    assert torch.allclose(cl.make_criterion("class_balanced", LT_COUNTS)(*batch()),
                          F.cross_entropy(*batch(), weight=chosen))  # fmt: skip


def test_at_most_100_images_per_class_holds_for_long_tailed_only():
    """ "With at most 100 images per class, as in the long-tailed regime (the balanced regime
    has 104 to 113 per class at seed 0)"."""
    counts = {
        (r["regime"], r["seed"]): r["train_class_counts"] for r in R["runs"] if r["loss"] == "ce"
    }
    assert max(max(c) for (g, _), c in counts.items() if g == "long_tailed") == 100
    assert (min(counts["balanced", 0]), max(counts["balanced", 0])) == (104, 113)


def test_cb_beta_is_the_one_setting_chosen_for_this_experiment():
    """ "except CB CE's beta = 0.99, chosen for this experiment": the label names it."""
    assert cl.LOSSES["class_balanced"] == "CB CE β=0.99"


def test_losses_use_the_settings_the_page_states():
    """CE + 1/n weights, label smoothing 0.1, focal gamma=2, Poly-1 epsilon=1, LA tau=1 with the
    training frequencies, GCE q=0.7, SCE alpha=0.1 beta=1 log 0 := -4."""
    z, y = batch(1)
    inverse = 1 / LT_COUNTS
    prior = LT_COUNTS / LT_COUNTS.sum()
    expected = {
        "ce": F.cross_entropy(z, y),
        "weighted_ce": F.cross_entropy(z, y, weight=inverse),
        "label_smoothing": F.cross_entropy(z, y, label_smoothing=0.1),
        "focal": focal_loss(z, y, gamma=2.0),
        "poly1": poly1_cross_entropy(z, y, epsilon=1.0),
        "logit_adjusted": logit_adjusted_cross_entropy(z, y, prior, tau=1.0),
        "gce": generalized_cross_entropy(z, y, q=0.7),
        "sce": symmetric_cross_entropy(z, y, alpha=0.1, beta=1.0, log_zero=-4.0),
    }
    for name, value in expected.items():
        assert torch.allclose(cl.make_criterion(name, LT_COUNTS)(z, y), value), name


def test_ldam_drw_settings():
    """ "the same cosine head and scale s = 30, margins up to 0.5 subtracted from the true-class
    cosine, and class-balanced weights with beta = 0.9999 from 80% of the steps on"."""
    criterion = cl.make_criterion("ldam_drw", LT_COUNTS)
    assert criterion.margins.max().item() == pytest.approx(0.5)
    assert criterion.scale == 30.0 == cl.CONFIG["cosine_scale"]
    assert cl.CONFIG["drw_start_fraction"] == 0.8 and cl.DRW_BETA == 0.9999
    cosine = torch.rand(32, 10, generator=torch.Generator().manual_seed(0)) * 2 - 1
    target = torch.arange(32) % 10
    margin = criterion.margins.float()[target]
    shifted = cosine - margin[:, None] * F.one_hot(target, 10)
    assert torch.allclose(criterion(cosine, target), F.cross_entropy(30 * shifted, target))
    x, y, _, _, x_test, _, classes = cl.make_split("long_tailed", 0)
    args = (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), classes, 0)
    counts = torch.bincount(torch.from_numpy(y), minlength=classes).float()
    before = cl.train("ldam_drw", *args, {**cl.CONFIG, "steps": 8})[3]  # switch at step 6
    assert torch.equal(before.weight, class_balanced_weights(counts, beta=0.9999))
    never = cl.train("ldam_drw", *args, {**cl.CONFIG, "steps": 8, "drw_start_fraction": 1})[3]
    assert never.weight is None


def test_the_learning_rate_stays_constant_through_the_drw_step(monkeypatch):
    """ "The learning rate stays constant; the paper also decays it at the DRW step" (and the
    guide: "this experiment's constant learning rate instead of the paper's decay")."""
    optimizers = []

    class Recorded(torch.optim.SGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            optimizers.append(self)

    monkeypatch.setattr(torch.optim, "SGD", Recorded)
    x, y, _, _, x_test, _, classes = cl.make_split("long_tailed", 0)
    args = (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_test), classes, 0)
    cl.train("ldam_drw", *args, {**cl.CONFIG, "steps": 10})  # DRW from step 8
    (optimizer,) = optimizers
    assert [group["lr"] for group in optimizer.param_groups] == [cl.CONFIG["lr"]]


def test_cosine_head_is_normalized_features_times_normalized_class_vectors():
    """ "the logit of class c is s cos(h, w_c), the cosine between the normalized features h of
    the last hidden layer and the normalized class vector w_c" (the loss multiplies by s)."""
    torch.manual_seed(0)
    model = cl.make_model(64, 10, cl.CONFIG["hidden"], cosine=True)
    x = torch.randn(5, 64)
    h = model[:-1](x)
    w = model[-1].linear.weight
    expected = torch.stack([F.cosine_similarity(h, w[c].expand_as(h), dim=1) for c in range(10)], 1)
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert torch.equal(cl.predicted_logits("ldam_drw", model(x), LT_COUNTS), 30 * model(x))
    model(x).sum().backward()
    assert model[-1].linear.bias.grad is None  # the bias is not used


def test_metrics_come_from_scikit_learn():
    """ "accuracy, balanced accuracy, macro-F1 and NLL from scikit-learn"."""
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(50, 4)) * 2)
    probabilities = torch.softmax(logits, dim=1).numpy()
    target = rng.integers(0, 4, size=50)
    predicted = probabilities.argmax(1)
    result = cl.evaluate(logits, target, 4, 15)
    assert result["accuracy"] == accuracy_score(target, predicted)
    assert result["balanced_accuracy"] == balanced_accuracy_score(target, predicted)
    assert result["macro_f1"] == f1_score(target, predicted, average="macro")
    assert result["nll"] == log_loss(target, probabilities, labels=range(4))
    assert result["ece"] == cl.expected_calibration_error(logits, torch.from_numpy(target), 15)


def test_train_time_is_kept_but_is_the_only_machine_dependent_number():
    """ "Train s (...) is kept out of the reproducibility check"."""
    assert all(run["train_time_s"] > 0 for run in R["runs"])
    assert "train_time_s" in R["notes"]


def test_the_machine_that_measured_train_s_is_recorded_and_printed(output):
    """ "The machine that measured it (CPU model, number of cores, torch threads) is recorded in
    the results file and printed at the top of this page"."""
    machine = R["machine"]
    assert machine["cpu_model"] and isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert machine["torch_threads"] == 1  # experiment_run.run() trains with one thread
    assert f"{machine['cpu_model']}, {machine['cores']} cores, 1 torch thread\n" in output
    assert lc.machine_text({}).endswith("does not record")


# The helpers behind the tables ------------------------------------------------------------------

FAKE = {
    "config": {"ece_bins": 2, "curve_every": 1},
    "losses": {"ce": "CE", "a": "A", "b": "B"},
    "runs": [
        {"regime": "noisy", "seed": s, "loss": loss, "accuracy": acc, "ece": ece}
        for s, (loss, acc, ece) in enumerate(
            [("ce", 0.5, 0.2), ("ce", 0.7, 0.2), ("a", 0.6, 0.1), ("a", 0.8, 0.3),
             ("b", 0.4, 0.2), ("b", 0.71, 0.1)]
        )
    ],
}  # fmt: skip
for i, run in enumerate(FAKE["runs"]):
    run["seed"] = i % 2


def test_delta_and_wins_are_paired_by_seed():
    assert lc.delta(FAKE, "noisy", "a", "accuracy") == pytest.approx(0.1)
    assert lc.wins(FAKE, "noisy", "a", "accuracy") == 2
    assert lc.wins(FAKE, "noisy", "b", "accuracy") == 1  # 0.71 > 0.7, 0.4 < 0.5
    assert lc.wins(FAKE, "noisy", "a", "ece") == 1  # lower is better: 0.1 < 0.2, 0.3 > 0.2
    assert lc.std(FAKE, "noisy", "ce", "accuracy") == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_table_shows_mean_std_delta_wins_and_bold_best():
    table = lc.table(FAKE, "noisy", ["ce", "a", "b"], ["accuracy", "ece"])
    lines = table.replace("\u00a0", " ").splitlines()  # non-breaking spaces, for the test
    assert lines[0] == "| loss | acc | Δ vs CE | ECE | Δ vs CE |"
    assert lines[3].startswith("| A | **0.700 ± 0.141** | +0.100 (2/2) | 0.200 ± 0.141 |")
    assert lines[2] == "| CE | 0.600 ± 0.141 |  | 0.200 ± 0.000 |  |"
    assert lines[4].split(" | ")[3] == "**0.150 ± 0.071**"  # B: the lowest ECE


def test_gain_needs_the_mean_difference_and_most_seeds():
    assert lc.gained(FAKE, "noisy", "a", "accuracy")  # +0.1, 2/2 seeds
    assert not lc.gained(FAKE, "noisy", "b", "accuracy")  # -0.045, 1/2 seeds


# The page's code ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def output():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        runpy.run_path(str(SNIPPETS / "guide" / "experiment.py"))
    return buffer.getvalue()


def test_page_prints_every_table_and_plot(output):
    assert output.count("| loss |") == 7  # three regimes, the differences, three with TS
    plots = [part.split("</div>")[0] for part in output.split('<div class="plot">')[1:]]
    assert len(plots) == 5
    for svg in plots:
        assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


def test_setup_table_shows_every_setting(output):
    lines = output.splitlines()
    for key, value in R["config"].items():
        assert any(re.fullmatch(rf"{key} *= {re.escape(str(value))}", line) for line in lines), key
