"""The home page (docs/index.md and index.en.md): its claims about PyTorch, and its site map.

Each test quotes the English sentence it checks; the Japanese page states the same facts.
"""

import re
import runpy

import pytest
import torch
import torch.nn.functional as F
import yaml

from tests.support.pages import DOCS, ROOT, SNIPPETS

PAGES = [DOCS / "index.md", DOCS / "index.en.md"]
SEEDS = range(20)


def batch(seed, n=8, c=5, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=generator)
    target = torch.randint(0, c, (n,), generator=generator)
    return logits, target


# --- The 30-second answer ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_log_probabilities_are_logits_that_log_softmax_leaves_unchanged(seed):
    # "These are logits too: `log_softmax` leaves them unchanged (up to rounding), so
    # `CrossEntropyLoss` gives the same loss on them."
    x, y = batch(seed)
    log_probs = F.log_softmax(x, dim=1)
    assert torch.allclose(F.log_softmax(log_probs, dim=1), log_probs, atol=1e-6)
    assert torch.allclose(F.cross_entropy(log_probs, y), F.cross_entropy(x, y), atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_loss_on_other_logits_returns_a_wrong_value(seed):
    # "`NLLLoss`, however, needs log-probabilities: on any other logits it returns a wrong value."
    x, y = batch(seed)
    assert not torch.allclose(F.nll_loss(x, y), F.cross_entropy(x, y))
    assert torch.equal(F.nll_loss(F.log_softmax(x, dim=1), y), F.cross_entropy(x, y))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize(
    "dtype",
    [torch.int8, torch.int16, torch.int32, torch.uint16, torch.uint32, torch.uint64, torch.bool],
)
def test_class_indices_other_than_int64_and_uint8_raise(loss, dtype):
    # "they must be `int64` (`torch.long`): `int32` indices raise an error, and `uint8` is
    # accepted only for input of shape (N, C) or (C,)."
    x, y = batch(0)
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        loss(F.log_softmax(x, dim=1), y.to(dtype))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_int64_and_uint8_class_indices_give_the_same_loss(loss):
    x, y = batch(0)
    assert torch.equal(loss(x, y.to(torch.uint8)), loss(x, y))
    assert torch.equal(loss(x[0], y[0].to(torch.uint8)), loss(x[0], y[0]))  # (C,) input


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("extra", [(5,), (4, 4)], ids=["(N, C, d1)", "(N, C, d1, d2)"])
def test_uint8_class_indices_raise_with_extra_dimensions(loss, extra):
    x = torch.randn(2, 3, *extra)
    y = torch.randint(0, 3, (2, *extra))
    loss(x, y)  # int64 works
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Byte"):
        loss(x, y.to(torch.uint8))


def test_cross_entropy_takes_float_class_probabilities_and_nll_loss_does_not():
    # "`CrossEntropyLoss` also accepts float class probabilities of the logits' shape (a float
    # one-hot target among them); `NLLLoss` accepts only class indices."
    x, y = batch(0)
    one_hot = F.one_hot(y, x.shape[1]).float()
    assert torch.allclose(F.cross_entropy(x, one_hot), F.cross_entropy(x, y))
    with pytest.raises(RuntimeError):
        F.nll_loss(F.log_softmax(x, dim=1), one_hot)


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_loss_on_logits_is_the_negated_mean_only_with_the_default_arguments(seed):
    # "With the default arguments, that value is only the negated mean of the true-class logits"
    x, y = batch(seed)
    true_logits = x[torch.arange(len(y)), y]
    assert torch.allclose(F.nll_loss(x, y), -true_logits.mean())
    # With class weights it is a weighted mean instead, which is another number.
    weight = torch.linspace(0.5, 3.0, x.shape[1])
    weighted = -(weight[y] * true_logits).sum() / weight[y].sum()
    assert torch.allclose(F.nll_loss(x, y, weight=weight), weighted)
    assert not torch.allclose(weighted, -true_logits.mean())


def test_the_snippet_prints_the_numbers_the_page_describes(capsys):
    namespace = runpy.run_path(str(SNIPPETS / "index.py"))
    printed = capsys.readouterr().out
    assert "bit-for-bit equal: True" in printed
    assert namespace["wrong"].item() == pytest.approx(
        -namespace["logits"][range(4), namespace["target"]].mean().item()
    )
    assert namespace["wrong"].item() < 0  # "a loss that goes below 0"


# --- The map of the site -----------------------------------------------------------------------


def nav_sections():
    """Each top-level entry of mkdocs.yml's nav: its pages (a page alone is its own section)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    sections = []
    for entry in config["nav"]:
        if isinstance(entry, str):
            sections.append(("", [entry]))
        else:
            ((title, pages),) = entry.items()
            sections.append((title, pages))
    return sections


def map_links(page):
    """The link targets of the page's last section, the map of the site."""
    text = page.read_text(encoding="utf-8")
    return set(re.findall(r"\]\(([^)#]+)", text[text.rindex("\n## ") :]))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_map_of_the_site_links_every_page_of_every_nav_section(page):
    # The contributor section is linked below the table, and the losses chapter by its index
    # page, which lists its losses.
    links = map_links(page)
    for title, pages in nav_sections():
        if pages == ["index.md"]:
            continue
        if title == "開発者向け":
            assert "contributing/index.md" in links, page.name
            continue
        expected = ["losses/index.md"] if title == "カスタム損失関数" else pages
        missing = [p for p in expected if p not in links]
        assert not missing, f"{page.name}: the map of the site misses {missing} ({title})"


def test_the_map_check_reads_the_links_of_the_table():
    links = map_links(DOCS / "index.en.md")
    assert "basics/nll_vs_cross_entropy.md" in links and "glossary.md" in links


def test_the_mistaken_value_has_no_lower_bound_and_raises_no_error():
    logits, target = batch(0)
    logits[range(len(target)), target] = 1e6  # a large true-class logit
    assert F.nll_loss(logits, target).item() == pytest.approx(-1e6)
    assert F.cross_entropy(logits, target).item() >= 0  # the real loss is never negative
