"""The custom-losses chapter's overview page: the speed tables, read from the committed results
of snippets/losses/benchmark.py (benchmark_results.json, and benchmark_results_cuda.json when a
GPU run has written it)."""

import os
from pathlib import Path

# The page runs the section below from the repository root, where mkdocs builds the site.
# Run alone from any folder, this file moves there first, so the same relative path works.
os.chdir(Path(__file__).resolve().parents[2])

# --8<-- [start:benchmark_table]
import json  # noqa: E402 (the page runs this section alone)
from pathlib import Path  # noqa: E402


def mark(value, limit):
    return f"{value:.2f} {'✓' if value <= limit else '✗'}"


def print_tables(report):
    machine, settings, goals = report["machine"], report["settings"], report["goals"]
    print(f"**{settings['device']}**: {machine['device']}, torch {machine['torch']}, ", end="")
    print(f"{machine['threads']} thread(s), {settings['dtype']}, ", end="")
    print(f"median of {settings['repeats']} rounds of {settings['calls']} calls")
    print()
    for size in report["sizes"]:
        print(f"N × C = {size['n']} × {size['c']}")
        print()
        print(
            "| loss | eager ms | eager × CE | compiled ms | compiled × compiled CE "
            "| compiled × eager |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, row in size["results"].items():
            goal = name in goals["losses"]
            eager = (
                mark(row["eager_ratio"], goals["eager"]) if goal else f"{row['eager_ratio']:.2f}"
            )
            cells = [f"`{name}`", f"{row['eager_ms']:.3f}", eager]
            if "compiled_ms" in row:
                compiled = row["compiled_ratio"]
                cells += [
                    f"{row['compiled_ms']:.3f}",
                    mark(compiled, goals["compiled"]) if goal else f"{compiled:.2f}",
                    mark(row["compiled_over_eager"], 1.0)
                    if goal
                    else f"{row['compiled_over_eager']:.2f}",
                ]
            else:
                cells += ["", "", ""]
            print("| " + " | ".join(cells) + " |")
        print()


for name in ("benchmark_results.json", "benchmark_results_cuda.json"):
    results_file = Path("snippets/losses") / name
    if results_file.exists():  # the CUDA file exists only after a run on a GPU
        print_tables(json.loads(results_file.read_text(encoding="utf-8")))
# --8<-- [end:benchmark_table]
