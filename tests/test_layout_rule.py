"""The path rule: a page's path names its code and its tests.

    docs/<dir>/<name>.md  (and .en.md, .ipynb, .en.ipynb)
      <->  snippets/<dir>/<name>.py, snippets/<dir>/<name>_*.{py,json,csv}, snippets/<dir>/<name>/
      <->  tests/<dir>/test_<name>.py, tests/<dir>/test_<name>_*.py, tests/<dir>/<name>/

(<dir> may be empty: docs/index.md <-> snippets/index.py, docs/glossary.md <->
tests/test_glossary.py.) The tests below check it both ways: every page finds its snippet(s) and
its test(s); every snippet file and every test file under a page folder finds its page; every
file in snippets/ is used by the page it belongs to (included with pymdownx.snippets, linked as
a download, named in its text, or imported, run or read by a snippet or notebook that is).

The few real exceptions are the rows of EXCEPTIONS, each with its reason. A row that no longer
matches anything (the file is gone, or now follows the rule) fails the test too, so the table
cannot outgrow the repository.
"""

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.imports import imported_names
from tests.support.pages import DOCS, ROOT, SNIPPETS, is_english

TESTS = ROOT / "tests"


class Row(NamedTuple):
    paths: tuple[str, ...]  # relative to the repository root; a folder ends with "/"
    kind: str  # one of KINDS
    page: str | None  # the page the paths belong to (docs/...), when they belong to one
    reason: str


KINDS = {
    "no snippet": "a page without snippets/<dir>/<name>*",
    "no test": "a page without tests/<dir>/test_<name>*.py",
    "belongs to": "snippet or test files, named otherwise, that belong to `page`",
    "site-wide": "tests of every page, or of the machinery, not of one page",
}

# fmt: off
EXCEPTIONS: list[Row] = [
    Row(
        ("snippets/losses/benchmark.py", "snippets/losses/benchmark_results.json",
         "tests/losses/test_benchmark.py"),
        "belongs to", "docs/losses/index.md",
        "the chapter's benchmark of every loss: its results table is on the chapter's index page; "
        "a folder's benchmark is called benchmark.py, as the page's commands run it",
    ),
    Row(
        ("tests/losses/test_compile.py",),
        "belongs to", "docs/losses/writing_your_own.md",
        "the rule that page states (compiles with fullgraph=True, no host read), checked on "
        "every loss file of the chapter at once",
    ),
    Row(
        ("snippets/training/benchmark.py", "snippets/training/benchmark_results.json",
         "tests/training/test_benchmark.py", "snippets/training/seeds.py",
         "snippets/training/seeds_results.json", "tests/training/test_seeds.py"),
        "belongs to", "docs/training/index.md",
        "the training page's two measurements (speed, spread over seeds): scripts a reader runs "
        "by these names, and their committed results",
    ),
    Row(
        ("snippets/scale/benchmark.py", "snippets/scale/benchmark_results.json",
         "tests/scale/test_benchmark.py"),
        "belongs to", "docs/scale/large_vocabulary.md",
        "the large-vocabulary benchmark, offered as the download benchmark.py on that page",
    ),
    Row(
        ("snippets/distributed/ddp_check.py", "snippets/distributed/shutdown_stress.py",
         "snippets/distributed/shutdown_results.json"),
        "belongs to", "docs/distributed/global_loss.md",
        "scripts started in their own processes (2 gloo ranks; repeated torchrun runs), named "
        "on the page by these names, and the committed results of the shutdown runs",
    ),
    Row(
        ("snippets/contributing/build_benchmark.py",),
        "belongs to", "docs/contributing/index.md",
        "the build-speed benchmark the contributor page describes; it builds the whole site and "
        "is not page code",
    ),
    Row(
        ("docs/contributing/notebook_check.ipynb",),
        "no snippet", None,
        "a minimal notebook that checks the notebook pipeline itself: its code is in the notebook "
        "on purpose",
    ),
    Row(
        ("docs/contributing/notebook_check.ipynb",),
        "no test", None,
        "tests/test_site_build.py checks that the build executed it and rendered its outputs",
    ),
    Row(
        ("docs/glossary.md",),
        "no snippet", None,
        "a list of terms with no code; its test, tests/test_glossary.py, follows the rule and "
        "checks that every Japanese page uses the terms",
    ),
    Row(
        ("tests/hooks/", "tests/browser/", "tests/prose/"),
        "site-wide", None,
        "tests of hooks/ (which serve every page), of every built page in Chromium, and of "
        "the prose of every page: there is no docs/hooks, docs/browser or docs/prose",
    ),
    Row(
        ("tests/test_code_style.py", "tests/test_device_claims.py", "tests/test_inventory.py",
         "tests/test_site_build.py", "tests/test_snippets_standalone.py",
         "tests/test_translation_parity.py", "tests/test_layout_rule.py", "tests/test_nav.py"),
        "site-wide", None,
        "the gates every page passes (the contributor page lists them with their commands)",
    ),
    Row(
        ("tests/test_import_names.py",),
        "site-wide", None,
        "the import rule of snippets/ (each file under one name, its path from the snippets "
        "root), checked over every page, snippet and test at once",
    ),
]
# fmt: on

