"""Render notebooks in every language, not only the default one.

mkdocs-static-i18n rebuilds the file list for each language after mkdocs-jupyter
has wrapped notebooks as pages, and the rebuilt ``File`` objects lose that wrapper,
so the English notebook would be copied as a raw download (static-i18n issue #198).
This hook runs after the i18n plugin, wraps the notebooks again and gives them the
language alternates that the i18n plugin only computes for Markdown pages, so the
language switcher lands on the same notebook in the other language.
"""

from pathlib import Path
from types import SimpleNamespace

from mkdocs.plugins import event_priority
from mkdocs_jupyter.plugin import NotebookFile


@event_priority(-200)  # after mkdocs-static-i18n, which runs its on_files at -100
def on_files(files, config):
    # Edit in place: the i18n plugin's Files subclass resolves each language's paths.
    jupyter = config.plugins["mkdocs-jupyter"]
    i18n = config.plugins["i18n"]
    for file in list(files):
        if isinstance(file, NotebookFile) or not jupyter.should_include(file):
            continue
        notebook = NotebookFile(file, **config)
        # Keep the language-specific destination the i18n plugin chose (en/... for English).
        notebook.dest_path = file.dest_path
        notebook.abs_dest_path = file.abs_dest_path
        notebook.url = file.url
        notebook.alternates = _alternates(file, i18n, config.docs_dir)
        files.remove(file)
        files.append(notebook)
    return files


def _alternates(file, i18n, docs_dir):
    """Map each built language to the URL of this notebook's twin in that language."""
    current, default = i18n.current_language, i18n.default_language
    stem = file.src_uri.removesuffix(".ipynb").removesuffix(f".{current}")
    neutral_url = file.url.removeprefix(f"{current}/") if current != default else file.url
    alternates = {current: file}
    for lang in i18n.build_languages:
        source = f"{stem}.ipynb" if lang == default else f"{stem}.{lang}.ipynb"
        if lang != current and (Path(docs_dir) / source).is_file():
            url = neutral_url if lang == default else f"{lang}/{neutral_url}"
            alternates[lang] = SimpleNamespace(url=url)
    return alternates
