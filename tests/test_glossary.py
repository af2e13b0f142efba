"""The glossary is the one list of Japanese terms, and the Japanese pages use only those terms."""

import inspect
import json
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from scale.large_vocabulary import chunked_linear_cross_entropy

from tests.support.pages import DOCS, english_twin, japanese_pages, relative

GLOSSARY = DOCS / "glossary.md"

# The Japanese terms of the team conventions. Other pages rely on them: they may not change.
CONVENTION_TERMS = [
    "交差エントロピー損失", "負の対数尤度", "ロジット", "ソフトマックス関数",
    "対数ソフトマックス", "対数確率", "正解クラスの確率", "正解ラベル", "クラスインデックス",
    "クラス確率（ソフトラベル）", "one-hot 表現", "ラベル平滑化", "クラス重み",
    "重み付き平均", "集約（`reduction`）", "クラス不均衡", "不均衡な", "ロングテール",
    "ラベルノイズ", "ノイズのあるラベル", "キャリブレーション",
    "期待キャリブレーション誤差（ECE）", "温度スケーリング", "正解率", "バランス正解率",
    "マクロ F1", "勾配", "数値安定性", "オーバーフロー", "アンダーフロー", "混合精度",
    "マージン", "ヒンジ損失", "Focal Loss", "埋め込み", "ミニバッチ", "勾配累積",
    "学習データ", "検証データ", "テストデータ", "エポック",
    # issue 12: one term per concept (the reasons are in an HTML comment in docs/glossary.md)
    "確信度", "少数クラス", "多数クラス", "クラスが均衡した", "通常の交差エントロピー損失",
    "コサイン", "ピクセル", "ビン", "チェック", "規約", "チャンスレベル", "ロジット調整損失",
    "事後ロジット調整", "パラメーター", "オプティマイザー", "フォルダー",
]  # fmt: skip

# Spellings seen elsewhere that this site does not use, and the glossary term to use instead.
# Kept small and explicit. "ソフトマックス" alone is fine (as in "ソフトマックスの出力").
# ラベルスムージング is not here: it is allowed once, as a gloss (see LABEL_SMOOTHING_GLOSS).
VARIANTS = {
    "クロスエントロピー損失": "交差エントロピー損失",
    "交差エントロピー誤差": "交差エントロピー損失",
    "クロスエントロピー誤差": "交差エントロピー損失",
    "素の": "通常の交差エントロピー損失",
    "普通の": "通常の交差エントロピー損失",
    "ふつうの": "通常の交差エントロピー損失",
    "負対数尤度": "負の対数尤度",
    "ログソフトマックス": "対数ソフトマックス",
    "ワンホット": "one-hot 表現",
    "教師ラベル": "正解ラベル",
    "2値分類": "二値分類",
    "多ラベル分類": "マルチラベル分類",
    "バランスが取れた": "クラスが均衡した",
    "バランスの取れた": "クラスが均衡した",
    "釣り合った": "クラスが均衡した",
    "まれなクラス": "少数クラス",
    "少ないクラス": "少数クラス",
    "多いクラス": "多数クラス",
    "数値的安定性": "数値安定性",
    "較正": "キャリブレーション",
    "自信": "確信度",
    "事後のロジット調整": "事後ロジット調整",
    "事後補正": "事後ロジット調整",
    "ロジット調整付き交差エントロピー損失": "ロジット調整損失",
    "調整付きの損失": "ロジット調整損失",
    "偶然の水準": "チャンスレベル",
    "ヒンジロス": "ヒンジ損失",
    "フォーカルロス": "Focal Loss",
    "フォーカル損失": "Focal Loss",
    "エンベディング": "埋め込み",
    "勾配蓄積": "勾配累積",
    "バリデーションデータ": "検証データ",
    "区間": "ビン",
    "余弦": "コサイン",
    "画素": "ピクセル",
    "検査": "チェック",
    "作法": "規約",
    "パラメータ": "パラメーター",
    "オプティマイザ": "オプティマイザー",
    "フォルダ": "フォルダー",
    "weight decay": "重み減衰",
    "コサイン分類器": "コサインヘッド",
    "バッファ": "バッファー",
}

