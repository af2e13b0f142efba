"""Where the pages, their twins and their code live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"
DEFAULT_LANGUAGE, OTHER_LANGUAGE = "ja", "en"


def is_english(path: Path) -> bool:
    return path.suffixes[-2:-1] == [f".{OTHER_LANGUAGE}"]


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
    language = OTHER_LANGUAGE if is_english(source) else DEFAULT_LANGUAGE
    relative = source.relative_to(DOCS)
    stem = relative.name.split(".")[0]
    parts = relative.parent / ("" if stem == "index" else stem)
    base = site / OTHER_LANGUAGE if language == OTHER_LANGUAGE else site
    return base / parts / "index.html"


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))
