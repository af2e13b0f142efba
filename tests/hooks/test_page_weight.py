"""hooks/page_weight.py: figures leave the page as the smaller of SVG and PNG; notebook styles
leave it as one stylesheet. The built pages themselves are checked in tests/test_site_build.py."""

import importlib.util
import io
import re

import matplotlib
import pytest
from PIL import Image

from tests.support.pages import DEFAULT_LANGUAGE, OTHER_LANGUAGE, ROOT

matplotlib.use("Agg")
import matplotlib.pyplot as plt

spec = importlib.util.spec_from_file_location("page_weight", ROOT / "hooks/page_weight.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    """Rendered figures go to a fresh folder, so every test renders its own."""
    monkeypatch.setattr(hook, "_store", lambda: tmp_path / "figures")
    hook._assets.files.clear()
    return tmp_path / "figures"


def svg_of(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def line_plot() -> str:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0, 1, 4], label="squares")
    ax.set(xlabel="epoch", ylabel="loss")
    ax.legend()
    return svg_of(fig)


def few_shapes() -> str:
    """A large figure of a few lines and no text: small as SVG, many pixels as PNG."""
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.plot([0, 1, 2], [0, 1, 0])
    ax.axis("off")
    return svg_of(fig)


def scatter_plot() -> str:
    import numpy as np

    points = np.random.default_rng(0).normal(size=(3000, 2))
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter(points[:, 0], points[:, 1], s=4)
    return svg_of(fig)


@pytest.mark.parametrize(("make", "expected"), [(few_shapes, "svg"), (scatter_plot, "png")])
def test_the_smaller_encoding_is_kept(make, expected):
    svg = make()
    png = hook.render_png(svg)
    kind, data = hook.choose(svg)
    assert kind == ("png" if len(png) < len(svg.encode()) else "svg")
    assert kind == expected  # both encodings do occur
    assert data == (png if kind == "png" else svg.encode())


def test_the_png_is_drawn_at_twice_the_css_size():
    svg = scatter_plot()
    width, height = hook.svg_size(svg)
    image = Image.open(io.BytesIO(hook.render_png(svg)))
    assert abs(image.width - 2 * width) <= 2 and abs(image.height - 2 * height) <= 2
    assert image.mode == "P"  # the 256-colour palette


def test_a_rendered_figure_is_reused_from_the_store(store, monkeypatch):
    svg = scatter_plot()
    first = hook.choose(svg)
    assert len(list(store.glob("*.png"))) == 1
    monkeypatch.setattr(hook, "render_png", lambda svg: pytest.fail("rendered again"))
    assert hook.choose(svg) == first


def test_a_figure_becomes_an_img_of_a_file_and_other_svg_stays():
    icon = '<svg viewBox="0 0 24 24"><path d="M0 0h24"/></svg>'
    figure = line_plot()
    page = f"<p>{icon}</p><div class='plot'>{figure}</div>"
    out = hook.extract_figures(page, f"{OTHER_LANGUAGE}/losses/focal/", OTHER_LANGUAGE)
    assert icon in out and "<svg" not in out.replace(icon, "")
    img = re.search(r'<img class="plot" src="([^"]+)" width="(\d+)" height="(\d+)"[^>]*>', out)
    assert img, out
    src = img.group(1)
    assert src.startswith("../../../assets/figures/") and src.endswith((".svg", ".png"))
    assert src.removeprefix("../../../") in hook._assets.files
    assert (int(img.group(2)), int(img.group(3))) == tuple(map(round, hook.svg_size(figure)))
    assert 'alt="Plot: ' in out and "squares" in out and "epoch" in out


def test_the_same_figure_in_both_languages_is_one_file():
    figure = line_plot()
    ja = hook.extract_figures(figure, "losses/focal/", DEFAULT_LANGUAGE)
    en = hook.extract_figures(figure, f"{OTHER_LANGUAGE}/losses/focal/", OTHER_LANGUAGE)
    assert len(hook._assets.files) == 1
    assert 'alt="グラフ：' in ja and 'alt="Plot: ' in en


def test_a_base64_image_becomes_a_file():
    import base64

    data = hook.render_png(line_plot())
    page = f'<img alt="x" src="data:image/png;base64,{base64.b64encode(data).decode()}"/>'
    out = hook.extract_figures(page, "training/train_digits/", DEFAULT_LANGUAGE)
    assert "data:image" not in out
    (path,) = hook._assets.files
    assert hook._assets.files[path] == data and f'src="../../{path}"' in out


def test_notebook_styles_become_one_stylesheet():
    page = '<style type="text/css">.jp-Cell{color:red}</style><div></div>\n<style>a{b:c}</style>'
    out, css = hook.extract_styles(page)
    assert out == "<div></div>\n"
    assert ".jp-Cell{color:red}" in css and "a{b:c}" in css


def test_a_notebook_figure_given_as_a_data_uri_gets_the_same_choice():
    import base64

    svg = scatter_plot()
    page = (
        '<img alt="No description has been provided for this image" '
        f'src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}"/>'
    )
    out = hook.extract_figures(page, "training/train_digits/", OTHER_LANGUAGE)
    kind, data = hook.choose(svg)
    (path,) = hook._assets.files
    assert path.endswith(f".{kind}") and hook._assets.files[path] == data
    assert out.startswith('<img class="plot" src="../../assets/figures/') and "base64" not in out