# Where a variant's plain text would also match a correct spelling or phrase, the pattern that
# finds only the variant. Everything else is searched for as written.
PATTERNS = {
    # the short spelling is a prefix of the long one
    "パラメータ": r"パラメータ(?!ー)",
    "オプティマイザ": r"オプティマイザ(?!ー)",
    "フォルダ": r"フォルダ(?!ー)",
    "バッファ": r"バッファ(?!ー)",
    # "サンプル数が少ないクラス" and "サンプルの多いクラス" say what is counted and are fine
    # (and "最も少ないクラス", the rarest class); a bare "少ないクラス" is a name for 少数クラス
    "少ないクラス": r"(?<![がの])(?<!最も)少ないクラス",
    "多いクラス": r"(?<![がの])(?<!最も)多いクラス",
    "釣り合った": r"釣り合",
    # 要素の (of the elements) is not 素の
    "素の": r"(?<![\u4e00-\u9fff])素の",
    "ロジット調整付き交差エントロピー損失": r"ロジット調整付き",
    "調整付きの損失": r"(?<!ロジット)調整付き",
    # the glossary's English column holds the English term as a whole cell
    "weight decay": r"(?<!\| )weight decay(?! \|)",
}

# ラベルスムージング is as common as ラベル平滑化 in Japanese writing, so a page glosses it once,
# at its first mention of ラベル平滑化, and uses ラベル平滑化 alone everywhere else.
LABEL_SMOOTHING = "ラベル平滑化"
LABEL_SMOOTHING_GLOSS = "ラベル平滑化（ラベルスムージング）"


def label_smoothing_problems(text):
    """(message, line number) for each use of ラベルスムージング outside the one gloss."""
    problems, glossed = [], False
    for match in re.finditer(
        r"ラベル平滑化（ラベルスムージング）|ラベル平滑化|ラベルスムージング", text
    ):
        line = text.count("\n", 0, match.start()) + 1
        if match.group() == LABEL_SMOOTHING_GLOSS:
            if glossed:
                problems.append(("write ラベル平滑化 alone after the first mention", line))
            glossed = True
        elif match.group() == LABEL_SMOOTHING and not glossed:
            problems.append((f"the first mention must be {LABEL_SMOOTHING_GLOSS}", line))
            glossed = True  # report the first mention once, not every later one
        elif match.group() == "ラベルスムージング":
            problems.append(
                (f"write {LABEL_SMOOTHING} (glossed once as {LABEL_SMOOTHING_GLOSS})", line)
            )
    return problems


def table_rows(path, first_header):
    """The cells of each body row of the Markdown table whose first header cell is given."""
    rows, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            if inside:
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not inside:
            inside = cells[0] == first_header
            continue
        if set(cells[0]) <= set("-: "):
            continue  # the delimiter row
        rows.append(cells)
    return rows


GLOSSARY_ROWS = table_rows(GLOSSARY, "日本語")


def terms(cell):
    return [term.strip() for term in cell.split(" / ")]


def glossary_terms():
    return {term for row in GLOSSARY_ROWS for term in terms(row[0])}


def listed_variants(row):
    return [variant.strip() for variant in row[4].split("、") if variant.strip()]


def find_variants(text):
    """(variant, canonical term, line number) for each non-canonical spelling in text."""
    return [
        (variant, canonical, text.count("\n", 0, match.start()) + 1)
        for variant, canonical in VARIANTS.items()
        for match in re.finditer(PATTERNS.get(variant, re.escape(variant)), text)
    ]


