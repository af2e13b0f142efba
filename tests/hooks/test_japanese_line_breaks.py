import importlib.util

from tests.support.pages import ROOT

spec = importlib.util.spec_from_file_location(
    "japanese_line_breaks", ROOT / "hooks/japanese_line_breaks.py"
)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def test_a_break_between_japanese_characters_is_removed():
    assert (
        hook.join_japanese_lines("<p>一文目です。\n二文目です。</p>")
        == "<p>一文目です。二文目です。</p>"
    )


def test_english_line_breaks_are_kept():
    html = "<p>one sentence.\nanother one\n日本語</p>"
    assert hook.join_japanese_lines(html) == html


def test_preformatted_text_is_untouched():
    html = "<pre><code>print('あ')\nprint('い')</code></pre>"
    assert hook.join_japanese_lines(html) == html


def test_the_built_japanese_page_has_no_break_between_sentences(built_site):
    html = (built_site / "index.html").read_text(encoding="utf-8")
    paragraphs = hook.PREFORMATTED.sub("", html)
    assert hook.BREAK_BETWEEN_JAPANESE.search(paragraphs) is None
