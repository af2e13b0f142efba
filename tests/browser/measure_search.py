"""Measure a built site's search on the query set, in Chromium: where the answering page
ranks, whether the ways of entering a query agree, how long the first results take, what the
search downloads.

    .venv/bin/python tests/browser/measure_search.py SITE_DIR --design NAME --out FILE.json

Run it under the shared lock (`flock /tmp/heavy.lock ...`). It serves SITE_DIR on 127.0.0.1,
sends every request to another host to a proxy that does not exist (and records it), and
enters each query of tests/browser/search_queries.yml in every mode of search_driver.MODES.
"""

import argparse
import functools
import http.server
import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from tests.browser import chromium as setup  # the screens, pages and server of the visits
from tests.browser.search_driver import MODES, SearchBox, dump, load_queries, search_bytes
from tests.support.pages import LANGUAGES

BLACKHOLE_PROXY, CHROMIUM = setup.BLACKHOLE_PROXY, setup.CHROMIUM
CHROMIUM_ARGS = setup.CHROMIUM_ARGS
DESKTOP, PHONE, _QuietHandler = setup.DESKTOP, setup.PHONE, setup._QuietHandler


def serve(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("site", type=Path)
    parser.add_argument("--design", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--only", default="", help="only the queries containing this text")
    parser.add_argument("--throttle", type=float, default=1, help="CPU slowdown for phone mode")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    queries = [q for q in load_queries() if args.only in q.query]
    server, base_url = serve(args.site)
    result = {"design": args.design, "throttle": args.throttle, "queries": {}, "bytes": {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, proxy=BLACKHOLE_PROXY
        )
        for mode in args.modes.split(","):
            screen = PHONE if mode == "phone" else DESKTOP
            context = setup.new_context(browser, screen, base_url)
            for language in LANGUAGES:
                rows = [q for q in queries if q.language == language]
                if not rows:
                    continue
                throttle = args.throttle if mode == "phone" else 1
                box = SearchBox(context, base_url, rows[0].root, mode, cpu_throttle=throttle)
                for query in rows:
                    answer = box.search(query.query)
                    entry = result["queries"].setdefault(
                        query.id,
                        {
                            "language": language,
                            "query": query.query,
                            "expected": query.expected,
                            "first": query.first,
                            "kind": query.kind,
                            "modes": {},
                        },
                    )
                    entry["modes"][mode] = answer.__dict__
                    pages = answer.pages
                    rank = pages.index(query.expected) + 1 if query.expected in pages else None
                    print(
                        f"{mode:5} {language} {rank!s:>4} {answer.first_ms!s:>7} ms  {query.query}"
                        f"  | {answer.value!r} {answer.meta!r} {answer.pages[:3]}",
                        flush=True,
                    )
                result["bytes"][f"{mode}:{language}"] = search_bytes(box.requests)
                result.setdefault("external", []).extend(box.external)
                result.setdefault("errors", []).extend(box.errors)
                box.close()
            context.close()
        browser.close()
    server.shutdown()
    summarize(result)
    dump(args.out, result)


def summarize(result: dict) -> None:
    summary = {}
    for language in LANGUAGES:
        entries = [e for e in result["queries"].values() if e["language"] == language]
        modes = sorted({m for e in entries for m in e["modes"]})
        row = {"queries": len(entries)}
        for mode in modes:
            ranks = []
            for e in entries:
                pages = e["modes"][mode]["pages"]
                ranks.append(pages.index(e["expected"]) + 1 if e["expected"] in pages else None)
            row[f"{mode}_top3"] = sum(1 for r in ranks if r and r <= 3)
            row[f"{mode}_first_terms"] = sum(
                1 for e, r in zip(entries, ranks, strict=True) if e["first"] and r == 1
            )
            times = [e["modes"][mode]["first_ms"] for e in entries if e["modes"][mode]["first_ms"]]
            if times:
                row[f"{mode}_ms_median"] = statistics.median(times)
                row[f"{mode}_ms_max"] = max(times)
        row["terms"] = sum(1 for e in entries if e["first"])
        if len(modes) > 1:
            row["modes_agree"] = sum(
                1 for e in entries if len({tuple(e["modes"][m]["pages"]) for m in modes}) == 1
            )
        summary[language] = row
    result["summary"] = summary
    for language, row in summary.items():
        print(language, row)
    for key, files in result["bytes"].items():
        print(key, sum(files.values()), "bytes in", len(files), "files")
    print("external requests:", result.get("external"))
    print("console errors:", result.get("errors"))


if __name__ == "__main__":
    main()
