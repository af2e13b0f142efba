"""Every statement of docs/basics/binary_and_multilabel*.md about PyTorch, asserted."""

import pytest
import torch
import torch.nn.functional as F

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
    loss, grad = bce_and_gradient(16.5, 0.0, with_logits=False)
    assert loss < 16.0 and grad == pytest.approx(1.0, abs=1e-3)
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