SNIPPET_SUFFIXES = {".py", ".json", ".csv"}


# ---- what is there ------------------------------------------------------------------------


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else "")


@cache
def pages() -> list[Path]:
    """The Japanese source of every page: Markdown and notebooks (their .en twins follow)."""
    found = [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
    return sorted(p for p in found if not is_english(p) and ".ipynb_checkpoints" not in p.parts)


def page_name(page: Path) -> tuple[str, str]:
    """(<dir>, <name>) of docs/<dir>/<name>.md; <dir> is "" for a page at the top of docs/."""
    relative = page.relative_to(DOCS)
    return relative.parent.as_posix().removeprefix("."), relative.name.split(".")[0]


def twins(page: Path) -> list[Path]:
    english = page.with_suffix(f".en{page.suffix}")
    return [page, *([english] if english.exists() else [])]


@cache
def snippet_files() -> list[Path]:
    return sorted(p for p in SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@cache
def all_test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts)


def covered(path: Path) -> list[Row]:
    """The exception rows that name `path` or a folder above it."""
    text = rel(path)
    return [
        row
        for row in EXCEPTIONS
        if any(text == p or (p.endswith("/") and text.startswith(p)) for p in row.paths)
    ]


# ---- the rule -----------------------------------------------------------------------------


def _follows(stem: str, name: str) -> bool:
    return stem == name or stem.startswith(f"{name}_")


@cache
def rule_snippets(page: Path) -> list[Path]:
    folder, name = page_name(page)
    return [
        f
        for f in snippet_files()
        if f.suffix in SNIPPET_SUFFIXES
        and (
            (f.parent == SNIPPETS / folder and _follows(f.stem, name))
            or (SNIPPETS / folder / name) in f.parents
        )
    ]


@cache
def rule_tests(page: Path) -> list[Path]:
    folder, name = page_name(page)
    return [
        t
        for t in all_test_files()
        if (t.parent == TESTS / folder and _follows(t.stem, f"test_{name}"))
        or (TESTS / folder / name) in t.parents
    ]


def rule_page(path: Path) -> Path | None:
    """The page a snippet or test file belongs to by the rule, if any."""
    for page in pages():
        if path in rule_snippets(page) or path in rule_tests(page):
            return page
    return None


# ---- what a page uses ---------------------------------------------------------------------

_INCLUDE = re.compile(r'(?<!;)--8<-- "([^":]+)(?::[^"]*)?"')
_LINK = re.compile(r"\]\(([\w-]+\.py)\)")  # hooks/snippet_downloads.py
_INLINE = re.compile(r"`([^`\n]+)`")


def _source(path: Path) -> tuple[str, str]:
    """(the text a reader sees, the code) of a page or a snippet."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text, text
    cells = json.loads(text)["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] != "code")
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return prose, code


def _python(code: str) -> ast.Module:
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _imported(tree: ast.Module, folder: Path) -> set[Path]:
    """snippets/ files a module imports: dotted from snippets/, or bare from any folder."""
    found = set()
    for name in imported_names(tree):
        relative = Path(*name.split("."))
        for candidate in (SNIPPETS / f"{relative}.py", folder / f"{relative}.py"):
            if candidate.is_file():
                found.add(candidate)
        if "." not in name and not found & {folder / f"{name}.py"}:
            found |= set(SNIPPETS.rglob(f"{name}.py"))  # a folder put on sys.path by hand
    return found


def _named_in_strings(tree: ast.Module, folder: Path) -> set[Path]:
    """Files of the module's folder that it names in a string: scripts it runs, files it reads."""
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    strings = {s for s in strings if isinstance(s, str)}
    return {
        f
        for f in folder.iterdir()
        if f.is_file() and any(s == f.name or s.endswith(f"/{f.name}") for s in strings)
    }


@cache
def used_by(page: Path) -> frozenset[Path]:
    """Every snippets/ file the page (either language) uses, directly or through each other."""
    folder, _ = page_name(page)
    mirror = SNIPPETS / folder
    used: set[Path] = set()
    for source in twins(page):
        prose, code = _source(source)
        used |= {ROOT / p for p in _INCLUDE.findall(code)}
        used |= {mirror / name for name in _LINK.findall(prose)}
        for inline in _INLINE.findall(prose):
            for word in inline.split():
                if word.startswith("snippets/"):
                    used.add(ROOT / word)
                elif mirror.is_dir() and not word.startswith("/") and (mirror / word).is_file():
                    used.add(mirror / word)
        if source.suffix == ".ipynb":
            used |= _imported(_python(code), mirror)
    pending = [p for p in used if p.suffix == ".py" and p.is_file()]
    while pending:
        script = pending.pop()
        tree = _python(script.read_text(encoding="utf-8"))
        for found in _imported(tree, script.parent) | _named_in_strings(tree, script.parent):
            if found not in used:
                used.add(found)
                if found.suffix == ".py":
                    pending.append(found)
    return frozenset(p for p in used if p.is_file())


# ---- the checks ---------------------------------------------------------------------------


def _exception(path: Path, kind: str) -> Row | None:
    rows = [row for row in covered(path) if row.kind == kind]
    return rows[0] if rows else None


def owned(page: Path, kind: str) -> list[Path]:
    """Files that belong to the page through an exception row."""
    prefix = {"snippet": "snippets/", "test": "tests/"}[kind]
    return [
        ROOT / p
        for row in EXCEPTIONS
        if row.kind == "belongs to" and row.page == rel(page)
        for p in row.paths
        if p.startswith(prefix)
    ]


def _found_unless_excepted(page, kind: str, by_rule) -> list | None:
    """The page's files of one kind; None where its 'no <kind>' row holds (and is not stale)."""
    found = by_rule(page) + owned(page, kind)
    if _exception(page, f"no {kind}"):
        assert not found, f"{rel(page)} has {[rel(f) for f in found]}: drop its 'no {kind}' row"
        return None
    return found


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_every_page_has_its_snippets(page):
    found = _found_unless_excepted(page, "snippet", rule_snippets)
    if found is None:
        return
    where = "/".join(filter(None, ["snippets", *page_name(page)]))
    assert found, f"{rel(page)}: no {where}.py (or {where}_*.py, {where}/)"


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_every_page_has_its_tests(page):
    found = _found_unless_excepted(page, "test", rule_tests)
    if found is None:
        return
    folder, name = page_name(page)
    where = "/".join(filter(None, ["tests", folder, f"test_{name}"]))
    assert found, f"{rel(page)}: no {where}.py (or {where}_*.py)"


@pytest.mark.parametrize("snippet", snippet_files(), ids=rel)
def test_every_snippet_file_belongs_to_a_page_that_uses_it(snippet):
    row = _exception(snippet, "belongs to")
    page = rule_page(snippet)
    if row is not None:
        assert page is None, f"{rel(snippet)} follows the rule now ({rel(page)}): drop the row"
        page = ROOT / row.page
    assert page is not None, (
        f"{rel(snippet)} belongs to no page: name it after one (snippets/<dir>/<page>.py or "
        f"<page>_*.py) or add a row to EXCEPTIONS with the reason"
    )
    assert snippet in used_by(page), (
        f"{rel(page)} neither includes, links nor names {rel(snippet)}, and none of the code it "
        f"uses imports, runs or reads it: delete it, or use it"
    )


PAGE_FOLDERS = {page_name(p)[0] for p in pages()}


@pytest.mark.parametrize("test", all_test_files(), ids=rel)
def test_every_test_file_belongs_to_a_page(test):
    folder = test.parent.relative_to(TESTS).as_posix().removeprefix(".")
    row = _exception(test, "belongs to") or _exception(test, "site-wide")
    page = rule_page(test)
    if row is not None:
        assert page is None, f"{rel(test)} follows the rule now ({rel(page)}): drop the row"
        if row.kind == "belongs to":  # the test says what it checks: the page or its code
            text = test.read_text(encoding="utf-8")
            named = [row.page, *(rel(f) for f in used_by(ROOT / row.page))]
            assert any(name in text for name in named), f"{rel(test)} names nothing of {row.page}"
        return
    if page is not None:
        return
    assert folder in PAGE_FOLDERS, (
        f"tests/{folder}/ mirrors no docs/ folder: move {rel(test)} next to its page's tests"
    )
    pytest.fail(
        f"{rel(test)} is named after no page of docs/{folder}: call it test_<page>.py or "
        f"test_<page>_*.py, or add a row to EXCEPTIONS with the reason"
    )


@pytest.mark.parametrize("row", EXCEPTIONS, ids=lambda row: f"{row.kind}:{row.paths[0]}")
def test_every_exception_is_real_and_says_why(row):
    assert row.kind in KINDS, row.kind
    assert len(row.reason.split()) >= 8, "say why the rule does not hold"
    assert (row.page is not None) == (row.kind == "belongs to"), row
    if row.page is not None:
        assert (ROOT / row.page).is_file(), f"{row.page} is not a page"
    for path in row.paths:
        target = ROOT / path
        assert target.is_dir() if path.endswith("/") else target.is_file(), f"{path} is gone"
        if row.kind in {"belongs to", "site-wide"} and not path.endswith("/"):
            assert rule_page(target) is None, f"{path} follows the rule: drop it from the row"
        if row.kind in {"no snippet", "no test"}:
            assert target in pages(), f"{path} is not a page"
