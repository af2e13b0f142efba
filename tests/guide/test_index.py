"""The claims of the decision guide (docs/guide/index.md and index.en.md) hold in the committed
results, and its diagram is built from them.

Each claim test quotes the English sentence it checks; the Japanese page states the same facts.
If the results are regenerated (a new PyTorch, a changed loss) and a claim no longer holds,
its test fails: then rewrite the sentence in both languages, not the test.
"""

import contextlib
import io
import re
import runpy
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from experiments import compare_losses as cl
from guide import loss_comparison as lc
from site_pages import DOCS, SNIPPETS

PAGES = [DOCS / "guide" / "index.md", DOCS / "guide" / "index.en.md"]
R = lc.load()
N = len(lc.seeds(R))


def every_seed(regime, loss, metric):
    """The loss did strictly better than CE on this metric in every seed."""
    return lc.wins(R, regime, loss, metric) == N


def worse_in_every_seed(regime, loss, metric):
    a, b = lc.values(R, regime, loss, metric), lc.values(R, regime, "ce", metric)
    return bool(np.all(a > b) if metric in lc.LOWER_IS_BETTER else np.all(a < b))


def mean_curve(regime, loss):
    runs = [r for r in R["runs"] if r["regime"] == regime and r["loss"] == loss]
    return np.mean([r["test_accuracy_curve"] for r in runs], axis=0)


def recall_by_rank(regime, loss):
    """Mean test recall of the classes ordered from most to least frequent in training."""
    rows = []
    for r in (r for r in R["runs"] if r["regime"] == regime and r["loss"] == loss):
        order = np.argsort(r["train_class_counts"], kind="stable")[::-1]
        rows.append(np.asarray(r["per_class_recall"])[order])
    return np.mean(rows, axis=0)


def confidence_gap(regime, loss):
    """Mean confidence minus accuracy over all test images: < 0 means underconfident."""
    pooled = lc.pooled_reliability(R, regime, loss)
    filled = pooled["count"] > 0
    weights = pooled["count"][filled] / pooled["count"].sum()
    return float(weights @ (pooled["confidence"][filled] - pooled["accuracy"][filled]))


# The setup as the introduction states it -------------------------------------------------------


def test_intro_ten_losses_one_post_hoc_correction_three_regimes_five_seeds():
    """ "ten losses and one post-hoc correction ... three training regimes (balanced,
    long-tailed, 40% of the labels wrong) and five seeds"."""
    assert len(cl.LOSSES) - len(cl.POSTHOC) == 10 and len(cl.POSTHOC) == 1
    assert cl.REGIMES == ("balanced", "long_tailed", "noisy")
    assert cl.CONFIG["noise_rate"] == 0.4
    assert N == 5 and lc.seeds(R) == cl.CONFIG["seeds"]


def test_imbalanced_profile_from_100_images_down_to_one():
    """ "from 100 images of the most frequent class down to one of the rarest (imbalance ratio
    100)"."""
    for run in (r for r in R["runs"] if r["regime"] == "long_tailed"):
        counts = sorted(run["train_class_counts"])
        assert counts[-1] == 100 and counts[0] == 1
    assert cl.CONFIG["imbalance_ratio"] == 100


def test_noisy_regime_has_clean_test_labels_and_balanced_test_split():
    """ "40% of the training labels were moved to a random wrong class, and the test labels were
    clean" / "the test split stayed balanced"."""
    for regime in cl.REGIMES:
        _, test, _ = cl.split_indices(regime, 0)
        _, _, _, y_test, _ = cl.make_split(regime, 0)
        assert np.array_equal(y_test, cl.load_digits().target[test])
        assert len(set(np.bincount(y_test))) == 1


def test_multi_label_and_embedding_losses_are_not_in_the_experiment():
    """ "The experiment below does not cover this case" (Q1, Q2)."""
    assert not {"bce", "bce_with_logits", "margin", "nca", "arcface", "cosface"} & set(cl.LOSSES)


# Q3: noisy labels ------------------------------------------------------------------------------


