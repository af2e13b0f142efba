"""snippets/scale/distillation.py, its committed results, and docs/scale/distillation.md."""

import itertools
import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from scale.distillation import SETTINGS, digits_split, distillation_loss, mlp, run_seed, train

from tests.support.pages import SNIPPETS

RESULTS = SNIPPETS / "scale" / "distillation_results.json"
MODELS = ("teacher", "student_labels", "student_distilled")
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@pytest.fixture(scope="module")
def run():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def probs_and_logits(seed=0, n=6, c=7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.randn(n, c, generator=g, dtype=torch.float64).softmax(1)
    return logits, q


def test_cross_entropy_with_probabilities_is_entropy_plus_kl():
    logits, q = probs_and_logits()
    ce = F.cross_entropy(logits, q)
    kl = F.kl_div(F.log_softmax(logits, 1), q, reduction="batchmean")
    entropy = -(q * q.log()).sum(1).mean()
    torch.testing.assert_close(ce, entropy + kl)
    g_ce, g_kl = (torch.autograd.grad(x, logits, retain_graph=True)[0] for x in (ce, kl))
    torch.testing.assert_close(g_ce, g_kl)
    torch.testing.assert_close(g_ce, (logits.softmax(1) - q) / logits.shape[0])


def test_log_target_reads_the_target_as_log_probabilities():
    logits, q = probs_and_logits()
    log_p = F.log_softmax(logits, 1)
    torch.testing.assert_close(
        F.kl_div(log_p, q.log(), reduction="batchmean", log_target=True),
        F.kl_div(log_p, q, reduction="batchmean"),
    )
    assert math.isnan(F.kl_div(log_p, q.log(), reduction="batchmean").item())


def test_mean_divides_by_the_number_of_elements_and_warns():
    logits, q = probs_and_logits(c=7)
    log_p = F.log_softmax(logits, 1)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = F.kl_div(log_p, q, reduction="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batchmean = F.kl_div(log_p, q, reduction="batchmean")
    torch.testing.assert_close(batchmean / mean, torch.tensor(7.0, dtype=torch.float64))
    torch.testing.assert_close(batchmean, (q * (q.log() - log_p)).sum(1).mean())


def test_the_kl_gradient_shrinks_as_one_over_t_squared():
    """Hinton et al. (2015): soft-target gradients scale as 1/T**2 at high T, hence the T**2."""
    g = torch.Generator().manual_seed(0)
    student = torch.randn(64, 10, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(64, 10, generator=g, dtype=torch.float64)
    scaled = []
    for t in (8.0, 16.0, 32.0, 64.0):
        soft = F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1),
                        reduction="batchmean", log_target=True)  # fmt: skip
        (grad,) = torch.autograd.grad(soft, student)
        scaled.append(grad * t**2)
    # Times T**2, the gradient converges (to the centered logit difference / (N C)).
    centered = (student - student.mean(1, keepdim=True)) - (teacher - teacher.mean(1, keepdim=True))
    limit = centered.detach() / (64 * 10)
    errors = [(s - limit).norm() / limit.norm() for s in scaled]
    assert all(b < a / 1.8 for a, b in itertools.pairwise(errors))  # the error is O(1/T)
    assert errors[-1] < 0.02  # about 0.01 at T = 64


def test_distillation_loss_is_the_documented_mixture():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    y = torch.randint(10, (8,), generator=g)
    kl = F.kl_div(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1), reduction="batchmean")
    expected = 0.7 * 9 * kl + 0.3 * F.cross_entropy(s, y)
    torch.testing.assert_close(distillation_loss(s, t, y, temperature=3.0, alpha=0.7), expected)
    # No gradient flows into the teacher.
    t.requires_grad_()
    distillation_loss(s.requires_grad_(), t, y).backward()
    assert t.grad is None
    for kwargs, name in [({"temperature": 0.0}, "temperature"), ({"alpha": 1.5}, "alpha")]:
        with pytest.raises(ValueError, match=name):
            distillation_loss(s, t, y, **kwargs)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, t[:, :5], y)


