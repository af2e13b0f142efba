"""The calibration page (docs/guide/calibration.md and calibration.en.md): ECE and its bins,
temperature scaling, and the page's claims about the experiment's models.

Each claim test quotes the English sentence it checks; the Japanese page states the same facts.
"""

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
from experiments import compare_losses as cl
from guide import calibration as cal
from guide import loss_comparison as lc
from scipy.optimize import minimize_scalar
from site_pages import SNIPPETS

R = lc.load()


def synthetic(temperature, n=20000, classes=10, seed=0):
    """Labels drawn from softmax(z); the reported logits are z / temperature."""
    generator = torch.Generator().manual_seed(seed)
    z = 2.0 * torch.randn(n, classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    return z / temperature, labels


def nll(logits, target, t):
    return F.cross_entropy(logits.double() / t, target).item()


# ECE --------------------------------------------------------------------------------------------

HAND_PROBABILITIES = torch.tensor(
    [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.4, 0.3, 0.3]],
    dtype=torch.float64,
)
HAND_TARGET = torch.tensor([0, 1, 1, 2])


def test_ece_of_a_hand_computed_case():
    # Top-1 confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.4 (wrong). With 15 bins
    # (b/15, (b+1)/15] they fall in bins 13, 13, 8 and 5 (0.6 = 9/15 and 0.4 = 6/15 are upper
    # edges): ECE = 2/4 * |0.5 - 0.9| + 1/4 * |1 - 0.6| + 1/4 * |0 - 0.4| = 0.4.
    logits = HAND_PROBABILITIES.log()
    table = cal.reliability_bins(logits, HAND_TARGET, 15)
    assert [i for i, n in enumerate(table["count"]) if n] == [5, 8, 13]
    assert table["accuracy"][13] == 0.5 and table["confidence"][13] == pytest.approx(0.9)
    assert table["confidence"][3] is None and table["accuracy"][3] is None
    assert cal.expected_calibration_error(logits, HAND_TARGET, 15) == pytest.approx(0.4)


def test_equal_mass_ece_of_a_hand_computed_case():
    # Two equal-mass bins of the sorted confidences: {0.4 wrong, 0.6 right} and {0.9 right,
    # 0.9 wrong}: ECE = 1/2 * |0.5 - 0.5| + 1/2 * |0.5 - 0.9| = 0.2.
    logits = HAND_PROBABILITIES.log()
    table = cal.reliability_bins(logits, HAND_TARGET, 2, "equal_mass")
    assert table["count"] == [2, 2]
    assert table["confidence"][0] == pytest.approx(0.5) and table["accuracy"][0] == 0.5
    assert cal.expected_calibration_error(logits, HAND_TARGET, 2, "equal_mass") == (
        pytest.approx(0.2)
    )


def test_ece_is_zero_when_every_confidence_equals_the_accuracy():
    """ "a model that gives every image the same confidence, equal to its accuracy, has an ECE
    of 0"."""
    logits = torch.tensor([[0.75, 0.25]] * 4, dtype=torch.float64).log()
    assert cal.expected_calibration_error(logits, torch.tensor([0, 0, 0, 1])) == pytest.approx(0)


def test_a_confidence_on_an_edge_belongs_to_the_lower_bin():
    edge = 11 / 15  # upper edge of bin 10: (10/15, 11/15]
    logits = torch.tensor([[edge, 1 - edge], [1.0, 1e-300]], dtype=torch.float64).log()
    table = cal.reliability_bins(logits, torch.tensor([0, 0]), 15)
    assert table["count"][10] == 1 and table["count"][14] == 1 and sum(table["count"]) == 2


