"""The contributor page's build times, read from the committed results of
snippets/contributing/build_benchmark.py (build_benchmark.json)."""

import os
from pathlib import Path

# The page runs the section below from the repository root, where mkdocs builds the site.
# Run alone from any folder, this file moves there first, so the same relative path works.
os.chdir(Path(__file__).resolve().parents[2])

# --8<-- [start:build_times]
import json  # noqa: E402 (the page runs this section alone)
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402


def slowest_pages(report, cache="on", count=6):
    """Pages by their median seconds of executing code over the rounds of one kind of build."""
    rounds = report["executing_s"][cache]
    pages = {page for spent in rounds for page in spent}
    medians = {page: statistics.median(spent.get(page, 0.0) for spent in rounds) for page in pages}
    return sorted(medians.items(), key=lambda item: -item[1])[:count]


def print_build_times(report):
    machine = report["machine"]
    print(
        f"{machine['cores']} cores, Python {machine['python']}, torch {machine['torch']}, "
        f"{report['date']}, {report['rounds']} rounds"
    )
    print()
    print("| `EXECUTION_CACHE` | s | median s |")
    print("| --- | --- | ---: |")
    for cache, times in report["cold_build_s"].items():
        rounds = ", ".join(f"{t:.1f}" for t in times)
        print(f"| `{cache}` | {rounds} | {report['cold_build_median_s'][cache]:.1f} |")
    print()
    print(f"`on` / `off` = {report['ratio_on_to_off']:.2f}")
    print()
    print("| `EXECUTION_CACHE=on` | s |")
    print("| --- | ---: |")
    for page, seconds in slowest_pages(report):
        print(f"| `{page}` | {seconds:.1f} |")
    print()
    serve = report["serve"]
    print("| `mkdocs serve` | s | |")
    print("| --- | ---: | --- |")
    print(f"| `first build` | {serve['first_build_s']:.1f} | |")
    for edit in ("prose_edit", "snippet_edit"):
        pages = ", ".join(f"`{p}`" for p in serve[f"{edit}_executed_pages"]) or "—"
        print(f"| `{edit}` | {serve[f'{edit}_s']:.1f} | {pages} |")


results_file = Path("snippets/contributing/build_benchmark.json")
if results_file.exists():  # written by build_benchmark.py on an otherwise idle machine
    print_build_times(json.loads(results_file.read_text(encoding="utf-8")))
# --8<-- [end:build_times]
