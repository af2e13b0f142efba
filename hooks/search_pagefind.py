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

Each page also carries three metadata fields for ranking (data-pagefind-meta, weighed by
docs/assets/search.js through Pagefind's `metaWeights`): `names`, the glossary's names for the
identifiers its title names (the page of CrossEntropyLoss is the page of 交差エントロピー損失);
`keys`, its title and, for a section's first page, the section's title; `topics`, what its
sections treat: the glossary's names for the identifiers in its section headings, and the
navigation section. A query whose every word is in one of a page's fields
ranks that page above pages that merely use the words. Pagefind splits metadata at spaces only,
while the browser cuts a Japanese query into words with its own segmenter (Intl.Segmenter),
which differs from the one Pagefind indexes the text with (キャリブレーション is one word in the
index, キ, ャ, リ, ブ, レ, ー, ション in the query). So a Japanese run of these fields is
written as every suffix of it (交差エントロピー損失, 差エントロピー損失, …, 損失, 失): Pagefind
matches a query word with any indexed word that starts with it, so each word the browser cuts
from the run matches, whatever the cut.
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
# The attributes the metadata fields are read from.
NAMES, KEYS, TOPICS = "data-search-names", "data-search-keys", "data-search-topics"
JAPANESE_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f々〆ヵヶ]+")
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


def suffixes(text: str) -> list[str]:
    """The words of a metadata field for `text`: its space-separated words, and every suffix of
    each run of Japanese in it (see the module's docstring)."""
    words = []
    for word in text.split():
        words.append(word)
        for run in JAPANESE_RUN.finditer(word):
            run = run[0]
            words += [run[i:] for i in range(len(run)) if run[i:] != word]
    return list(dict.fromkeys(words))


def _heading_names(text: str, terms: dict[str, list[str]]) -> list[str]:
    found = []
    for identifier, names in terms.items():
        if re.search(rf"(?<!\w){re.escape(identifier)}(?!\w)", text):
            found += [n for n in names if n not in found]
    return found


def add_meta_keys(
    output: str, terms: dict[str, list[str]], section: str | None, first_of_section: bool
) -> str:
    """The `names`, `keys` and `topics` metadata fields, on the article's <h1>."""
    head, sep, body = output.partition('<article class="md-content__inner')
    if not sep:
        return output
    names, keys, topics = [], [], []
    for match in HEADING.finditer(body):
        text = " ".join(html.unescape(TAG.sub("", match[3])).replace("¶", " ").split())
        if match[1] == "1" and not keys:
            keys.append(text)
            names += _heading_names(text, terms)
        else:
            topics += _heading_names(text, terms)
    if not keys:
        return output
    if section:
        (keys if first_of_section else topics).append(section)
    fields = []
    for name, values in ((NAMES, names), (KEYS, keys), (TOPICS, topics)):
        words = suffixes(" ".join(values))
        if words:
            fields.append((name, html.escape(" ".join(words), quote=True)))
    meta = ", ".join(f"{name.removeprefix('data-search-')}[{name}]" for name, _ in fields)
    added = f' data-pagefind-meta="{meta}"' + "".join(f' {n}="{v}"' for n, v in fields)
    at = re.search(r"<h1\b[^>]*", body).end()
    return head + sep + body[:at] + added + body[at:]


def prepare(output: str, docs_dir: str, section: str | None, first_of_section: bool) -> str:
    terms = glossary_terms(docs_dir)
    output = add_heading_terms(weigh_headings(output), terms)
    output = add_meta_keys(output, terms, section, first_of_section)
    return add_section_title(output, section)


def on_post_page(output, page, config):
    section = page.parent.title if page.parent is not None else None
    first = page.parent is not None and page.parent.children[0] is page
    return prepare(output, config.docs_dir, section, first)


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
