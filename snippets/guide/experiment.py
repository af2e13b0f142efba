"""The experiment page (docs/guide/experiment.md): setup, full tables and plots, all read at build
time from the committed results of snippets/guide/experiment_run.py."""

# --8<-- [start:load]
import sys
from pathlib import Path

# experiment_report.py is in this file's folder, imported from the snippets root. The site runs
# this code from the repository root, where __file__ is not set.
here = Path(globals().get("__file__", "snippets/guide/experiment.py")).resolve().parent
sys.path.insert(0, str(here.parent))  # the snippets root
from guide import experiment_report as lc  # noqa: E402

results = lc.load()
print(lc.provenance(results))
trained = [r for r in results["runs"] if r["loss"] != "posthoc_la"]  # post-hoc LA reuses CE
print(f"CPU time of all training steps: {sum(r['train_time_s'] for r in trained):.0f} s")
print(lc.machine_text(results))
# --8<-- [end:load]

# --8<-- [start:setup]
print(lc.setup_text(results))
# --8<-- [end:setup]

# --8<-- [start:class_counts]
for regime in results["regimes"]:
    counts = [r["train_class_counts"] for r in results["runs"] if r["regime"] == regime]
    print(f"{regime:12s} n_c = {sorted(counts[0], reverse=True)}  (seed 0, sorted)")
# --8<-- [end:class_counts]

# --8<-- [start:balanced]
ALL = list(results["losses"])
METRICS = ["accuracy", "balanced_accuracy", "macro_f1", "nll", "ece", "train_time_s"]
print(lc.summary_table(results, "balanced", ALL, METRICS))
# --8<-- [end:balanced]

# --8<-- [start:long_tailed]
print(lc.summary_table(results, "long_tailed", ALL, METRICS))
# --8<-- [end:long_tailed]

# --8<-- [start:noisy]
print(lc.summary_table(results, "noisy", ALL, [*METRICS, "train_accuracy"]))
# --8<-- [end:noisy]

# --8<-- [start:deltas]
print(lc.delta_table(results, ALL[1:], lc.HEADLINE))
# --8<-- [end:deltas]

# --8<-- [start:temperature]
METRICS = ["temperature", "nll", "nll_ts", "ece", "ece_ts"]
for regime in results["regimes"]:
    print(f"**{lc.REGIME_LABELS[regime]}**\n")
    print(lc.summary_table(results, regime, ALL, METRICS), end="\n\n")
same = all(r["accuracy_ts"] == r["accuracy"] for r in results["runs"])
print(f"Accuracy after temperature scaling equals accuracy before it in every run: {same}")
# --8<-- [end:temperature]

# --8<-- [start:reliability_balanced]
LOSSES = ["ce", "label_smoothing", "focal", "poly1"]
print(lc.reliability_diagrams(results, "balanced", LOSSES, salt="balanced", with_ts=True))
# --8<-- [end:reliability_balanced]

# --8<-- [start:reliability_long_tailed]
LOSSES = ["ce", "weighted_ce", "logit_adjusted", "posthoc_la", "cosine_ce", "ldam_drw"]
print(lc.reliability_diagrams(results, "long_tailed", LOSSES, salt="long_tailed", with_ts=True))
# --8<-- [end:reliability_long_tailed]

# --8<-- [start:reliability_noisy]
LOSSES = ["ce", "label_smoothing", "gce", "sce"]
print(lc.reliability_diagrams(results, "noisy", LOSSES, salt="noisy", with_ts=True))
# --8<-- [end:reliability_noisy]

# --8<-- [start:recall]
LOSSES = ["ce", "weighted_ce", "class_balanced", "logit_adjusted", "posthoc_la", "cosine_ce"]
LOSSES += ["ldam_drw"]
print(lc.per_class_recall(results, "long_tailed", LOSSES, salt="recall"))
# --8<-- [end:recall]

# --8<-- [start:curves]
LOSSES = ["ce", "label_smoothing", "focal", "gce", "sce"]
print(lc.accuracy_curves(results, "noisy", LOSSES, salt="curves"))
# --8<-- [end:curves]
