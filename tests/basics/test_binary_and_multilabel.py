"""Every statement of docs/basics/binary_and_multilabel*.md about PyTorch, asserted."""

import inspect
import math
import struct

import basics.binary_and_multilabel as snippet
import pytest
import torch
import torch.nn.functional as F

from tests.support.pages import DOCS

SEEDS = [0, 1, 2]


def _doc(cls):
    return " ".join(cls.__doc__.split())


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_on_zero_and_z_equals_bce_with_logits_on_z(seed):
    torch.manual_seed(seed)
    z = 3 * torch.randn(16)
    y = torch.randint(0, 2, (16,))
    two = torch.stack([torch.zeros_like(z), z], dim=1)
    assert torch.allclose(
        F.cross_entropy(two, y), F.binary_cross_entropy_with_logits(z, y.float()), atol=1e-6
    )
    assert torch.allclose(torch.softmax(two, dim=1)[:, 1], torch.sigmoid(z), atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_logits_equal_one_logit_of_their_difference(seed):
    torch.manual_seed(seed)
    ab = 3 * torch.randn(16, 2)
    y = torch.randint(0, 2, (16,))
    bce = F.binary_cross_entropy_with_logits(ab[:, 1] - ab[:, 0], y.float(), reduction="none")
    assert torch.allclose(F.cross_entropy(ab, y, reduction="none"), bce, atol=1e-5)


def test_documentation_recommends_with_logits_and_describes_the_clamp():
    assert "more numerically stable than using a plain `Sigmoid` followed by a `BCELoss`" in _doc(
        torch.nn.BCEWithLogitsLoss
    )
    assert "clamps its log function outputs to be greater than or equal to -100" in _doc(
        torch.nn.BCELoss
    )


def test_bce_on_sigmoid_saturates_at_100_while_with_logits_does_not():
    z, y = torch.tensor([-200.0, 20.0]), torch.tensor([1.0, 0.0])
    assert torch.equal(torch.sigmoid(z), torch.tensor([0.0, 1.0]))  # float32 rounds
    assert torch.equal(
        F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none"), torch.tensor([100.0, 100.0])
    )
    assert torch.allclose(
        F.binary_cross_entropy_with_logits(z, y, reduction="none"), torch.tensor([200.0, 20.0])
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_mean_is_over_all_n_times_c_entries(seed):
    torch.manual_seed(seed)
    x = torch.randn(4, 5)
    t = (torch.rand(4, 5) < 0.4).float()
    per_entry = -(t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x))
    assert torch.allclose(F.binary_cross_entropy_with_logits(x, t), per_entry.mean())
    assert F.binary_cross_entropy_with_logits(x, t, reduction="none").shape == (4, 5)


def test_integer_multi_hot_target_raises():
    x, t = torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    message = "result type Float can't be cast to the desired output type Long"
    with pytest.raises(RuntimeError, match=message):
        F.binary_cross_entropy_with_logits(x, t)
    with pytest.raises(RuntimeError, match=message):
        torch.nn.BCEWithLogitsLoss()(x, t)


def test_cross_entropy_accepts_multi_hot_silently_and_is_a_different_loss():
    torch.manual_seed(0)
    x = torch.randn(4, 5)
    t = torch.tensor(
        [[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float32
    )
    per_sample = F.cross_entropy(x, t, reduction="none")  # no error
    assert per_sample[3].item() == 0  # a sample with no label teaches nothing
    assert torch.allclose(torch.softmax(x, 1).sum(1), torch.ones(4))
    assert not torch.allclose(torch.sigmoid(x).sum(1), torch.ones(4))
    # the gradient of a label-free sample is zero
    x.requires_grad_(True)
    F.cross_entropy(x, t, reduction="sum").backward()
    assert torch.equal(x.grad[3], torch.zeros(5))


@pytest.mark.parametrize("seed", SEEDS)
def test_pos_weight_multiplies_the_positive_term_and_broadcasts(seed):
    torch.manual_seed(seed)
    x = torch.randn(6, 5)
    t = (torch.rand(6, 5) < 0.4).float()
    p = torch.rand(5) * 10
    loss = F.binary_cross_entropy_with_logits(x, t, pos_weight=p, reduction="none")
    expected = -(p * t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x))
    assert loss.shape == (6, 5)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_weight_multiplies_both_terms():
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    t = (torch.rand(6, 5) < 0.4).float()
    w = torch.rand(5) * 10
    weighted = F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="none")
    plain = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert torch.allclose(weighted, w * plain)


def test_documentation_suggests_negatives_over_positives():
    assert r"should be equal to :math:`\frac{300}{100}=3`" in _doc(torch.nn.BCEWithLogitsLoss)


def test_pos_weight_example_of_the_page():
    torch.manual_seed(0)
    targets = (torch.rand(1000, 5) < torch.tensor([0.5, 0.2, 0.1, 0.05, 0.01])).float()
    positives = targets.sum(0)
    pos_weight = (len(targets) - positives) / positives
    assert torch.allclose(pos_weight, (1 - targets).sum(0) / targets.sum(0))
    assert (pos_weight[1:] > pos_weight[:-1]).all()  # rarer labels get larger weights


# --- BCELoss on sigmoid: loss and gradient, thresholds ------------------------------------------


def bce_and_gradient(z, label, with_logits):
    z = torch.tensor([z], requires_grad=True)
    y = torch.tensor([label])
    if with_logits:
        loss = F.binary_cross_entropy_with_logits(z, y)
    else:
        loss = F.binary_cross_entropy(torch.sigmoid(z), y)
    loss.backward()
    return loss.item(), z.grad.item()


def test_float32_sigmoid_reaches_one_near_16_6_but_zero_only_below_minus_88_7():
    assert torch.sigmoid(torch.tensor(16.5)).item() < 1.0
    assert torch.sigmoid(torch.tensor(16.7)).item() == 1.0
    assert torch.sigmoid(torch.tensor(-88.7)).item() > 0.0  # a subnormal number
    assert torch.sigmoid(torch.tensor(-88.8)).item() == 0.0  # exp(88.8) overflows to inf
    assert torch.exp(torch.tensor(88.8)).item() == float("inf")


def test_for_target_0_bce_on_sigmoid_is_too_low_then_jumps_to_100_with_zero_gradient():
    loss, grad = bce_and_gradient(15.0, 0.0, with_logits=False)  # the table's first row
    assert loss < 15.0 - 0.1 and grad == pytest.approx(1.0, abs=1e-3)  # already too low
    loss, grad = bce_and_gradient(16.5, 0.0, with_logits=False)
    assert loss < 16.0 and grad == pytest.approx(1.0, abs=1e-3)
    for z in (15.0, 16.5, 17.0, 20.0):  # the jump to 100 comes with the sigmoid rounding to 1
        rounded = torch.sigmoid(torch.tensor(z)).item() == 1.0
        assert (bce_and_gradient(z, 0.0, with_logits=False)[0] == 100.0) == rounded
    for z in (17.0, 20.0):
        loss, grad = bce_and_gradient(z, 0.0, with_logits=False)
        assert loss == 100.0 and grad == 0.0
        loss, grad = bce_and_gradient(z, 0.0, with_logits=True)
        assert loss == pytest.approx(z) and grad == pytest.approx(1.0)


def test_for_target_1_the_loss_stays_right_but_the_gradient_fades_long_before():
    loss, grad = bce_and_gradient(-30.0, 1.0, with_logits=False)
    assert loss == pytest.approx(30.0, rel=1e-4) and abs(grad) < 0.5  # far below 1
    loss, grad = bce_and_gradient(-88.0, 1.0, with_logits=False)
    assert loss == pytest.approx(88.0, rel=1e-4) and abs(grad) < 1e-20  # right loss, no gradient
    loss, grad = bce_and_gradient(-90.0, 1.0, with_logits=False)
    assert loss == 100.0 and grad == 0.0  # the sigmoid is 0: the clamp
    assert bce_and_gradient(-110.0, 1.0, with_logits=False)[0] == 100.0  # the clamp
    for z in (-30.0, -90.0, -110.0):
        loss, grad = bce_and_gradient(z, 1.0, with_logits=True)
        assert loss == pytest.approx(-z) and grad == pytest.approx(-1.0)


def test_positive_logit_is_sigmoid_above_one_half_except_within_about_1e_7_of_zero():
    torch.manual_seed(0)
    z = 3 * torch.randn(10000)
    assert torch.equal(z > 0, torch.sigmoid(z) > 0.5)
    assert torch.sigmoid(torch.tensor(1e-8)).item() == 0.5  # rounds to exactly 0.5
    assert torch.sigmoid(torch.tensor(1e-6)).item() > 0.5


def test_n_by_1_logits_against_n_labels_raise_and_a_hand_written_loss_broadcasts():
    column, y = torch.randn(4, 1), torch.tensor([1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"Target size .* must be the same as input size"):
        F.binary_cross_entropy_with_logits(column, y)
    fixed = F.binary_cross_entropy_with_logits(column.squeeze(1), y)
    assert torch.equal(fixed, F.binary_cross_entropy_with_logits(column, y.unsqueeze(1)))
    assert ((column - y) ** 2).shape == (4, 4)


# --- Review basicsB: float32 rounding, two heads, thresholds in the prose, dense pos_weight -----

PAGES = [DOCS / "basics" / f"binary_and_multilabel{suffix}" for suffix in (".md", ".en.md")]


def _in_both_pages(text):
    return all(text in page.read_text(encoding="utf-8") for page in PAGES)


def _float32(bits):
    return struct.unpack("<f", struct.pack("<i", bits))[0]


def _bits(value):
    return struct.unpack("<i", struct.pack("<f", value))[0]


def _boundary(predicate, low, high):
    """The float32 values low < high with predicate(low) != predicate(high), adjacent."""
    a, b = _bits(low), _bits(high)
    assert predicate(_float32(a)) != predicate(_float32(b))
    while b - a > 1:
        middle = (a + b) // 2
        if predicate(_float32(middle)) == predicate(_float32(a)):
            a = middle
        else:
            b = middle
    return _float32(a), _float32(b)


def _sigmoid_of(value):
    # a vector (the vectorized kernel) and a scalar must agree
    vector = torch.sigmoid(torch.full((64,), value)).unique()
    scalar = torch.sigmoid(torch.tensor(value))
    assert vector.numel() == 1 and vector.item() == scalar.item()
    return scalar.item()


def test_the_page_pair_agrees_up_to_float32_rounding_but_not_bit_for_bit():
    bce, ce = snippet.bce.item(), snippet.ce.item()
    assert bce != ce  # the printed values differ: "up to float32 rounding" is needed
    assert abs(bce - ce) <= 4 * torch.finfo(torch.float32).eps * abs(bce)  # a few ulps


@pytest.mark.parametrize("seed", SEEDS)
def test_two_logit_head_moves_the_difference_twice_as_far_per_sgd_step(seed):
    torch.manual_seed(seed)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    one, two = torch.nn.Linear(4, 1), torch.nn.Linear(4, 2)
    with torch.no_grad():
        two.weight.copy_(torch.cat([torch.zeros_like(one.weight), one.weight]))
        two.bias.copy_(torch.cat([torch.zeros_like(one.bias), one.bias]))
    bce = F.binary_cross_entropy_with_logits(one(x).squeeze(1), y.float())
    ce = F.cross_entropy(two(x), y)
    assert torch.allclose(bce, ce)  # the same function at the start
    bce.backward()
    ce.backward()
    assert torch.allclose(two.weight.grad[0], -two.weight.grad[1], atol=1e-7)  # +g x and -g x
    assert torch.allclose(two.weight.grad[1], one.weight.grad[0], atol=1e-7)
    difference_grad = two.weight.grad[1] - two.weight.grad[0]
    assert torch.allclose(difference_grad, 2 * one.weight.grad[0], atol=1e-7)
    assert torch.allclose(snippet.step_two, 2 * snippet.step_one)  # the page's example


def test_weight_decay_and_initialization_act_on_each_row_not_on_the_difference():
    torch.manual_seed(0)
    two = torch.nn.Linear(4, 2)
    with torch.no_grad():
        two.weight[1] = two.weight[0]  # difference 0: the same function for every weight decay
    before = two.weight.detach().clone()
    (0 * two.weight.sum()).backward()
    torch.optim.SGD(two.parameters(), lr=0.1, weight_decay=0.5).step()
    assert torch.allclose(two.weight, 0.95 * before)  # both rows decay, though w1 - w0 was 0
    # initialization: each row drawn on its own, so w1 - w0 spreads sqrt(2) times as wide
    torch.manual_seed(0)
    rows = torch.nn.Linear(100_000, 2).weight.detach()
    ratio = (rows[1] - rows[0]).std() / rows[0].std()
    assert ratio.item() == pytest.approx(math.sqrt(2), rel=0.02)


def test_float32_sigmoid_rounds_to_one_from_the_value_in_the_snippet_comment_and_the_prose():
    below, first = _boundary(lambda v: _sigmoid_of(v) == 1.0, 16.0, 17.0)
    assert _sigmoid_of(below) < 1.0 and _sigmoid_of(first) == 1.0
    comment = f"rounds to exactly 1.0 from about z = {first:.2f} on"
    assert comment in inspect.getsource(snippet)
    assert _in_both_pages(rf"$z \approx {first:.1f}$")


def test_only_positive_logits_below_about_1e_7_have_a_sigmoid_of_exactly_one_half():
    last, above = _boundary(lambda v: _sigmoid_of(v) == 0.5, 1e-9, 1e-6)
    assert _sigmoid_of(above) > 0.5
    assert _in_both_pages(f"$10^{{{round(math.log10(last))}}}$")  # the prose: about 10^-7
    z = torch.logspace(-45, -6, 100_000)  # positive float32 logits, subnormals included
    assert torch.equal(torch.sigmoid(z) == 0.5, z <= last)  # every one up to `last`
    assert not torch.equal(z > 0, torch.sigmoid(z) > 0.5)
    # negative logits near 0: sigmoid 0.5 or less, so both tests say "no label"
    assert torch.equal(-z > 0, torch.sigmoid(-z) > 0.5)


def test_channel_pos_weight_for_dense_targets_must_have_shape_c_1_1():
    torch.manual_seed(0)
    weight = torch.tensor([1.0, 5.0, 10.0])
    x, t = torch.randn(2, 3, 4, 4), (torch.rand(2, 3, 4, 4) < 0.2).float()
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match .* dimension 3"):
        F.binary_cross_entropy_with_logits(x, t, pos_weight=weight)
    x, t = torch.randn(2, 3, 3, 3), (torch.rand(2, 3, 3, 3) < 0.2).float()

    def weighted(w):
        return -(w * t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x)).mean()

    per_channel = F.binary_cross_entropy_with_logits(x, t, pos_weight=weight.view(3, 1, 1))
    flat = F.binary_cross_entropy_with_logits(x, t, pos_weight=weight)  # W == C: no error
    assert torch.allclose(per_channel, weighted(weight.view(1, 3, 1, 1)))
    assert torch.allclose(flat, weighted(weight.view(1, 1, 1, 3)))  # applied along W
    assert not torch.allclose(flat, per_channel)
