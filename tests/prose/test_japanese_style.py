"""One punctuation and list style on every Japanese page (issue 12; the conventions are in
docs/contributing/index.md and the helpers' brief).

textlint (test_japanese_prose.py) checks sentence style; the site's own conventions, which no
textlint rule in the preset covers, are checked here on the text a reader sees (code blocks,
inline code, math, link targets and HTML tags removed):

- a label colon is the full-width 「：」 with no space after it, never ": ";
- parentheses next to Japanese text are the full-width （）;
- a half-width space separates Japanese from Latin letters, digits and `code`;
- identifiers are `code`, never "quoted", and nan/inf are written `nan`/`inf`;
- list items are in です・ます調: an item that is a sentence ends with 「。」 and a polite form
  (です, ます, ...); an item that is a noun phrase has no 「。」 and no plain verb ending;
- wording carried over from English word for word (押す for "push", 罰する, 静かに for
  "silently", ...) is rejected with the usual Japanese wording;
- "the first dimension" is written as `dim=1`.

Run by hand, with the file:line of every problem:
    .venv/bin/pytest tests/prose/test_japanese_style.py
"""

import re
from dataclasses import dataclass

import pytest

from tests.support.commonmark import commonmark
from tests.support.pages import japanese_pages, relative

KANA_KANJI = r"\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff"  # not ・
JAPANESE = rf"[{KANA_KANJI}\u3000-\u303f\uff01-\uff60]"  # with full-width punctuation
WORD = rf"[{KANA_KANJI}]"  # letters only: what needs a space next to Latin text
CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
TAG = re.compile(r"<[^>]+>")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
ITEM = re.compile(r"^(?P<indent> *)(?:[-*+]|\d+\.) +(?P<text>.*)$")
POLITE = re.compile(r"(です|ます|ません|でした|ました|ください|でしょう|ましょう)$")
# Plain (である調) endings of a sentence. A noun phrase ends in a noun, never in these.
# Checked after POLITE, since ます ends in す.
PLAIN = re.compile(r"(である|[うくぐすつぬぶむるただ]|ない|ず)$")
TRAILING_PARENTHESIS = re.compile(r"（[^（）]*）$")

# Wording carried over from English, and what to write instead.
TRANSLATIONESE = {
    r"押[しすさせ]": "「押す」(push) → 勾配を大きくする、強く学習させる",
    r"罰[しす]": "「罰する」(penalize) → 損失を与える、損失が大きくなる",
    r"を破[らりるれ]": "「マージンを破る」(violate) → マージンを満たさない",
    r"静かに": "「静かに」(silently) → エラーも警告も出ずに",
    r"全力で": "「全力で」(at full strength) → そのままの強さで",
    r"解放さ": "「解放される」(let go) → 勾配が小さくなる",
    r"に参加し": "「参加する」(take part) → 含まれる、加わる",
    r"均衡させない": "「何も均衡させない」(balances nothing) → クラス間の偏りは変わらない",
    r"`ignore_index` を無視": "「ignore_index を無視」→ `ignore_index` の要素を除く",
    r"番目の次元": "「1 番目の次元」reads as the first dimension → write `dim=1`",
}


@dataclass(frozen=True)
class Line:
    number: int
    raw: str  # the line as CommonMark, with inline code and math as `code`
    text: str  # what a reader reads: no code, no link targets, no tags, no emphasis marks


def visible(line: str, code: str = "X") -> str:
    line = TAG.sub("", LINK.sub(r"\1", line))
    line = CODE.sub(code, line)
    return line.replace("**", "").replace("*", "")


def prose_lines(markdown: str) -> list[Line]:
    """The lines of prose (headings, paragraphs, list items, table rows) of a page."""
    lines, fence = [], None
    markdown = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group().count("\n"), markdown, flags=re.S)
    for number, line in enumerate(commonmark(markdown).splitlines(), start=1):
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if line.strip():
            lines.append(Line(number, line, visible(line)))
    return lines


def list_items(lines: list[Line]) -> list[tuple[int, str]]:
    """(first line, text) of each list item, its continuation lines joined."""
    items: list[tuple[int, list[str], int]] = []  # line, parts, indentation of the text
    previous = 0
    for line in lines:
        match = ITEM.match(line.raw)
        if match:
            items.append((line.number, [visible(match["text"])], len(match["indent"]) + 2))
        elif (
            items
            and line.number == previous + 1
            and not line.raw.lstrip().startswith(("#", "|"))
            and len(line.raw) - len(line.raw.lstrip()) >= items[-1][2]
        ):
            items[-1][1].append(line.text.strip())
        previous = line.number
    return [(number, "".join(parts).strip()) for number, parts, _ in items]