@pytest.mark.parametrize("n, bins", [(500, 15), (7, 3), (3, 5)])
def test_equal_mass_bins_differ_in_size_by_at_most_one(n, bins):
    logits = torch.randn(n, 4, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    counts = cal.reliability_bins(logits, torch.zeros(n, dtype=torch.long), bins, "equal_mass")[
        "count"
    ]
    assert sum(counts) == n and max(counts) - min(counts) <= 1


def test_equal_width_ece_matches_an_independent_numpy_computation():
    generator = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(1000, 10, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 10, (1000,), generator=generator)
    p = torch.softmax(logits, 1).numpy()
    confidence, correct = p.max(1), p.argmax(1) == target.numpy()
    index = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    expected = sum(
        (index == b).mean() * abs(correct[index == b].mean() - confidence[index == b].mean())
        for b in range(15)
        if (index == b).any()
    )
    assert cal.expected_calibration_error(logits, target) == pytest.approx(expected, abs=1e-12)


# Temperature scaling ------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_fit_temperature_recovers_a_known_temperature(temperature):
    """ "labels are drawn from softmax(z), and the model reports z * 3, i.e. it is
    overconfident by a temperature of exactly 3": the fit finds the temperature back."""
    logits, labels = synthetic(1 / temperature)  # reported = z * temperature
    fitted = cal.fit_temperature(logits, labels)
    assert isinstance(fitted, float)
    assert fitted == pytest.approx(temperature, rel=0.05)


def test_fit_temperature_returns_the_minimum_of_the_nll():
    logits, labels = synthetic(1 / 2.5, n=3000, seed=3)
    t = cal.fit_temperature(logits, labels)
    best = nll(logits, labels, t)
    for factor in (1 - 1e-4, 1 + 1e-4, 0.9, 1.1):
        assert best <= nll(logits, labels, t * factor)
    # An independent minimiser: scipy's bounded Brent search on log T.
    found = minimize_scalar(
        lambda log_t: nll(logits, labels, math.exp(log_t)),
        bounds=(math.log(0.1), math.log(10)),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert t == pytest.approx(math.exp(found.x), rel=1e-6)


def test_fit_temperature_accepts_float32_and_does_not_touch_its_input():
    logits, labels = synthetic(1 / 2.0, n=2000)
    as_float32 = logits.float().requires_grad_()
    t = cal.fit_temperature(as_float32, labels)
    assert t == pytest.approx(cal.fit_temperature(logits.float().double(), labels), rel=1e-12)
    assert as_float32.grad is None


def test_temperature_scaling_leaves_the_argmax_and_so_the_accuracy_unchanged():
    """ "Dividing every logit by the same T > 0 keeps their order, so the predicted class and
    the accuracy do not change"."""
    generator = torch.Generator().manual_seed(5)
    logits = 4 * torch.randn(10000, 10, generator=generator)
    for t in (0.05, 0.7, 1.0, 3.0, 50.0):
        scaled = cal.TemperatureScaling(t)(logits)
        assert torch.equal(scaled.argmax(dim=1), logits.argmax(dim=1)), t


def test_module_divides_by_its_temperature_in_the_input_dtype_and_moves_with_the_model():
    module = cal.TemperatureScaling(2.0)
    logits = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(module(logits), logits / 2.0) and module(logits).dtype == torch.float64
    assert "temperature" in dict(module.named_buffers())
    assert module.to("meta").temperature.device.type == "meta"
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), cal.TemperatureScaling(4.0))
    x = torch.randn(2, 5)
    assert torch.allclose(model(x), model[0](x) / 4.0)
    fitted = cal.TemperatureScaling.fit(*synthetic(1 / 3.0, n=5000))
    assert fitted.temperature.item() == pytest.approx(3.0, rel=0.05)


ERRORS = {
    "integer logits": (lambda t: cal.fit_temperature(torch.ones(4, 3, dtype=torch.long), t),
                       "logits must be a floating-point tensor"),
    "1-D logits": (lambda t: cal.fit_temperature(torch.randn(4), t), r"logits must have shape"),
    "one class": (lambda t: cal.fit_temperature(torch.randn(4, 1), t * 0), "C >= 2"),
    "float target": (lambda t: cal.fit_temperature(torch.randn(4, 3), t.float()),
                     "target must hold integer class indices"),
    "target shape": (lambda t: cal.fit_temperature(torch.randn(5, 3), t),
                     r"target must have shape \(5,\)"),
    "target out of range": (lambda t: cal.fit_temperature(torch.randn(4, 3), t + 1),
                            r"target must be class indices in \[0, 3\)"),
    "nan logit": (lambda t: cal.fit_temperature(torch.full((4, 3), math.nan), t),
                  "logits must be finite"),
    "all right": (lambda t: cal.fit_temperature(10.0 * F.one_hot(t, 3).double(), t),
                  "every validation prediction is right"),
    "worse than uniform": (lambda t: cal.fit_temperature(-10.0 * F.one_hot(t, 3).double(), t),
                           "no better than a uniform guess"),
    "temperature 0": (lambda t: cal.TemperatureScaling(0.0),
                      "temperature must be a finite number > 0"),
    "temperature inf": (lambda t: cal.TemperatureScaling(math.inf), "temperature must be a finite"),
    "bins 0": (lambda t: cal.expected_calibration_error(torch.randn(4, 3), t, 0), "bins must be"),
    "binning": (lambda t: cal.expected_calibration_error(torch.randn(4, 3), t, 5, "quantile"),
                "binning must be one of"),
}  # fmt: skip


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_is_rejected_by_name(name):
    call, message = ERRORS[name]
    with pytest.raises(ValueError, match=message):
        call(torch.tensor([0, 1, 1, 2]))


