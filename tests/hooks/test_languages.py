"""The hooks' per-language texts cover exactly the languages mkdocs.yml builds: the hooks look
their text up by the page's language (config.theme["language"]), with no fallback, so a language
added to mkdocs.yml without its text fails here, not at build time on some page."""

import importlib.util

import pytest

from tests.support.pages import LANGUAGES, ROOT

TABLES = {
    "execution_cache": "CACHE_NOTE",
    "notebook_download": "EXPLANATION",
    "page_weight": "_ALT_PREFIX",
}


def hook(name: str):
    spec = importlib.util.spec_from_file_location(f"hook_{name}", ROOT / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", TABLES)
def test_a_hook_has_its_text_in_every_built_language(name):
    table = getattr(hook(name), TABLES[name])
    assert set(table) == set(LANGUAGES), f"hooks/{name}.py {TABLES[name]}: {sorted(table)}"