def test_gce_and_sce_beat_ce_accuracy_nll_and_ece_in_every_seed():
    """ "GCE and SCE beat cross-entropy's test accuracy in every seed, and also had lower NLL
    and ECE in every seed"."""
    for loss in ("gce", "sce"):
        for metric in ("accuracy", "nll", "ece"):
            assert every_seed("noisy", loss, metric), (loss, metric)


def test_gce_and_sce_fit_fewer_training_labels_than_ce():
    """ "They fit fewer of the training labels than cross-entropy did"."""
    ce = lc.mean(R, "noisy", "ce", "train_accuracy")
    for loss in ("gce", "sce"):
        assert lc.mean(R, "noisy", loss, "train_accuracy") < ce


def test_label_smoothing_helped_less_than_gce_and_sce_with_worse_ece():
    """ "Label smoothing also helped in every seed, but less than GCE and SCE, and its ECE was
    worse than cross-entropy's"."""
    assert every_seed("noisy", "label_smoothing", "accuracy")
    gain = lc.delta(R, "noisy", "label_smoothing", "accuracy")
    assert 0 < gain < min(lc.delta(R, "noisy", x, "accuracy") for x in ("gce", "sce"))
    assert lc.delta(R, "noisy", "label_smoothing", "ece") > 0


def test_focal_and_poly1_had_lower_mean_accuracy_than_ce_with_noisy_labels():
    """ "Focal loss and Poly-1 did not help: their mean accuracy was below cross-entropy's"."""
    for loss in ("focal", "poly1"):
        assert lc.delta(R, "noisy", loss, "accuracy") < 0


def test_ce_peaks_early_then_falls_while_gce_and_sce_stay_near_their_best():
    """ "Cross-entropy's test accuracy peaks early and then falls as the network memorizes the
    wrong labels; GCE and SCE stay close to their best"."""
    ce = mean_curve("noisy", "ce")
    assert np.argmax(ce) < len(ce) / 3  # the peak is in the first third of training
    assert ce.max() - ce[-1] > 0.05
    for loss in ("gce", "sce"):
        curve = mean_curve("noisy", loss)
        assert curve.max() - curve[-1] < 0.02


def test_ce_at_its_best_step_stays_below_gce_and_sce_final_accuracy():
    """ "even at its best step, cross-entropy's mean accuracy stayed below the final accuracy of
    GCE and SCE"."""
    best_ce = mean_curve("noisy", "ce").max()
    for loss in ("gce", "sce"):
        assert best_ce < lc.mean(R, "noisy", loss, "accuracy")
        assert lc.mean(R, "noisy", loss, "accuracy") == pytest.approx(mean_curve("noisy", loss)[-1])


# Q4: imbalanced classes ------------------------------------------------------------------------

IMBALANCE_METHODS = ["weighted_ce", "class_balanced", "logit_adjusted", "posthoc_la", "ldam_drw"]


def test_every_imbalance_method_beats_ce_balanced_accuracy_and_macro_f1_in_every_seed():
    """ "Every method made for imbalance (...) raised balanced accuracy and macro-F1 above
    cross-entropy's in every seed"."""
    for loss in IMBALANCE_METHODS:
        for metric in ("balanced_accuracy", "macro_f1"):
            assert every_seed("long_tailed", loss, metric), (loss, metric)


def test_post_hoc_logit_adjustment_has_the_highest_mean_balanced_accuracy():
    """ "Post-hoc logit adjustment had the highest mean balanced accuracy of all losses"."""
    best = max(cl.LOSSES, key=lambda x: lc.mean(R, "long_tailed", x, "balanced_accuracy"))
    assert best == "posthoc_la"


def test_post_hoc_logit_adjustment_retrains_nothing():
    """ "without retraining anything": it is CE's model, CE's training time."""
    assert cl.POSTHOC == {"posthoc_la": "ce"}
    for regime in cl.REGIMES:
        for seed in lc.seeds(R):
            runs = {r["loss"]: r for r in R["runs"] if r["regime"] == regime and r["seed"] == seed}
            assert runs["posthoc_la"]["train_time_s"] == runs["ce"]["train_time_s"]