def japanese_text(page):
    """What a reader sees on a Japanese page; for the glossary, without its list of variants."""
    if page.suffix == ".ipynb":
        cells = json.loads(page.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    text = page.read_text(encoding="utf-8")  # HTML comments are not shown; keep line numbers
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    lines = text.splitlines()
    if page == GLOSSARY:  # drop the fifth column of the table, the variants shown for reference
        lines = ["|".join(line.split("|")[:5]) if line.startswith("|") else line for line in lines]
    return "\n".join(lines)


def test_glossary_table_is_complete():
    assert len(GLOSSARY_ROWS) >= 34  # the 34 rows of the conventions, and any added since
    for row in GLOSSARY_ROWS:
        assert len(row) == 5, f"glossary row without 5 cells: {row}"
        japanese, english, _, definition, _ = row
        assert japanese and english and definition, f"glossary row with an empty cell: {row}"


def test_one_row_per_japanese_term():
    all_terms = [term for row in GLOSSARY_ROWS for term in terms(row[0])]
    duplicates = {term for term in all_terms if all_terms.count(term) > 1}
    assert not duplicates, f"terms listed twice in docs/glossary.md: {duplicates}"


def test_glossary_keeps_every_term_of_the_conventions():
    missing = [term for term in CONVENTION_TERMS if term not in glossary_terms()]
    assert not missing, f"docs/glossary.md lost or changed the terms {missing}"


def test_english_glossary_lists_the_same_terms_in_the_same_order():
    english_rows = table_rows(english_twin(GLOSSARY), "English")
    assert [row[1] for row in english_rows] == [row[0] for row in GLOSSARY_ROWS]
    assert [row[0] for row in english_rows] == [row[1] for row in GLOSSARY_ROWS]


def test_every_variant_points_to_a_glossary_term():
    unknown = {v: c for v, c in VARIANTS.items() if c not in glossary_terms()}
    assert not unknown, f"variants mapped to terms the glossary does not have: {unknown}"


def test_glossary_shows_exactly_the_variants_this_test_rejects():
    shown = {v: row[0] for row in GLOSSARY_ROWS for v in listed_variants(row)}
    for variant, canonical in VARIANTS.items():
        assert variant in shown, f"{variant} is missing from the glossary's variant column"
        assert canonical in terms(shown[variant]), f"{variant} is listed in the wrong row"
    assert set(shown) == set(VARIANTS), f"only in the glossary: {set(shown) - set(VARIANTS)}"


def test_the_check_finds_a_variant_and_spares_canonical_terms():
    assert find_variants("まず\n交差エントロピー誤差を使います。") == [
        ("交差エントロピー誤差", "交差エントロピー損失", 2)
    ]
    assert find_variants("ソフトマックスの出力と交差エントロピー損失とラベル平滑化") == []
    assert [v for v, _, _ in find_variants("パラメータとフォルダとオプティマイザ")] == [
        "パラメータ", "オプティマイザ", "フォルダ"
    ]  # fmt: skip
    assert find_variants("パラメーターとフォルダーとオプティマイザー") == []
    assert [v for v, _, _ in find_variants("バッファとバッファー")] == ["バッファ"]
    assert [v for v, _, _ in find_variants("要素の損失と素の損失")] == ["素の"]
    assert [v for v, _, _ in find_variants("少ないクラスとまれなクラス")] == [
        "まれなクラス", "少ないクラス"
    ]  # fmt: skip
    assert (
        find_variants("サンプル数が少ないクラスと、サンプルの多いクラスと、最も少ないクラス") == []
    )
    assert [v for v, _, _ in find_variants("ロジット調整付き交差エントロピー損失")] == [
        "ロジット調整付き交差エントロピー損失"
    ]
    assert [v for v, _, _ in find_variants("調整付きの損失")] == ["調整付きの損失"]
    assert [v for v, _, _ in find_variants("weight decay も掛かります")] == ["weight decay"]
    assert find_variants("| 重み減衰 | weight decay | `weight_decay` |") == []


def test_label_smoothing_is_glossed_once_at_its_first_mention():
    good = "まず ラベル平滑化（ラベルスムージング）を使います。\nラベル平滑化は正則化です。"
    assert label_smoothing_problems(good) == []
    assert label_smoothing_problems("ラベル平滑化を使います。") == [
        ("the first mention must be ラベル平滑化（ラベルスムージング）", 1)
    ]
    assert [line for _, line in label_smoothing_problems(good + "\nラベルスムージングも。")] == [3]
    assert [line for _, line in label_smoothing_problems(good + "\n" + good)] == [3]
    assert label_smoothing_problems("ラベルスムージングを使います。") != []


@pytest.mark.parametrize("page", japanese_pages() + japanese_pages(".ipynb"), ids=relative)
def test_japanese_page_uses_the_glossary_terms(page):
    found = find_variants(japanese_text(page))
    assert not found, "\n".join(
        f"{relative(page)}:{line}: write {canonical} instead of {variant}"
        for variant, canonical, line in found
    )


@pytest.mark.parametrize(
    "page", [p for p in japanese_pages() if p != GLOSSARY] + japanese_pages(".ipynb"), ids=relative
)
def test_japanese_page_glosses_label_smoothing_once(page):
    text = japanese_text(page)  # the glossary is left out: its row defines the term and the rule
    problems = label_smoothing_problems(text)
    assert not problems, "\n".join(f"{relative(page)}:{line}: {msg}" for msg, line in problems)


# --- What the definitions say about PyTorch ----------------------------------------------------
# Each test quotes the English definition it checks; the Japanese row states the same facts.


def batch(seed=0, n=6, c=4):
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, c, generator=generator), torch.randint(
        0, c, (n,), generator=generator
    )


