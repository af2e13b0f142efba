"""snippets/scale/benchmark.py and its committed results (benchmark_results.json).

Memory and time are measured by the benchmark, never by a timed test. These tests check that the
committed file is complete and consistent, so that the tables on the page are honest, and that
the page's sentences about the numbers hold for the committed numbers.
"""

import json
import statistics
import subprocess
import sys

import pytest

from tests.support.pages import SNIPPETS

RESULTS = SNIPPETS / "scale" / "benchmark_results.json"
SCRIPT = SNIPPETS / "scale" / "benchmark.py"
WAYS = ["naive", "chunked", "torch_reference", "torch_chunked", "torch_chunked_auto"]


@pytest.fixture(scope="module")
def bench():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def peak(bench, vocab, dtype, way):
    (row,) = [
        r for r in bench["memory"] if (r["vocab"], r["dtype"], r["way"]) == (vocab, dtype, way)
    ]
    return row["peak_bytes"]


def timing(bench, vocab, way):
    (row,) = [r for r in bench["time"] if (r["vocab"], r["way"]) == (vocab, way)]
    return row


def test_the_results_cover_every_way_dtype_and_two_vocabulary_sizes(bench):
    assert bench["device"] == "cpu" and bench["threads"] == 1
    assert bench["repeats"] >= 5
    vocabs = sorted({r["vocab"] for r in bench["memory"]})
    assert len(vocabs) >= 2 and vocabs[-1] >= 4 * vocabs[0]
    for vocab in vocabs:
        for dtype in ("float32", "bfloat16"):
            for way in WAYS:
                assert peak(bench, vocab, dtype, way) > 0
        for way in WAYS:
            assert len(timing(bench, vocab, way)["seconds"]) == bench["repeats"]


def test_each_memory_row_was_a_fresh_process_measured_from_the_rss_before_the_call(bench):
    for row in bench["memory"]:
        assert row["method"] == "ru_maxrss - RSS before"
        # In a fresh process the high-water mark before the call is close to the RSS then, so
        # the peak of the call is not hidden by an earlier one.
        assert row["maxrss_before_bytes"] <= row["rss_before_bytes"] + 64 * 2**20


def test_the_naive_peak_stays_under_8_gb(bench):
    assert max(r["peak_bytes"] for r in bench["memory"]) < 8 * 10**9


def test_the_medians_and_ratios_are_those_of_the_recorded_rounds(bench):
    vocabs = {r["vocab"] for r in bench["time"]}
    for vocab in vocabs:
        naive = timing(bench, vocab, "naive")["seconds"]
        for way in WAYS:
            row = timing(bench, vocab, way)
            assert row["median_seconds"] == statistics.median(row["seconds"])
            ratios = [s / n for s, n in zip(row["seconds"], naive, strict=True)]
            assert row["median_ratio_to_naive"] == statistics.median(ratios)


def test_every_way_computed_the_same_loss(bench):
    for row in bench["time"]:
        naive = timing(bench, row["vocab"], "naive")["loss"]
        assert abs(row["loss"] - naive) <= 1e-5 * abs(naive)


def test_the_cuda_option_refuses_to_run_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    output = tmp_path / "cuda.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "CUDA is not available" in done.stderr
    assert not output.exists()


def test_the_pages_quote_the_settings_of_the_committed_run(bench):
    from tests.support.pages import DOCS

    vocabs = sorted({r["vocab"] for r in bench["memory"]})
    ja = (DOCS / "scale" / "large_vocabulary.md").read_text(encoding="utf-8")
    en = (DOCS / "scale" / "large_vocabulary.en.md").read_text(encoding="utf-8")
    assert f"$N = {bench['n']}$、$H = {bench['h']}$、$V$ は {vocabs[0]} と {vocabs[1]} です" in ja
    assert f"$N = {bench['n']}$, $H = {bench['h']}$, $V$ of {vocabs[0]} and {vocabs[1]}" in en
    # The sizes at which a plain LinearCrossEntropyOptions() gives chunks of one row (checked in
    # test_large_vocabulary.py at these sizes).
    assert f"（$N = {bench['n']}$、$H = {bench['h']}$、$V$ = {vocabs[0]} と {vocabs[1]}）" in ja
    assert f"($N = {bench['n']}$, $H = {bench['h']}$, $V$ = {vocabs[0]} and {vocabs[1]})" in en
    assert bench["threads"] == 1 and "スレッドは 1 つ" in ja and "one PyTorch thread" in en
    assert bench["repeats"] == 5 and "5 回繰り返します" in ja and "five times after" in en


def test_what_the_page_reads_from_the_measurements(bench):
    vocabs = sorted({r["vocab"] for r in bench["memory"]})
    for vocab in vocabs:
        one_tensor = bench["n"] * vocab * 4
        naive = peak(bench, vocab, "float32", "naive")
        assert 2.7 * one_tensor <= naive <= 3.3 * one_tensor  # "about three"
        reference = peak(bench, vocab, "float32", "torch_reference")
        assert abs(reference - naive) <= 0.05 * naive
        for dtype in ("float32", "bfloat16"):
            assert peak(bench, vocab, dtype, "chunked") < peak(bench, vocab, dtype, "naive")
        fp32 = peak(bench, vocab, "float32", "chunked") / naive
        bf16 = peak(bench, vocab, "bfloat16", "chunked") / peak(bench, vocab, "bfloat16", "naive")
        assert bf16 > fp32  # the chunked version saves a smaller share in bfloat16
        # "faster" (the page's section on the function says so too, despite its extra product)
        assert timing(bench, vocab, "chunked")["median_ratio_to_naive"] < 1  # goal 1.3
        torch_chunked = timing(bench, vocab, "torch_chunked")["median_ratio_to_naive"]
        assert torch_chunked < timing(bench, vocab, "chunked")["median_ratio_to_naive"]
        assert timing(bench, vocab, "torch_chunked_auto")["median_ratio_to_naive"] > 2
    smallest, largest = vocabs[0], vocabs[-1]
    ratio = peak(bench, smallest, "float32", "chunked") / peak(bench, smallest, "float32", "naive")
    assert 0.28 <= ratio <= 0.38  # "about 1/3"
    assert peak(bench, smallest, "float32", "chunked") > peak(
        bench, smallest, "float32", "torch_chunked"
    )
    assert (
        peak(bench, largest, "float32", "chunked") <= peak(bench, largest, "float32", "naive") / 8
    )
