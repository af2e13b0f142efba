"""The speed benchmark: snippets/losses/benchmark.py, its committed results, and the table of
docs/losses/index.md. Timings are never asserted here: the benchmark script measures them."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from losses.focal import focal_loss
from losses.loss_properties import make_batch, run_sections
from site_pages import ROOT, SNIPPETS

SCRIPT = SNIPPETS / "losses" / "benchmark.py"
RESULTS = SNIPPETS / "losses" / "benchmark_results.json"
REQUIRED = {
    "cross_entropy",
    "focal_loss",
    "poly1_cross_entropy",
    "logit_adjusted_cross_entropy",
    "kornia_focal_loss",
}


def structure(value):
    """The shape of a JSON document: its keys and the kinds of its values, not the numbers."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(item) for item in value]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


@pytest.fixture(scope="module")
def committed():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_committed_results_cover_every_required_loss(committed):
    assert REQUIRED <= set(committed["results"])
    assert committed["reference"] == "cross_entropy"
    assert committed["results"]["cross_entropy"]["ratio_to_cross_entropy"] == 1.0
    for name, row in committed["results"].items():
        assert row["median_ms"] > 0, name
        assert row["ratio_to_cross_entropy"] > 0, name
    assert committed["focal_loss_vs_kornia_focal_loss"] > 0
    assert committed["validation"]["ratio_to_cross_entropy"] > 0
    for name in ("focal_loss", "poly1_cross_entropy", "logit_adjusted_cross_entropy"):
        assert committed["results"][name]["max_ratio"] == 1.2


def test_committed_results_were_measured_as_the_chapter_requires(committed):
    settings, machine = committed["settings"], committed["machine"]
    assert (settings["n"], settings["c"], settings["dtype"]) == (4096, 1000, "float32")
    assert settings["repeats"] >= 20
    assert machine["threads"] == 1
    assert machine["cpu"]
    # Rerun the benchmark when torch changes: the numbers belong to one version.
    assert machine["torch"] == torch.__version__


def test_short_run_writes_the_same_structure(committed, tmp_path):
    output = tmp_path / "tmp.json"
    arguments = ["--n", "64", "--c", "10", "--repeats", "3", "--warmup", "1", "--output", output]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads(output.read_text(encoding="utf-8"))
    assert structure(fresh) == structure(committed)
    assert list(fresh["results"]) == list(committed["results"])
    assert fresh["settings"]["n"] == 64 and fresh["settings"]["repeats"] == 3


def test_index_page_table_shows_every_result(committed, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the page runs the section from the repository root
    run_sections(SNIPPETS / "losses" / "index.py", "benchmark_table")
    table = capsys.readouterr().out
    for name in committed["results"]:
        assert f"| `{name}` |" in table
    assert "`focal_loss` / `kornia_focal_loss`" in table


# ---- what the page says about kornia's focal loss ----------------------------------------


def test_kornia_mean_divides_by_n_times_c_and_counts_ignored_elements():
    kornia = pytest.importorskip("kornia")
    logits, target = make_batch(6, 4, dtype=torch.float32)
    kornia_mean = kornia.losses.focal_loss(logits, target, alpha=None, gamma=0.0, reduction="mean")
    # gamma = 0: kornia's "mean" is cross-entropy divided by the number of classes C
    torch.testing.assert_close(kornia_mean, F.cross_entropy(logits, target) / 4)
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target)
    )
    # an ignored element still counts in kornia's denominator, not in F.cross_entropy's
    target[0] = -100
    kornia_mean = kornia.losses.focal_loss(logits, target, alpha=None, gamma=0.0, reduction="mean")
    ce_sum = F.cross_entropy(logits, target, reduction="sum")
    torch.testing.assert_close(kornia_mean, ce_sum / (6 * 4))
    torch.testing.assert_close(focal_loss(logits, target, gamma=0.0), ce_sum / 5)


def test_kornia_sum_and_gamma_agree_with_focal_loss():
    kornia = pytest.importorskip("kornia")
    logits, target = make_batch(6, 4, dtype=torch.float32, scale=3.0)
    for gamma in (0.5, 2.0):
        torch.testing.assert_close(
            kornia.losses.focal_loss(logits, target, alpha=None, gamma=gamma, reduction="sum"),
            focal_loss(logits, target, gamma=gamma, reduction="sum"),
        )


def test_kornia_alpha_weights_class_zero_by_one_minus_alpha():
    kornia = pytest.importorskip("kornia")
    logits, target = make_batch(6, 4, dtype=torch.float32, scale=3.0)
    weight = torch.tensor([0.75, 0.25, 0.25, 0.25])  # alpha=0.25: class 0 gets 1 - alpha
    torch.testing.assert_close(
        kornia.losses.focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum"),
        focal_loss(logits, target, gamma=2.0, weight=weight, reduction="sum"),
    )