def test_cross_entropy_of_a_class_index_is_the_negative_log_of_the_true_class_probability():
    # cross-entropy: "for a class-index (one-hot) target, the negative log of the probability
    # of the true class"
    x, y = batch()
    p_true = torch.softmax(x, dim=1)[torch.arange(len(y)), y]
    assert torch.allclose(F.cross_entropy(x, y, reduction="none"), -p_true.log(), atol=1e-6)


def test_nll_loss_only_negates_the_input_at_the_true_class_and_checks_nothing():
    # negative log-likelihood: "only takes the input's value at the true class and negates it;
    # it does not check that the input is log-probabilities"
    x, y = batch()
    assert torch.equal(F.nll_loss(x, y, reduction="none"), -x[torch.arange(len(y)), y])
    assert F.nll_loss(torch.tensor([[5.0, 1.0]]), torch.tensor([0])).item() == -5.0


def test_bce_with_logits_needs_a_float_multi_hot_target():
    # target: "a float multi-hot vector per sample in multi-label classification"
    logits = torch.randn(2, 3)
    multi_hot = torch.tensor([[1, 0, 1], [0, 0, 1]])
    with pytest.raises(RuntimeError):
        torch.nn.BCEWithLogitsLoss()(logits, multi_hot)
    assert torch.isfinite(torch.nn.BCEWithLogitsLoss()(logits, multi_hot.float()))


def test_one_hot_returns_int64_which_cross_entropy_rejects_until_float():
    # one-hot: "`F.one_hot` returns `int64`; convert it with `.float()` before using it as a
    # `CrossEntropyLoss` target."
    x, y = batch()
    one_hot = F.one_hot(y, x.shape[1])
    assert one_hot.dtype == torch.int64
    with pytest.raises(RuntimeError, match="Expected floating point type for target"):
        F.cross_entropy(x, one_hot)
    assert torch.allclose(F.cross_entropy(x, one_hot.float()), F.cross_entropy(x, y))


def test_reduction_none_keeps_one_loss_per_sample_and_mean_is_the_weighted_mean():
    # reduction: "`mean` (with class-index targets, a weighted mean when `weight` is given) and
    # `sum` return one value, and `none` returns the per-sample losses"
    x, y = batch()
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    per_sample = F.cross_entropy(x, y, weight=weight, reduction="none")
    assert per_sample.shape == y.shape
    assert F.cross_entropy(x, y, weight=weight, reduction="sum").shape == ()
    mean = F.cross_entropy(x, y, weight=weight)
    assert mean.shape == ()
    assert torch.allclose(mean, per_sample.sum() / weight[y].sum())
    assert not torch.allclose(mean, per_sample.mean())
    # With class-probability targets, "mean" divides by N whatever the weights.
    q = torch.softmax(batch(1)[0], dim=1)
    probability_mean = F.cross_entropy(x, q, weight=weight)
    summed = F.cross_entropy(x, q, weight=weight, reduction="sum")
    assert torch.allclose(probability_mean, summed / len(x))
    assert not torch.allclose(probability_mean, summed / (q * weight).sum())


