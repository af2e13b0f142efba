"""Light pages: figures and notebook styles become files of their own, fetched and cached once.

Figures. Code on the pages prints matplotlib figures as SVG at build (markdown-exec), and
notebooks show theirs inline; either way the figure sat inside the page's HTML, often several
hundred KB of it. This hook takes every matplotlib figure out of the page: it renders the SVG
to a PNG at twice the figure's CSS size (sharp on high-density screens) with resvg, reduces the
PNG to a 256-colour palette, keeps whichever of the SVG and the PNG is smaller, writes it to
``assets/figures/<hash of the SVG>.<svg|png>`` and puts an ``<img>`` in its place. A figure
printed identically in both languages is one file. Images that notebooks embed as base64
``data:`` URIs become files the same way (kept as they are).

Notebook styles. mkdocs-jupyter puts JupyterLab's whole stylesheet (about 590 KB) into every
notebook page. This hook moves those ``<style>`` blocks into one file,
``assets/stylesheets/notebook-<hash>.css``, which the theme (hooks/theme/main.html) links from the
head of notebook pages, where it keeps its place after the site's own stylesheets.

The rendered figures are kept in .cache/figures/ under the project (ignored by git), keyed by
the SVG's content, the versions of resvg-py and Pillow and the settings below, so a rebuild does
not render an unchanged figure again. A rendering is a pure function of that key, so nothing
kept there can be stale; a build forgets the renderings it did not use, and deleting the folder
only makes the next build render every figure again.
"""

import base64
import hashlib
import html
import io
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.utils import get_relative_url

FIGURES = "assets/figures"
STYLESHEETS = "assets/stylesheets"
PNG_SCALE = 2  # device pixels per CSS pixel of the PNG rendering
PALETTE_COLORS = 256
CSS_PX_PER_PT = 96 / 72

# A matplotlib SVG as printed by `fig.savefig(buffer, format="svg")`: an XML declaration and a
# doctype may come first; matplotlib never nests <svg> elements.
_MATPLOTLIB_SVG = re.compile(
    r"(?:<\?xml[^>]*\?>\s*)?(?:<!DOCTYPE svg[^>]*>\s*)?(<svg\b[^>]*>(?:(?!</svg>).)*?"
    r"<dc:title>Matplotlib v[^<]*</dc:title>.*?</svg>)",
    re.S,
)
_DATA_IMAGE = re.compile(
    r'(?P<before><img\b[^>]*?\ssrc=")data:image/(?P<kind>png|jpeg|gif|svg\+xml);base64,'
    r'(?P<data>[^"]+)(?P<after>"[^>]*>)'
)
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>\s*", re.S)
_TEXT_COMMENT = re.compile(r"<!--\s*(.*?)\s*-->", re.S)
_SIZE = re.compile(r'\b(width|height)="([\d.]+)(pt|px)?"')

_ALT_PREFIX = {"ja": "グラフ：", "en": "Plot: "}  # one per language of mkdocs.yml
# Matplotlib writes a comment before each drawn text; these name parts, not content.
_NOT_LABELS = re.compile(r"^(?:Created with matplotlib.*|[-+−]?[\d.,]+(?:e[-+]?\d+)?%?)$")
_TEX_COMMAND = re.compile(r"\\([A-Za-z]+)")


def _store() -> Path:
    return Path(__file__).resolve().parent.parent / ".cache" / "figures"


def _renderer_key() -> str:
    versions = [metadata.version(name) for name in ("resvg-py", "pillow")]
    settings = f"scale={PNG_SCALE},colors={PALETTE_COLORS}"
    return "|".join([*versions, settings])


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; a web server must read it
    os.replace(temporary, path)


def svg_size(svg: str) -> tuple[float, float]:
    """The CSS pixel size a browser gives the <svg> element (matplotlib writes points)."""
    start = svg.index("<svg")
    opening = svg[start : svg.index(">", start)]
    size = {}
    for name, value, unit in _SIZE.findall(opening):
        size[name] = float(value) * (CSS_PX_PER_PT if unit == "pt" else 1)
    return size["width"], size["height"]