def item_problems(text: str) -> list[str]:
    """What is wrong with one list item's ending, by the rules in the module docstring."""
    problems = []
    sentences = [s.strip() for s in text.split("。")]
    finished, last = sentences[:-1], sentences[-1]
    for sentence in finished:
        core = TRAILING_PARENTHESIS.sub("", sentence).rstrip()
        if PLAIN.search(core) and not POLITE.search(core):
            problems.append(f"である調 in a list item: 「{core[-12:]}。」; write です・ます")
    if finished and last:
        problems.append("an item with a sentence ending in 「。」 must end with 「。」 too")
    elif finished:
        core = TRAILING_PARENTHESIS.sub("", finished[-1]).rstrip()
        if not POLITE.search(core) and not PLAIN.search(core) and len(finished) == 1:
            problems.append(f"a noun phrase has no 「。」: 「{core[-12:]}。」")
    else:
        core = TRAILING_PARENTHESIS.sub("", last).rstrip()
        if POLITE.search(core):
            problems.append(f"a sentence ends with 「。」: 「{core[-12:]}」")
        elif PLAIN.search(core) and re.search(rf"{WORD}$", core):
            problems.append(
                f"である調 in a list item: 「{core[-12:]}」; write です・ます and 「。」"
            )
    return problems


def line_problems(line: Line) -> list[str]:
    problems = []
    text, spaced = line.text, visible(line.raw, code="`X`")
    if re.search(rf"{JAPANESE}\s*:(?!//)|:[ \t]+{JAPANESE}", text):
        problems.append("label colon: write 「：」 (full width, no space after it)")
    if re.search(r"：[ \t]", text):
        problems.append("no space after 「：」")
    if re.search(rf"{JAPANESE} ?\(|\){JAPANESE}|\([^()]*{WORD}[^()]*\)", text):
        problems.append("parentheses in Japanese text are full width: （）")
    if re.search(rf"{WORD}[A-Za-z0-9`]|[A-Za-z0-9`]{WORD}", spaced):
        problems.append(
            "a half-width space goes between Japanese and Latin letters, digits, `code`"
        )
    if re.search(r'"[A-Za-z_][\w.=+-]*"', text):
        problems.append('write identifiers and values as `code`, not "quoted"')
    if re.search(r"(?<![\w`.])(nan|NaN|inf)(?![\w`])", text):
        problems.append("write `nan` and `inf` as inline code")
    for pattern, advice in TRANSLATIONESE.items():
        if re.search(pattern, line.raw if "`" in pattern else text):
            problems.append(advice)
    return problems


def page_problems(markdown: str, glossary: bool = False) -> list[tuple[int, str]]:
    if glossary:  # its fifth column lists, on purpose, the spellings the site does not use
        markdown = "\n".join(
            "|".join(line.split("|")[:5]) + "|" if line.startswith("|") else line
            for line in markdown.splitlines()
        )
    lines = prose_lines(markdown)
    found = [(line.number, p) for line in lines for p in line_problems(line)]
    found += [(number, p) for number, text in list_items(lines) for p in item_problems(text)]
    return sorted(found)


@pytest.mark.parametrize("page", japanese_pages(), ids=relative)
def test_japanese_page_follows_the_punctuation_and_list_style(page):
    problems = page_problems(page.read_text(encoding="utf-8"), glossary=page.name == "glossary.md")
    if problems:
        report = "\n".join(f"{relative(page)}:{n}: {p}" for n, p in problems)
        pytest.fail(f"{len(problems)} style problems:\n{report}", pytrace=False)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**症状**: 損失が負になります。", "label colon"),
        ("- `weight`: クラス重み", "label colon"),
        ("**症状**： 損失が負になります。", "no space after"),
        ("この論文 (ICLR 2022) は級数を使います。", "parentheses"),
        ("損失はPyTorchで計算します。", "half-width space"),
        ("`weight`を渡します。", "half-width space"),
        ('"mean" は重み付き平均です。', 'not "quoted"'),
        ("損失は nan になります。", "`nan`"),
        ("サンプルを強く押します。", "押す"),
        ("マージンを破るクラスです。", "マージンを破る"),
        ("エラーも出さず静かに返ります。", "静かに"),
        ("クラスは 1 番目の次元です。", "dim=1"),
        ("- 損失は 0 になる", "である調"),
        ("- 損失は 0 になる。", "である調"),
        ("- 損失は 0 です", "ends with 「。」"),
        ("- クラス重み。", "noun phrase"),
        ("- マージンを課す", "である調"),
        ("- 正解率を保つ。", "である調"),
        ("- `epsilon`（既定値 1.0）。`epsilon=0` で損失は一致する", "must end with"),
    ],
)
def test_the_check_finds_each_kind_of_problem(markdown, expected):
    problems = page_problems(markdown)
    assert any(expected in p for _, p in problems), problems


def test_the_check_accepts_the_conventions():
    page = "\n".join(
        [
            "# 大マージンのソフトマックスヘッド：CosFace と ArcFace",
            "",
            "**症状**：損失が負になります（`nll_loss` にロジットを渡したとき）。",
            'Leng et al.（ICLR 2022）は `reduction="mean"` と $p_y$ を使い、`nan` を返します。',
            "[Focal Loss](focal.md) と 30% の値、64 ピクセル、http://127.0.0.1:8000/ です。",
            "",
            "- $\\epsilon$：`epsilon`（既定値 1.0）。`epsilon=0` で損失が一致します。",
            "- `nn.MultiMarginLoss`：このページのマルチクラスヒンジ損失",
            "- 確率が必要なとき。ヒンジ損失のロジットはスコアにすぎません。",
            "- 勾配を大きくします（論文の値）。`log(softmax)` と log(softmax) は同じです。",
            "  続きの行です。",
            "",
            "```python",
            'x = "mean"  # nan: 押す',
            "```",
        ]
    )
    assert page_problems(page) == []
