"""The strict build of both languages succeeds and produces a complete, clean site."""

import json
import re

import pytest

from tests.support.pages import (
    OTHER_LANGUAGE,
    built_page,
    english_pages,
    japanese_pages,
    relative,
)

SOURCES = japanese_pages() + english_pages() + japanese_pages(".ipynb") + english_pages(".ipynb")
NOTEBOOKS = japanese_pages(".ipynb") + english_pages(".ipynb")
# What a failed example leaves in a page: a Python traceback (plain, or split by the colour
# markup of a notebook's error output), or markdown-exec's failure notice.
FAILURE_MARKS = re.compile(r"Traceback(?:\s|<[^>]+>)*\(most recent call last\)|exited with errors")


@pytest.mark.parametrize("source", SOURCES, ids=relative)
def test_every_page_is_built_without_rendered_errors(built_site, source):
    page = built_page(built_site, source)
    assert page.is_file(), f"{relative(source)} was not built to {page}"
    html = page.read_text(encoding="utf-8")
    failure = FAILURE_MARKS.search(html)
    assert failure is None, f"{relative(source)} shows a failure: {failure.group(0)!r}"


def test_search_index_holds_both_languages(built_site):
    def docs(path):
        return json.loads(path.read_text(encoding="utf-8"))["docs"]

    japanese = docs(built_site / "search" / "search_index.json")
    english = docs(built_site / OTHER_LANGUAGE / "search" / "search_index.json")
    assert japanese and english
    assert not any(doc["location"].startswith(f"{OTHER_LANGUAGE}/") for doc in japanese)
    assert any("交差エントロピー" in doc["text"] for doc in japanese)
    assert any("cross-entropy" in doc["text"].lower() for doc in english)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=relative)
def test_notebook_is_rendered_with_its_outputs(built_site, notebook):
    html = built_page(built_site, notebook).read_text(encoding="utf-8")
    outputs = re.findall(r'class="[^"]*jp-OutputArea-output[^"]*"', html)
    assert outputs, f"{relative(notebook)} was rendered without executed outputs"
    download = built_page(built_site, notebook).parent / notebook.name
    assert download.is_file(), f"{relative(notebook)} is not downloadable from its page"


# ---- Page weight (hooks/page_weight.py) -----------------------------------------------------

PAGE_LIMIT_BYTES = 200_000
NOTEBOOK_STYLESHEET = re.compile(
    r'<link rel="stylesheet" href="((?:\.\./)*assets/stylesheets/notebook-[0-9a-f]+\.css)">'
)


def test_no_page_is_over_200_kb_of_html(built_site):
    sizes = {
        str(page.relative_to(built_site)): page.stat().st_size
        for page in built_site.rglob("*.html")
    }
    heavy = {page: size for page, size in sizes.items() if size > PAGE_LIMIT_BYTES}
    assert len(sizes) >= len(SOURCES)
    assert not heavy, f"pages over {PAGE_LIMIT_BYTES} bytes of HTML: {heavy}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=relative)
def test_notebook_page_links_the_shared_stylesheet_instead_of_inlining_it(built_site, notebook):
    page = built_page(built_site, notebook)
    html = page.read_text(encoding="utf-8")
    inline = [s for s in re.findall(r"<style\b.*?</style>", html, re.S) if ".jp-" in s]
    assert not inline, f"{relative(notebook)} inlines {sum(map(len, inline))} bytes of styles"
    link = NOTEBOOK_STYLESHEET.search(html)
    assert link, f"{relative(notebook)} does not link the notebook stylesheet"
    stylesheet = (page.parent / link.group(1)).resolve()
    assert stylesheet.is_file() and ".jp-OutputArea" in stylesheet.read_text(encoding="utf-8")
    assert html.index(link.group(0)) > html.index("assets/extra.css")  # keeps its place
    others = built_site.rglob("assets/stylesheets/notebook-*.css")
    assert [p.resolve() for p in others] == [stylesheet], "one stylesheet for every notebook"


def test_figures_are_files_of_their_own(built_site):
    problems = []
    figures = 0
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        name = str(page.relative_to(built_site))
        if re.search(r"""\bsrc=["']data:image/""", html):
            problems.append(f"{name} embeds a data: image")
        if "<dc:title>Matplotlib" in html:
            problems.append(f"{name} inlines a matplotlib SVG")
        for src in re.findall(r'<img class="plot" src="([^"]+)"', html):
            figures += 1
            if not (page.parent / src).resolve().is_file():
                problems.append(f"{name}: {src} is missing")
    assert not problems, "\n".join(problems)
    assert figures >= 20  # the pages' matplotlib figures, in both languages


# ---- The notebook a reader downloads (hooks/notebook_download.py) --------------------------


def test_downloaded_notebook_runs_alone_in_an_empty_folder(built_site, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from tests.support.pages import DOCS, SNIPPETS

    source = DOCS / "training" / "train_digits.ipynb"
    download = built_page(built_site, source).parent / source.name
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / source.name).write_bytes(download.read_bytes())
    notebook = nbformat.read(folder / source.name, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}
    ).execute()
    written = sorted(p.name for p in folder.iterdir() if p.name != "__pycache__")
    assert written == [source.name, "train_digits.py"]
    assert (folder / "train_digits.py").read_text() == (
        SNIPPETS / "training" / "train_digits.py"
    ).read_text()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)  # the figures were drawn


def test_both_downloads_run_the_same_code(built_site):
    from tests.support.pages import DOCS, english_twin

    def code(notebook):
        page = built_page(built_site, notebook).parent / notebook.name
        cells = json.loads(page.read_text(encoding="utf-8"))["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]

    japanese = DOCS / "training" / "train_digits.ipynb"
    assert code(japanese) == code(english_twin(japanese))
    assert code(japanese)[0].startswith("%%writefile train_digits.py\n")


# ---- What produced the outputs (hooks/build_versions.py) -----------------------------------

VERSIONS_NOTE = re.compile(r"<aside [^>]*data-build-versions[^>]*>\s*(.*?)\s*</aside>", re.S)
EXECUTED_FENCE = re.compile(r"""^\s*`{3,}.*\bexec=["']?(?:on|1|true|yes)\b""", re.M)


@pytest.mark.parametrize("source", SOURCES, ids=relative)
def test_page_says_what_its_outputs_were_produced_with(built_site, source):
    import platform

    import torch

    html = built_page(built_site, source).read_text(encoding="utf-8")
    notes = VERSIONS_NOTE.findall(html)
    assert len(notes) == 1, f"{relative(source)} has {len(notes)} version notes"
    note = notes[0]
    for fact in (
        f"torch {torch.__version__}",
        f"Python {platform.python_version()}",
        f"{platform.system()} {platform.machine()}",
    ):
        assert fact in note, f"{relative(source)}: {fact!r} missing from {note!r}"
    executed = source.suffix == ".ipynb" or EXECUTED_FENCE.search(source.read_text("utf-8"))
    english = source.name.endswith((".en.md", ".en.ipynb"))
    opening = {
        (True, True): "The outputs on this page were produced when the site was built",
        (True, False): "このページの出力は、サイトのビルド時に",
        (False, True): "This page has no executed code.",
        (False, False): "このページに実行するコードはありません。",
    }[(bool(executed), english)]
    assert note.startswith(opening), f"{relative(source)}: {note!r}"