def render_png(svg: str) -> bytes:
    """The SVG drawn at PNG_SCALE times its CSS size, as a palette PNG."""
    import resvg_py
    from PIL import Image

    raw = resvg_py.svg_to_bytes(
        svg_string=svg, dpi=96, zoom=PNG_SCALE, skip_system_fonts=True, background=None
    )
    image = Image.open(io.BytesIO(raw))
    if image.mode == "RGBA" and image.getextrema()[3][0] == 255:
        image = image.convert("RGB")  # opaque: the median cut keeps colours best
    if image.mode == "RGB":
        image = image.quantize(
            PALETTE_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    else:
        image = image.quantize(PALETTE_COLORS, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def choose(svg: str) -> tuple[str, bytes]:
    """("svg" or "png", bytes): whichever encoding of the figure is smaller."""
    encoded = svg.encode("utf-8")
    key = hashlib.sha256(f"{_renderer_key()}\n".encode() + encoded).hexdigest()
    cached = _store() / f"{key}.png"
    _used.add(cached.name)
    if cached.is_file():
        png = cached.read_bytes()
    else:
        png = render_png(svg)
        _write_atomically(cached, png)
    return ("png", png) if len(png) < len(encoded) else ("svg", encoded)


def alt_text(svg: str, language: str) -> str:
    """The figure's titles, axis labels and legend entries, as matplotlib noted them."""
    labels = []
    for comment in _TEXT_COMMENT.findall(svg):
        text = _TEX_COMMAND.sub(r"\1", html.unescape(comment)).replace("$", "").strip()
        if text and not _NOT_LABELS.match(text) and text not in labels:
            labels.append(text)
    described = ", ".join(labels)
    if len(described) > 200:
        described = described[:199].rstrip(", ") + "…"
    return _ALT_PREFIX[language] + (described or "matplotlib")


class _Assets:
    """Files this build adds to the site, by site-relative path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}

    def add(self, folder: str, name: str, data: bytes) -> str:
        path = f"{folder}/{name}"
        self.files[path] = data
        return path


_assets = _Assets()
_used: set[str] = set()  # names of the stored renderings this build used


def on_pre_build(config):
    _assets.files.clear()
    _used.clear()


def _figure_img(svg: str, page_url: str, language: str) -> str:
    """An <img> of the smaller encoding of a matplotlib SVG, written as a file of the site."""
    kind, data = choose(svg)
    path = _assets.add(FIGURES, f"{_digest(data)}.{kind}", data)
    width, height = svg_size(svg)
    return (
        f'<img class="plot" src="{get_relative_url(path, page_url)}" '
        f'width="{round(width)}" height="{round(height)}" loading="lazy" decoding="async" '
        f'alt="{html.escape(alt_text(svg, language))}">'
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def extract_figures(content: str, page_url: str, language: str) -> str:
    """The page with every matplotlib SVG and base64 image replaced by an <img> of a file."""

    def inline_svg(match):
        return _figure_img(match.group(1), page_url, language)

    def data_image(match):
        kind, data = match.group("kind"), base64.b64decode(match.group("data"))
        if kind == "svg+xml":
            svg = data.decode("utf-8")
            figure = _MATPLOTLIB_SVG.search(svg)
            if figure:  # a notebook's figure: the same choice as for the pages' figures
                return _figure_img(figure.group(1), page_url, language)
        extension = {"jpeg": "jpg", "svg+xml": "svg"}.get(kind, kind)
        path = _assets.add(FIGURES, f"{_digest(data)}.{extension}", data)
        return match.group("before") + get_relative_url(path, page_url) + match.group("after")

    content = _MATPLOTLIB_SVG.sub(inline_svg, content)
    return _DATA_IMAGE.sub(data_image, content)


def extract_styles(content: str) -> tuple[str, str]:
    """The page without its <style> blocks, and their CSS as one stylesheet."""
    css = []
    for block in _STYLE.findall(content):
        if block.strip().startswith("['"):
            # mkdocs-jupyter 0.26 also appends the Python repr of a list of Pygments rules;
            # every rule in it starts with an escaped "n" or is invalid, so it styles nothing.
            continue
        css.append(block.strip())
    return _STYLE.sub("", content), "\n\n".join(css) + "\n"


@event_priority(-100)  # after other hooks have finished the page's HTML
def on_page_content(html_content, page, config, files):
    language = config.theme["language"]
    content = extract_figures(html_content, page.url, language)
    if getattr(page, "nb_url", None):  # a notebook page (mkdocs-jupyter sets nb_url)
        content, css = extract_styles(content)
        digest = hashlib.sha256(css.encode("utf-8")).hexdigest()[:12]
        page.notebook_stylesheet = _assets.add(
            STYLESHEETS, f"notebook-{digest}.css", css.encode("utf-8")
        )
    return content


def on_post_build(config):
    """Write the files the pages of this build refer to; forget renderings no page used."""
    site = Path(config.site_dir)
    for path, data in _assets.files.items():
        target = site / path
        if not target.is_file():
            _write_atomically(target, data)
    if _used and _store().is_dir():
        for stale in _store().glob("*.png"):
            if stale.name not in _used:
                stale.unlink(missing_ok=True)


def clear_store() -> None:
    """Delete the rendered figures kept between builds."""
    shutil.rmtree(_store(), ignore_errors=True)
