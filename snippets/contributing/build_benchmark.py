"""How long a contributor waits: cold strict builds and mkdocs serve reloads.

Run from the repository root (takes about ten minutes on a 2-core machine):

    python snippets/contributing/build_benchmark.py

Cold builds alternate between the reference (EXECUTION_CACHE=off: every block of both languages
executed, as the site was built before the execution cache) and the normal build, so that both
see the same machine; the ratio of their medians is reported. Then `mkdocs serve` is started with
an empty cache, one line of prose and one line of a snippet are edited (and restored), and the
time until the served page shows the edit is measured, with the pages that executed code again.
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_suffix(".json")
PROSE_FILE, PROSE_PAGE = ROOT / "docs/glossary.md", "glossary/"
SNIPPET_FILE = ROOT / "snippets/basics/nll_vs_cross_entropy.py"
SNIPPET_PAGE = "basics/nll_vs_cross_entropy/"


EXECUTED = re.compile(r"execution_cache: (\S+): ([\d.]+) s exec")


def cold_build(cache: str) -> tuple[float, dict[str, float]]:
    """Seconds of one strict build with an empty cache, and the seconds each page executed code."""
    site = tempfile.mkdtemp(prefix="benchmark-site-")
    env = {**os.environ, "EXECUTION_CACHE": cache, "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-v", "-d", site],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mkdocs build --strict failed ({cache=}):\n{done.stderr[-4000:]}")
    shutil.rmtree(site)
    pages = {}
    for page, spent in EXECUTED.findall(done.stdout + done.stderr):
        pages[page] = pages.get(page, 0.0) + float(spent)
    return seconds, pages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, text: str, timeout: float = 600) -> float:
    """Seconds until the page at ``url`` contains ``text``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if text in urllib.request.urlopen(url, timeout=5).read().decode("utf-8"):
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} never showed {text!r}")


def with_marker(path: Path, marker: str) -> str:
    """The file with one line added: a comment in a page, a print in a snippet's first section."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        heading_end = text.index("\n") + 1
        return f"{text[:heading_end]}\n<!-- {marker} -->\n{text[heading_end:]}"
    first_print = re.search(r"^( *)print\(", text[text.index("# --8<-- [start:") :], re.M)
    at = text.index("# --8<-- [start:") + first_print.start()
    return f"{text[:at]}{first_print[1]}print({marker!r})\n{text[at:]}"


def executed_pages(log: Path, since: int) -> list[str]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[since:]
    return sorted({m[1] for line in lines if (m := EXECUTED.search(line))})


def serve_reloads() -> dict:
    """Reload times after a prose edit and after a snippet edit, on a warm `mkdocs serve`."""
    shutil.rmtree(ROOT / ".cache/execution", ignore_errors=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    command = [sys.executable, "-m", "mkdocs", "serve", "-v"]
    command += ["-a", f"127.0.0.1:{port}"]
    with log.open("w") as output:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MPLBACKEND": "Agg"},
        )
    results = {}
    try:
        results["first_build_s"] = wait_for(url + PROSE_PAGE, "</html>")
        time.sleep(2)
        for name, (path, page) in {
            "prose_edit": (PROSE_FILE, PROSE_PAGE),
            "snippet_edit": (SNIPPET_FILE, SNIPPET_PAGE),
        }.items():
            marker = f"benchmark-{name}-{int(time.time())}"
            since = len(log.read_text(encoding="utf-8", errors="replace").splitlines())
            original = path.read_text(encoding="utf-8")
            path.write_text(with_marker(path, marker), encoding="utf-8")
            try:
                results[f"{name}_s"] = wait_for(url + page, marker)
                time.sleep(3)  # the rebuild also writes the other pages
                results[f"{name}_executed_pages"] = executed_pages(log, since)
            finally:
                path.write_text(original, encoding="utf-8")
            wait_for(url + page, "</html>")
            time.sleep(5)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    builds = {"off": [], "on": []}
    executing = {"off": [], "on": []}
    for _ in range(args.rounds):
        for cache in builds:
            seconds, pages = cold_build(cache)
            builds[cache].append(seconds)
            executing[cache].append(pages)
            print(f"cold build, EXECUTION_CACHE={cache}: {seconds:.1f} s", flush=True)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "cold_build_s": builds,
        "cold_build_median_s": {c: statistics.median(t) for c, t in builds.items()},
        "executing_s": executing,
    }
    report["ratio_on_to_off"] = (
        report["cold_build_median_s"]["on"] / report["cold_build_median_s"]["off"]
    )
    report["serve"] = serve_reloads()
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