def test_label_smoothing_raised_balanced_accuracy_more_than_class_weights():
    """ "Label smoothing (...) also raised balanced accuracy in every seed, by more than either
    kind of class weights did"."""
    assert every_seed("long_tailed", "label_smoothing", "balanced_accuracy")
    gain = lc.delta(R, "long_tailed", "label_smoothing", "balanced_accuracy")
    for loss in ("weighted_ce", "class_balanced"):
        assert gain > lc.delta(R, "long_tailed", loss, "balanced_accuracy")


def test_focal_and_poly1_stay_within_001_of_ce_balanced_accuracy():
    """ "Focal loss and Poly-1 did not help: their mean balanced accuracy stayed within 0.01 of
    cross-entropy's"."""
    for loss in ("focal", "poly1"):
        assert abs(lc.delta(R, "long_tailed", loss, "balanced_accuracy")) < 0.01
        assert not lc.gained(R, "long_tailed", loss, "balanced_accuracy")


def test_gce_is_far_worse_than_ce_on_long_tailed_data():
    """ "GCE, made for noisy labels, was far worse than cross-entropy here"."""
    assert lc.delta(R, "long_tailed", "gce", "balanced_accuracy") < -0.1


def test_logit_adjustment_raises_rare_class_recall_at_a_small_cost_on_the_frequent_class():
    """ "Logit adjustment, as a loss or post hoc, raised the recall of the three rarest classes
    far above cross-entropy's, at a small cost on the most frequent class"."""
    ce = recall_by_rank("long_tailed", "ce")
    for loss in ("logit_adjusted", "posthoc_la"):
        recall = recall_by_rank("long_tailed", loss)
        assert np.all(recall[-3:] - ce[-3:] > 0.1), loss
        assert 0 < ce[0] - recall[0] < 0.05, loss


# Q5: calibration -------------------------------------------------------------------------------


def test_temperature_scaling_is_not_in_the_experiment():
    """ "The experiment did not include temperature scaling"."""
    assert not any("temperature" in f"{name} {label}".lower() for name, label in cl.LOSSES.items())


def test_label_smoothing_and_focal_have_higher_ece_than_ce_in_every_seed_on_balanced_data():
    """ "On balanced, clean data, label smoothing and focal loss had a higher ECE than
    cross-entropy in every seed" (and so "made it worse")."""
    for loss in ("label_smoothing", "focal"):
        assert worse_in_every_seed("balanced", loss, "ece"), loss


def test_label_smoothing_and_focal_are_underconfident_on_balanced_data():
    """ "their points lie above the diagonal, so they were underconfident"."""
    for loss in ("label_smoothing", "focal"):
        assert confidence_gap("balanced", loss) < 0, loss
        pooled = lc.pooled_reliability(R, "balanced", loss)
        filled = pooled["count"] > 0
        above = pooled["accuracy"][filled] > pooled["confidence"][filled]
        assert pooled["count"][filled][above].sum() > 0.9 * pooled["count"].sum()


def test_with_noisy_labels_ce_is_underconfident_and_gce_sce_have_the_lowest_ece():
    """ "With noisy labels, cross-entropy itself was underconfident, and GCE and SCE had the two
    lowest ECE values"."""
    assert confidence_gap("noisy", "ce") < 0
    ranked = sorted(cl.LOSSES, key=lambda x: lc.mean(R, "noisy", x, "ece"))
    assert set(ranked[:2]) == {"gce", "sce"}


def test_focal_has_the_lowest_ece_on_long_tailed_data_without_a_balanced_accuracy_gain():
    """ "In the long-tailed regime, focal loss had the lowest ECE of all, although its balanced
    accuracy stayed within 0.01 of cross-entropy's"."""
    assert min(cl.LOSSES, key=lambda x: lc.mean(R, "long_tailed", x, "ece")) == "focal"
    assert abs(lc.delta(R, "long_tailed", "focal", "balanced_accuracy")) < 0.01


# Balanced and clean ----------------------------------------------------------------------------


def test_only_label_smoothing_beats_ce_accuracy_by_001_on_balanced_data():
    """ "No loss beat cross-entropy's accuracy by as much as 0.01, except label smoothing"."""
    for loss in cl.LOSSES:
        gain = lc.delta(R, "balanced", loss, "accuracy")
        assert (gain >= 0.01) == (loss == "label_smoothing"), loss