def test_the_smallest_normal_float32_and_what_overflows_and_underflows():
    # subnormal number: "(about 1.18e-38 in float32, ...)"
    smallest_normal = torch.finfo(torch.float32).smallest_normal
    assert f"{smallest_normal:.3g}" == "1.18e-38"
    # overflow: "its magnitude exceeds the largest representable number, so that it becomes ±inf"
    big = torch.exp(torch.tensor(100.0))
    assert big.item() == float("inf") and (-big).item() == float("-inf")
    # underflow: "becomes subnormal or rounds to 0"
    subnormal, zero = torch.exp(torch.tensor([-100.0, -104.0])).tolist()
    assert 0 < subnormal < smallest_normal
    assert zero == 0.0


def test_kl_div_is_cross_entropy_minus_the_target_entropy_and_takes_log_probabilities():
    # KL divergence: "the cross-entropy between the target distribution $q$ and the prediction
    # $p$, minus the entropy of $q$. `F.kl_div(input, target)` takes `input` as
    # log-probabilities (probabilities raise no error and give a wrong value)."
    x, _ = batch(0)
    p = torch.softmax(x, dim=1)
    q = torch.softmax(batch(1)[0], dim=1)
    cross_entropy = -(q * p.log()).sum(dim=1).mean()
    kl = F.kl_div(p.log(), q, reduction="batchmean")
    assert torch.allclose(kl, cross_entropy + (q * q.log()).sum(dim=1).mean(), atol=1e-6)
    assert not torch.allclose(kl, cross_entropy + (p * p.log()).sum(dim=1).mean(), atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wrong = F.kl_div(p, q, reduction="batchmean")
    assert not torch.allclose(wrong, kl, atol=1e-3)


def test_the_chunk_size_arguments_of_pytorch_and_of_this_site():
    # chunk: "PyTorch's `F.linear_cross_entropy` takes the number of rows as
    # `batch_chunk_size`, and this site's `chunked_linear_cross_entropy` as `chunk_size`."
    options = torch.nn.LinearCrossEntropyOptions
    assert "options" in inspect.signature(F.linear_cross_entropy).parameters
    assert "chunk_size" not in inspect.signature(F.linear_cross_entropy).parameters
    assert "batch_chunk_size" in inspect.signature(options).parameters
    assert "chunk_size" in inspect.signature(chunked_linear_cross_entropy).parameters


def test_weight_decay_pulls_the_parameters_toward_zero_at_every_update():
    # weight decay: "pulls the parameters toward 0 at every update ... Optimizers take it as the
    # `weight_decay` argument."
    for optimizer_class in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        start = torch.tensor([2.0, -3.0])
        for weight_decay, shrinks in ((0.1, True), (0.0, False)):
            parameter = torch.nn.Parameter(start.clone())
            optimizer = optimizer_class([parameter], lr=0.1, weight_decay=weight_decay)
            for _ in range(3):
                optimizer.zero_grad()
                (0.0 * parameter).sum().backward()  # a loss whose gradient is 0
                optimizer.step()
            moved = parameter.detach().abs() < start.abs()
            assert bool(moved.all()) == shrinks, (optimizer_class.__name__, weight_decay)


def test_a_buffer_is_no_parameter_is_saved_and_moves_with_its_module():
    # buffer: "a tensor registered on a module that training does not update: it is not among
    # `parameters()`, it is saved in `state_dict()` (unless registered with `persistent=False`),
    # and it moves with the module on `.to()`"
    module = torch.nn.Module()
    module.register_buffer("weight", torch.ones(3))
    module.register_buffer("scratch", torch.zeros(2), persistent=False)
    assert list(module.parameters()) == []
    assert torch.equal(module.state_dict()["weight"], torch.ones(3))
    assert list(module.state_dict()) == ["weight"]
    assert [name for name, _ in module.named_buffers()] == ["weight", "scratch"]
    module.to(torch.float64)
    assert module.weight.dtype == torch.float64
