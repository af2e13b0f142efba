"""A page can offer one of its scripts from snippets/ as a download, by linking its file name.

``[train_digits.py](train_digits.py)`` on docs/training/index.md links the script the page
explains. The code lives once, in snippets/training/train_digits.py; this hook adds that file to
the site next to the page (for each language), so the link works, is validated like any other,
and a reader gets the very file that the build executed. A linked name is looked up only in the
snippets/ folder that mirrors the page's folder (the path rule); a name not found there is left
alone, and the strict build then reports the broken link.
"""

import re
from pathlib import Path, PurePosixPath

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

# A Markdown link whose target is a bare Python file name: [text](name.py)
_SCRIPT_LINK = re.compile(r"\]\(([\w-]+\.py)\)")


def linked_scripts(markdown: str) -> list[str]:
    names = []
    for name in _SCRIPT_LINK.findall(markdown):
        if name not in names:
            names.append(name)
    return names


def snippet_for(page_src_uri: str, name: str, snippets: Path) -> Path | None:
    folder = PurePosixPath(page_src_uri).parent
    candidate = snippets / folder / name
    return candidate if candidate.is_file() else None


@event_priority(-200)  # after mkdocs-static-i18n has chosen this language's files (-100)
def on_files(files, config):
    snippets = Path(config.config_file_path).resolve().parent / "snippets"
    for page in [f for f in files if f.src_uri.endswith(".md")]:
        if page.abs_src_path is None:
            continue
        markdown = Path(page.abs_src_path).read_text(encoding="utf-8")
        for name in linked_scripts(markdown):
            script = snippet_for(page.src_uri, name, snippets)
            uri = str(PurePosixPath(page.src_uri).parent / name)
            if script is None or files.get_file_from_path(uri) is not None:
                continue
            files.append(File.generated(config, uri, abs_src_path=str(script)))
    return files