def test_label_smoothing_gain_comes_with_worse_nll_and_ece_in_every_seed():
    """ "Label smoothing's gain came with a worse NLL and ECE in every seed"."""
    for metric in ("nll", "ece"):
        assert worse_in_every_seed("balanced", "label_smoothing", metric), metric


def test_no_gain_table_lists_every_loss_once_per_regime():
    """ "The table sorts every loss, in every regime, by whether it beat cross-entropy"."""
    rows = [
        line
        for line in lc.gain_table(R).splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert len(rows) == 1 + len(cl.REGIMES)
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        listed = [x.strip() for c in cells[2:] for x in c.split(", ") if x.strip() != "—"]
        assert sorted(listed) == sorted(label for k, label in R["losses"].items() if k != "ce")


# The diagram -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_code():
    """The guide's snippet, run as the site runs it; its printed output is kept."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        namespace = runpy.run_path(str(SNIPPETS / "guide" / "index.py"))
    return namespace, output.getvalue()


@pytest.fixture(scope="module")
def diagram(page_code):
    namespace, _ = page_code
    return namespace["flow_svg"](namespace["FLOW"], namespace["DEFAULT"])


def test_diagram_is_well_formed_svg_with_labelled_arrows(diagram):
    root = ET.fromstring(diagram)
    svg = root.find("{http://www.w3.org/2000/svg}svg")
    assert svg is not None and svg.find("{http://www.w3.org/2000/svg}title").text
    labels = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert labels.count("✓") == 5 and labels.count("✗") == 5


def test_diagram_holds_no_japanese_and_no_external_resource(diagram):
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", diagram)
    assert "http" not in diagram.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_diagram_questions_match_the_numbered_questions_of_both_pages(page_code):
    namespace, _ = page_code
    numbers = [node["q"] for node in namespace["FLOW"]]
    assert numbers == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    for page in PAGES:
        listed = re.findall(r"^\d\. \*\*(Q\d)", page.read_text(encoding="utf-8"), flags=re.M)
        assert listed == numbers, page.name


# Each branch's section, and the loss pages it must link to.
LOSS_PAGES = "../losses/"
BRANCH_LINKS = {
    "multi-label": ["../basics/binary_and_multilabel.md"],
    "embeddings": [
        LOSS_PAGES + p for p in ("margin.md", "neighbors.md", "large_margin_softmax.md")
    ],
    "noisy-labels": [LOSS_PAGES + "noisy_labels.md"],
    "imbalanced": [
        LOSS_PAGES + p
        for p in ("logit_adjustment.md", "class_balanced.md", "ldam.md", "focal.md", "poly.md")
    ],
    "calibration": [],
    "balanced-and-clean": [],
}


def sections(page):
    """{heading id: text up to the next level-2 heading}."""
    parts = re.split(r"^## .*\{#([\w-]+)\}\s*$", page.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_box_links_to_a_section_that_links_to_its_loss_pages(diagram, page):
    found = sections(page)
    targets = re.findall(r'<a href="#([\w-]+)">', diagram)
    assert set(targets) == set(BRANCH_LINKS)
    for anchor, links in BRANCH_LINKS.items():
        assert anchor in found, f"{page.name} has no section {{#{anchor}}}"
        for link in links:
            assert f"]({link})" in found[anchor], f"{page.name} #{anchor} does not link {link}"


def test_diagram_numbers_are_the_committed_means(page_code, diagram):
    namespace, _ = page_code
    text = " ".join(ET.fromstring(diagram).itertext())
    for node in [*namespace["FLOW"], namespace["DEFAULT"]]:
        for regime, metric, losses in node["evidence"]:
            for loss in ["ce", *losses]:
                value = f"{lc.mean(R, regime, loss, metric):.3f}".removeprefix("0")
                assert f"{lc.SHORT_NAMES[loss]} {value}" in text, (regime, metric, loss)


def test_page_code_prints_tables_and_plots(page_code):
    _, output = page_code
    assert output.startswith(lc.provenance(R))
    assert output.count('<div class="plot"><svg') == 3
    assert output.count("| loss |") == 4 and "| regime | metric |" in output