def test_a_minimum_outside_the_search_range_is_reported():
    # One wrong prediction among 10**4, all with the same margin m: the NLL is smallest where
    # exp(beta * m) = 10**4 - 1, so T = m / log(9999); m = 1e-3 puts T near 1.1e-4.
    target = torch.zeros(10**4, dtype=torch.long)
    logits = torch.zeros(10**4, 2, dtype=torch.float64)
    logits[:, 0] = 1.0
    logits[0] = torch.tensor([0.0, 1.0])
    assert cal.fit_temperature(logits, target) == pytest.approx(1 / math.log(9999), rel=1e-9)
    with pytest.raises(ValueError, match="below 1e-3"):
        cal.fit_temperature(logits * 1e-3, target)
    with pytest.raises(ValueError, match="above 1e3"):
        cal.fit_temperature(logits * 1e5, target)


# The experiment's numbers -----------------------------------------------------------------------


def test_every_run_of_the_experiment_kept_its_accuracy_after_temperature_scaling():
    """ "the accuracy after temperature scaling equals the accuracy before it in all 180 runs"."""
    assert all(r["accuracy_ts"] == r["accuracy"] for r in R["runs"])


def test_the_temperature_was_fitted_on_the_validation_split_and_lowered_its_nll():
    """Temperature scaling minimises the validation NLL: it never raised it."""
    for r in R["runs"]:
        before, after = r["val_nll"]
        assert after <= before + 1e-12, (r["regime"], r["seed"], r["loss"])
        assert r["temperature"] > 0


def test_validation_split_is_disjoint_from_training_and_test_and_balanced():
    """ "a validation split of 20 images per class, carved from the training pool before the
    regime is applied: balanced, with correct labels, disjoint from the test split"."""
    labels = cl.load_digits().target
    for regime in cl.REGIMES:
        train, val, test, _ = cl.split_indices(regime, 2)
        assert not (set(train) & set(val)) and not (set(val) & set(test))
        assert np.bincount(labels[val]).tolist() == [cl.CONFIG["val_per_class"]] * 10
        _, _, _, y_val, _, _, _ = cl.make_split(regime, 2)
        assert np.array_equal(y_val, labels[val])


# The page's code ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page():
    """The page's snippet, run as a script; its printed output and its variables."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        namespace = runpy.run_path(str(SNIPPETS / "guide" / "calibration.py"), run_name="__main__")
    return namespace, output.getvalue()


def committed(regime, seed, loss):
    (run,) = [r for r in R["runs"] if (r["regime"], r["seed"], r["loss"]) == (regime, seed, loss)]
    return run


@pytest.mark.slow
def test_page_models_are_the_experiments_models(page):
    """The page retrains seed 0 of the balanced regime: its numbers are the committed ones."""
    namespace, _ = page
    y_val, y_test = namespace["y_val"], namespace["y_test"]
    for name, (val_logits, test_logits) in namespace["runs"].items():
        run = committed("balanced", 0, name)
        assert cal.fit_temperature(val_logits, y_val) == run["temperature"]
        assert cal.expected_calibration_error(test_logits, y_test) == run["ece"]
        scaled = test_logits.double() / run["temperature"]
        assert cal.expected_calibration_error(scaled, y_test) == run["ece_ts"]


@pytest.mark.slow
def test_page_prints_its_tables_and_one_plot(page):
    _, output = page
    plots = [part.split("</div>")[0] for part in output.split('<div class="plot">')[1:]]
    assert len(plots) == 1 and ET.fromstring(plots[0]).tag == "{http://www.w3.org/2000/svg}svg"
    assert "ECE = 0.4" in output
    assert re.search(r"fitted temperature: 3\.\d{3} \(true: 3\)", output)
    assert "argmax unchanged: True" in output
    assert output.count("ValueError") == 7
