"""The build times on the contributor page are the committed measurements of
snippets/contributing/build_benchmark.py, and the page's table is made from them."""

import json
import statistics
from pathlib import Path

import pytest
from contributing import index as page
from contributing.build_benchmark import RESULTS, SNIPPET_FILE, SNIPPET_PAGE

from tests.support.pages import DOCS, LANGUAGES, ROOT, language_of

REPORT = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else None
# The file is written by a run on an otherwise idle machine; until one is committed the page shows
# no table, and only the table code is tested (on a report made here).
measured = pytest.mark.skipif(REPORT is None, reason="no build_benchmark.json committed yet")


def example_report() -> dict:
    """A report in build_benchmark.py's format, with made-up times, for the table code."""
    builds = {"off": [200.0, 210.0, 190.0], "on": [110.0, 100.0, 120.0]}
    return {
        "machine": {"cpu": "x86_64", "cores": 2, "python": "3.11.7", "torch": "2.13.0"},
        "date": "2026-12-02",
        "rounds": 3,
        "cold_build_s": builds,
        "cold_build_median_s": {c: statistics.median(t) for c, t in builds.items()},
        "executing_s": {
            "off": [{"a.md": 3.0, "a.en.md": 3.0}] * 3,
            "on": [{"a.md": 3.0, "b.md": 5.0}, {"a.md": 4.0, "b.md": 1.0}, {"b.md": 2.0}],
        },
        "ratio_on_to_off": 110.0 / 200.0,
        "serve": {
            "first_build_s": 100.0,
            "prose_edit_s": 1.5,
            "prose_edit_executed_pages": [],
            "snippet_edit_s": 9.0,
            "snippet_edit_executed_pages": ["basics/x.md", "basics/x.en.md"],
        },
    }


@measured
def test_medians_and_ratio_are_those_of_the_recorded_builds():
    builds = REPORT["cold_build_s"]
    assert set(builds) == {"off", "on"}
    for cache, times in builds.items():
        assert len(times) == REPORT["rounds"] >= 2  # each kind of build alternated, at least twice
        assert REPORT["cold_build_median_s"][cache] == statistics.median(times)
    ratio = statistics.median(builds["on"]) / statistics.median(builds["off"])
    assert REPORT["ratio_on_to_off"] == pytest.approx(ratio, rel=1e-12)


@measured
def test_every_page_with_code_executed_in_every_uncached_build():
    """With EXECUTION_CACHE=off both languages of a page execute: the log was parsed."""
    for spent in REPORT["executing_s"]["off"]:
        languages = {language_of(Path(page)) for page in spent}
        assert languages == set(LANGUAGES) and len(spent) >= 10


@measured
def test_a_prose_edit_executed_nothing_and_a_snippet_edit_only_its_pages():
    serve = REPORT["serve"]
    assert serve["prose_edit_executed_pages"] == []
    name = SNIPPET_FILE.relative_to(ROOT / "snippets").as_posix()
    including = sorted(
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if name in path.read_text(encoding="utf-8")
    )
    executed = serve["snippet_edit_executed_pages"]
    assert executed and set(executed) <= set(including), (executed, including)
    assert any(p.startswith(SNIPPET_PAGE.rstrip("/")) for p in executed)


@pytest.mark.parametrize("source", ["example", "committed"])
def test_the_page_table_shows_the_medians_and_the_slowest_pages(capsys, source):
    report = example_report() if source == "example" else REPORT
    if report is None:
        pytest.skip("no build_benchmark.json committed yet")
    page.print_build_times(report)
    shown = capsys.readouterr().out
    for cache, median in report["cold_build_median_s"].items():
        assert f"| `{cache}` |" in shown and f"| {median:.1f} |" in shown
    assert f"{report['ratio_on_to_off']:.2f}" in shown
    slowest = page.slowest_pages(report)
    assert slowest == sorted(slowest, key=lambda item: -item[1])
    assert all(f"`{name}`" in shown for name, _ in slowest)
    if source == "example":  # medians over rounds, a page missing from a round counting 0
        assert slowest == [("a.md", 3.0), ("b.md", 2.0)]


def test_the_page_says_there_are_no_tables_exactly_while_no_results_are_committed():
    japanese = (DOCS / "contributing" / "index.md").read_text(encoding="utf-8")
    english = (DOCS / "contributing" / "index.en.md").read_text(encoding="utf-8")
    assert ("今は表がありません" in japanese) == (REPORT is None)
    assert ("so there are none now" in english) == (REPORT is None)