def test_the_committed_results_are_complete(run):
    assert run["settings"] == SETTINGS
    assert (
        sorted(run["seeds"]) == sorted(str(s) for s in SETTINGS["seeds"]) and len(run["seeds"]) >= 3
    )
    for seed in run["seeds"].values():
        for model in MODELS:
            assert set(seed[model]) == {"accuracy", "nll", "ece"}
            assert 0.5 < seed[model]["accuracy"] <= 1 and 0 <= seed[model]["ece"] < 1
    assert run["torch"] == torch.__version__


@pytest.mark.slow
def test_rerunning_seed_0_reproduces_the_committed_numbers_exactly(run):
    assert run_seed(0) == run["seeds"]["0"]


@pytest.mark.slow
def test_the_seed_0_teacher_classifies_all_its_training_data_correctly():
    # The soft targets are the teacher's outputs on this same training data (run_seed).
    torch.set_num_threads(1)
    x_train, _, y_train, _ = digits_split()
    torch.manual_seed(0)
    teacher = train(
        mlp(SETTINGS["teacher_hidden"]),
        x_train,
        y_train,
        lambda out, y, rows: F.cross_entropy(out, y),
        seed=0,
    )
    with torch.no_grad():
        soft = (teacher(x_train) / SETTINGS["temperature"]).softmax(dim=1)
    assert torch.equal(soft.argmax(dim=1), y_train)


def test_the_pages_quote_the_settings_of_the_committed_run(run):
    from tests.support.pages import DOCS

    s = run["settings"]
    ja = (DOCS / "scale" / "distillation.md").read_text(encoding="utf-8")
    en = (DOCS / "scale" / "distillation.en.md").read_text(encoding="utf-8")
    for phrase in [
        f"隠れ層 {s['teacher_hidden']} ユニット", f"隠れ層 {s['student_hidden']} ユニット",
        f"$T = {s['temperature']:g}$、$\\alpha = {s['alpha']:g}$", f"学習率 {s['lr']:g}",
        f"ミニバッチの大きさ {s['batch_size']}、{s['epochs']} エポック",
        f"{s['ece_bins']} 個の等幅のビン",
        f"シードは {len(s['seeds'])} つ",
    ]:  # fmt: skip
        assert phrase in ja, phrase
    for phrase in [
        f"{s['teacher_hidden']} hidden units", f"{s['student_hidden']} hidden units",
        f"$T = {s['temperature']:g}$, $\\alpha = {s['alpha']:g}$", f"learning rate {s['lr']:g}",
        f"mini-batches of {s['batch_size']}, {s['epochs']} epochs",
        f"{s['ece_bins']} equal-width bins",
        f"There are {NUMBERS[len(s['seeds'])]} seeds",
    ]:  # fmt: skip
        assert phrase in en, phrase


def test_what_the_page_reads_from_the_results(run):
    seeds = list(run["seeds"].values())

    def mean(model, metric):
        return sum(s[model][metric] for s in seeds) / len(seeds)

    # "about unchanged": the mean test accuracies differ by less than one test image in 450.
    assert abs(mean("student_distilled", "accuracy") - mean("student_labels", "accuracy")) < 1 / 450
    wins = sum(s["student_distilled"]["accuracy"] > s["student_labels"]["accuracy"] for s in seeds)
    losses = sum(
        s["student_distilled"]["accuracy"] < s["student_labels"]["accuracy"] for s in seeds
    )
    assert wins >= 1 and losses >= 1  # up for some seeds, down for others
    assert mean("student_distilled", "nll") > mean("student_labels", "nll")
    assert mean("student_distilled", "ece") > mean("student_labels", "ece")
    assert mean("teacher", "accuracy") > max(mean(m, "accuracy") for m in MODELS[1:])
