"""The build times on the contributor page are the committed measurements of
snippets/contributing/build_benchmark.py, and the page's table is made from them."""

import json
import statistics

import pytest
from contributing import index as page
from contributing.build_benchmark import RESULTS, SNIPPET_FILE, SNIPPET_PAGE
from site_pages import DOCS, ROOT

REPORT = json.loads(RESULTS.read_text(encoding="utf-8"))


def test_medians_and_ratio_are_those_of_the_recorded_builds():
    builds = REPORT["cold_build_s"]
    assert set(builds) == {"off", "on"}
    for cache, times in builds.items():
        assert len(times) == REPORT["rounds"] >= 2  # each kind of build alternated, at least twice
        assert REPORT["cold_build_median_s"][cache] == statistics.median(times)
    ratio = statistics.median(builds["on"]) / statistics.median(builds["off"])
    assert REPORT["ratio_on_to_off"] == pytest.approx(ratio, rel=1e-12)


def test_every_page_with_code_executed_in_every_uncached_build():
    """With EXECUTION_CACHE=off both languages of a page execute: the log was parsed."""
    for spent in REPORT["executing_s"]["off"]:
        languages = {"en" if page.endswith(".en.md") else "ja" for page in spent}
        assert languages == {"ja", "en"} and len(spent) >= 10


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


def test_the_page_table_shows_the_recorded_medians(capsys):
    page.print_build_times(REPORT)
    shown = capsys.readouterr().out
    for cache, median in REPORT["cold_build_median_s"].items():
        assert f"| `{cache}` |" in shown and f"| {median:.1f} |" in shown
    assert f"{REPORT['ratio_on_to_off']:.2f}" in shown
    slowest = page.slowest_pages(REPORT)
    assert slowest == sorted(slowest, key=lambda item: -item[1])
    assert all(f"`{name}`" in shown for name, _ in slowest)
