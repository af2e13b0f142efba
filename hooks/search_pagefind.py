"""Build the site's search index with Pagefind, one index per language.

After every build (`mkdocs build`, and each rebuild of `mkdocs serve`), Pagefind reads the
built HTML pages and writes pagefind/ at the root of the site: an index for each language found
in the pages' <html lang> (ja at /, en at /en/), cut into chunks that the browser downloads on
demand, and the WebAssembly search engine. The extended Pagefind binary (the PyPI package
`pagefind[extended]`, pinned in requirements.txt) splits Japanese into words, both when it
indexes and, in the browser, when it reads the query. Nothing is fetched from the network,
at build or in the browser. docs/assets/search.js answers the header's search box with it.

Headings weigh more than text (HEADING_WEIGHTS). Only the article of a page is indexed (not
the navigation, which repeats every page title on every page), without code blocks, permalink
signs and the MathML copy of each formula.

A heading that names a PyTorch identifier listed in the glossary (docs/glossary.md, its
"PyTorch" column) is also indexed under the glossary's names for it, in both languages and with
the variants of the glossary's last column: "NLLLoss と CrossEntropyLoss" is found by
交差エントロピー損失, negative log-likelihood or ラベルスムージング for its label_smoothing
section. The names go into an attribute that Pagefind indexes (data-pagefind-index-attrs);
the page shows nothing more.
"""

import html
import logging
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.search_pagefind")

ROOT_SELECTOR = "article.md-content__inner"
EXCLUDE_SELECTORS = [
    "pre",  # code blocks: `import torch` is not what a reader searches for
    ".headerlink",
    ".md-content__button",
    ".katex-mathml",
    ".jp-InputPrompt",
    ".jp-OutputPrompt",
]
BUNDLE = "pagefind"
TERMS_ATTRIBUTE = "data-search-terms"
# A word in a page title counts ten times a word of the text, in a section heading seven times
# (Pagefind's own weights are 7 for <h1> and 6 for <h2>: a page that merely mentions a title's
# words often enough outranked the page with that title).
HEADING_WEIGHTS = {"1": 10, "2": 7, "3": 5}
# Identifiers of the glossary's PyTorch column too common to stand for one term.
GENERIC = {"target", "weight", "reduction", "margin", "long", "grad", "pos_weight", "nn"}
HEADING = re.compile(r"<h([1-3])\b([^>]*)>(.*?)</h\1>", re.S)
OPENING = re.compile(r"<h([1-3])\b(?![^>]*data-pagefind-weight)")
TAG = re.compile(r"<[^>]+>")
CODE = re.compile(r"`([^`]+)`")


def _names(cell: str) -> list[str]:
    """The names in a glossary cell: "A / B", "A（B）" -> A, B; "cross-entropy (loss)" ->
    cross-entropy, cross-entropy loss; markup and math left out."""
    cell = re.sub(r"\$[^$]*\$", " ", cell).replace("`", "")
    names = []
    for part in re.split(r"\s+/\s+|[、,]", cell):
        outside = re.sub(r"[（(][^）)]*[）)]", " ", part).strip()
        names.append(" ".join(outside.split()))
        for inside in re.findall(r"[（(]([^）)]*)[）)]", part):
            if inside.isascii() and " " not in inside.strip() and outside.isascii():
                names.append(f"{outside} {inside.strip()}")  # an optional word
            else:
                names.append(inside.strip())
    return [n for n in names if n]


def _rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 5 and not set(cells[0]) <= set("- "):
            rows.append(cells)
    return rows[1:]  # the header row


@cache
def glossary_terms(docs_dir: str) -> dict[str, list[str]]:
    """PyTorch identifier (its last component) -> the glossary's names for it."""
    terms: dict[str, list[str]] = {}
    for name in ("glossary.md", "glossary.en.md"):
        path = Path(docs_dir) / name
        if not path.is_file():
            continue
        for cells in _rows(path):
            names = _names(cells[0]) + _names(cells[1]) + _names(cells[4])
            for identifier in CODE.findall(cells[2]):
                key = identifier.split(".")[-1]
                if key in GENERIC:
                    continue
                known = terms.setdefault(key, [])
                known += [n for n in names if n not in known and n != key]
    return terms


def add_heading_terms(output: str, terms: dict[str, list[str]]) -> str:
    def enrich(match):
        text = html.unescape(TAG.sub("", match[3]))
        found = []
        for identifier, names in terms.items():
            if re.search(rf"(?<!\w){re.escape(identifier)}(?!\w)", text):
                found += [n for n in names if n not in found and n not in text]
        if not found or TERMS_ATTRIBUTE in match[2]:
            return match[0]
        value = html.escape(" / ".join(found), quote=True)
        attrs = f'{match[2]} data-pagefind-index-attrs="{TERMS_ATTRIBUTE}"'
        attrs += f' {TERMS_ATTRIBUTE}="{value}"'
        return f"<h{match[1]}{attrs}>{match[3]}</h{match[1]}>"

    head, sep, body = output.partition('<article class="md-content__inner')
    return head + sep + HEADING.sub(enrich, body) if sep else output


def weigh_headings(output: str) -> str:
    def weigh(match):
        return f'<h{match[1]} data-pagefind-weight="{HEADING_WEIGHTS[match[1]]}"'

    head, sep, body = output.partition('<article class="md-content__inner')
    return head + sep + OPENING.sub(weigh, body) if sep else output


def add_section_title(output: str, section: str | None) -> str:
    """The page title is also indexed under the navigation section the page sits in (the
    reader sees "損失関数の選び方" or "Choosing a loss" in the sidebar, not on the page)."""
    if not section:
        return output
    article = output.find('<article class="md-content__inner')
    match = re.search(r"<h1\b([^>]*)>", output[article:]) if article >= 0 else None
    if not match or section in html.unescape(TAG.sub("", output[article:])):
        return output
    start = article + match.start()
    opening = match[0]
    value = html.escape(section, quote=True)
    if TERMS_ATTRIBUTE in opening:
        new = re.sub(rf'{TERMS_ATTRIBUTE}="([^"]*)"', rf'{TERMS_ATTRIBUTE}="\1 / {value}"', opening)
    else:
        new = opening[:-1] + f' data-pagefind-index-attrs="{TERMS_ATTRIBUTE}"'
        new += f' {TERMS_ATTRIBUTE}="{value}">'
    return output[:start] + new + output[start + len(opening) :]


def on_post_page(output, page, config):
    output = add_heading_terms(weigh_headings(output), glossary_terms(config.docs_dir))
    section = page.parent.title if page.parent is not None else None
    return add_section_title(output, section)


def command(site_dir: Path) -> list[str]:
    args = [sys.executable, "-m", "pagefind", "--site", str(site_dir), "--quiet"]
    args += ["--output-subdir", BUNDLE, "--root-selector", ROOT_SELECTOR]
    args += ["--glob", "**/index.html"]  # every page (directory URLs); not 404.html
    for selector in EXCLUDE_SELECTORS:
        args += ["--exclude-selectors", selector]
    return args


@event_priority(-300)  # after mkdocs-static-i18n (-100) has built the other language
def on_post_build(config):
    site_dir = Path(config.site_dir)
    if not (site_dir / "index.html").is_file():
        return  # a language's own build inside mkdocs-static-i18n: the full site comes later
    done = subprocess.run(command(site_dir), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PluginError(
            f"pagefind failed (exit {done.returncode}) indexing {site_dir}:\n"
            f"{done.stdout}{done.stderr}"
        )
    for line in (done.stdout + done.stderr).splitlines():
        if line.strip():
            log.info("pagefind: %s", line.strip())
