"""The custom-losses chapter's overview page: the speed table, read from the committed results
of snippets/losses/benchmark.py (snippets/losses/benchmark_results.json)."""

import os
from pathlib import Path

# The page runs the section below from the repository root, where mkdocs builds the site.
# Run alone from any folder, this file moves there first, so the same relative path works.
os.chdir(Path(__file__).resolve().parents[2])

# --8<-- [start:benchmark_table]
import json  # noqa: E402 (the page runs this section alone)
from pathlib import Path  # noqa: E402

results_file = Path("snippets/losses/benchmark_results.json")
report = json.loads(results_file.read_text(encoding="utf-8"))

machine, settings = report["machine"], report["settings"]
print("| CPU | torch | threads | N × C | dtype | rounds | timed calls per round |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print(
    f"| {machine['cpu']} | {machine['torch']} | {machine['threads']} "
    f"| {settings['n']} × {settings['c']} | {settings['dtype']} | {settings['repeats']} "
    f"| {settings['calls']} |"
)
print()
print("| loss | ms (median) | ms (min) | × `cross_entropy` | target |")
print("| --- | ---: | ---: | ---: | --- |")
for name, row in report["results"].items():
    limit = row["max_ratio"]
    if name == report["reference"]:
        target = "="
    elif limit is None:
        target = ""
    else:
        target = f"≤ {limit} {'✓' if row['ratio_to_cross_entropy'] <= limit else '✗'}"
    print(
        f"| `{name}` | {row['median_ms']:.1f} | {row['min_ms']:.1f} "
        f"| {row['ratio_to_cross_entropy']:.2f} | {target} |"
    )
vs_kornia = report["focal_loss_vs_kornia_focal_loss"]
if vs_kornia is not None:
    mark = "✓" if vs_kornia <= 1.0 else "✗"
    print(f"| `focal_loss` / `kornia_focal_loss` | | | {vs_kornia:.2f} | ≤ 1.0 {mark} |")
validation = report["validation"]
print(
    f"| input checks alone | {validation['median_ms']:.2f} | "
    f"| {validation['ratio_to_cross_entropy']:.3f} | |"
)
# --8<-- [end:benchmark_table]
