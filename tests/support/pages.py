"""Where the pages, their twins and their code live, and the site's languages, read once from
mkdocs.yml (the i18n plugin's `languages`: the default one is served at /, the other at /<it>/)."""

from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"


@cache
def mkdocs_config() -> dict:
    """mkdocs.yml as plain data (it uses no YAML tags)."""
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def _languages() -> tuple[str, str]:
    plugins = {next(iter(p)) if isinstance(p, dict) else p: p for p in mkdocs_config()["plugins"]}
    languages = plugins["i18n"]["i18n"]["languages"]
    default = [x["locale"] for x in languages if x.get("default")]
    others = [x["locale"] for x in languages if not x.get("default")]
    assert len(default) == 1 and len(others) == 1, "the tests expect two languages, one default"
    return default[0], others[0]


DEFAULT_LANGUAGE, OTHER_LANGUAGE = _languages()
LANGUAGES = (DEFAULT_LANGUAGE, OTHER_LANGUAGE)


def is_english(path: Path) -> bool:
    return path.suffixes[-2:-1] == [f".{OTHER_LANGUAGE}"]


def language_of(path: Path) -> str:
    """The language a page source is written in (docs/x.md: the default, docs/x.en.md: en)."""
    return OTHER_LANGUAGE if is_english(path) else DEFAULT_LANGUAGE


def other_language(language: str) -> str:
    return OTHER_LANGUAGE if language == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE


def japanese_pages(suffix: str = ".md") -> list[Path]:
    return sorted(p for p in DOCS.rglob(f"*{suffix}") if not is_english(p))


def english_pages(suffix: str = ".md") -> list[Path]:
    return sorted(p for p in DOCS.rglob(f"*.{OTHER_LANGUAGE}{suffix}"))


def english_twin(japanese: Path) -> Path:
    return japanese.with_suffix(f".{OTHER_LANGUAGE}{japanese.suffix}")


def japanese_twin(english: Path) -> Path:
    return english.with_name(english.name.replace(f".{OTHER_LANGUAGE}.", "."))


def markdown_sources() -> list[Path]:
    """Every Markdown file whose code blocks the tests account for."""
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def built_page(site: Path, source: Path) -> Path:
    """The HTML file MkDocs writes for a page source (directory URLs)."""
    language = language_of(source)
    relative = source.relative_to(DOCS)
    stem = relative.name.split(".")[0]
    parts = relative.parent / ("" if stem == "index" else stem)
    base = site / OTHER_LANGUAGE if language == OTHER_LANGUAGE else site
    return base / parts / "index.html"


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))
