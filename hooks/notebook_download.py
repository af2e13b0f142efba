"""The notebook a reader downloads runs on its own, with no other file beside it.

A notebook in docs/<folder>/ imports its script from snippets/<folder>/, the folder that mirrors
its own (docs/training/train_digits.ipynb does ``import train_digits as td``, which is
snippets/training/train_digits.py), so the code lives once in the repository. mkdocs-jupyter copies
the notebook next to its page as the download (``include_source``); this hook then rewrites that
copy: before the first code cell it adds a cell that writes each imported snippets/ module
(``%%writefile train_digits.py`` followed by the file's text, read at build) into the folder the
notebook runs in, and a line of prose saying so in the notebook's language. Modules are found
by reading the notebook's imports (and those of the modules it ships), so nothing is listed by
hand. The repository's notebook is not changed.
"""

import ast
import json
import os
from pathlib import Path, PurePosixPath

from mkdocs.plugins import event_priority

EXPLANATION = {  # one per language of mkdocs.yml (tests/hooks/test_languages.py)
    "ja": (
        "次のセルは、このノートブックが使う {files} を、"
        "ノートブックと同じフォルダーに書き出します。"
        "セルの中身は、サイトのビルド時にリポジトリの {files} から作ったものです。"
        "ほかのファイルを用意しなくても、このノートブックだけで動きます。"
    ),
    "en": (
        "The next cell writes {files}, which this notebook imports, into the notebook's folder. "
        "It was made from the repository's {files} when the site was built, so this notebook "
        "runs on its own, with no other file."
    ),
}


def _code(source: str) -> str:
    """A code cell's Python, without IPython's magics and shell escapes."""
    kept = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(kept)


def imported_modules(source: str) -> list[str]:
    """Top-level names of the modules `source` imports, in order."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module.split(".")[0]]
        else:
            continue
        names += [name for name in found if name not in names]
    return names


def shipped_modules(notebook: dict, snippets: Path) -> list[Path]:
    """The modules of the folder `snippets` that the notebook imports, and those they import."""
    sources = [_code("".join(c["source"])) for c in notebook["cells"] if c["cell_type"] == "code"]
    shipped: list[Path] = []
    pending = [name for source in sources for name in imported_modules(source)]
    while pending:
        module = snippets / f"{pending.pop(0)}.py"
        if module.is_file() and module not in shipped:
            shipped.append(module)
            pending += imported_modules(module.read_text(encoding="utf-8"))
    return shipped


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def self_contained(notebook: dict, snippets: Path, language: str) -> dict:
    """A copy of `notebook` that writes the snippets/ modules it imports before its code runs."""
    modules = shipped_modules(notebook, snippets)
    if not modules:
        return notebook
    files = ", ".join(f"`{module.name}`" for module in modules)
    explanation = EXPLANATION[language].format(files=files)
    added = [{"cell_type": "markdown", "id": "download-note", "metadata": {}, "source": []}]
    added[0]["source"] = _lines(explanation)
    for module in modules:
        text = module.read_text(encoding="utf-8")
        added.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"download-{module.stem}".replace("_", "-"),
                "metadata": {},
                "outputs": [],
                "source": _lines(f"%%writefile {module.name}\n{text}"),
            }
        )
    cells = notebook["cells"]
    first_code = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code")
    return {**notebook, "cells": [*cells[:first_code], *added, *cells[first_code:]]}


@event_priority(-100)  # after mkdocs-jupyter has copied the notebook next to its page
def on_post_page(output, page, config):
    if not getattr(page, "nb_url", None):
        return output
    source = Path(page.file.abs_src_path)
    target = Path(os.path.dirname(page.file.abs_dest_path)) / source.name
    folder = PurePosixPath(page.file.src_uri).parent  # snippets/ mirrors docs/
    snippets = Path(config.config_file_path).resolve().parent / "snippets" / folder
    notebook = json.loads(source.read_text(encoding="utf-8"))
    download = self_contained(notebook, snippets, config.theme["language"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(download, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return output
