"""Every statement of docs/basics/common_mistakes*.md about PyTorch, asserted."""

import io
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from basics.common_mistakes import (
    adam,
    double,
    features,
    labels,
    parameters_after,
    right,
    wrong,
)

# `wrong`, `right` and `double` are the three training runs shown on the page:
# {step: (loss, accuracy)} for nll_loss(logits), cross_entropy(logits), cross_entropy(softmax).
LATER_STEPS = [10, 20, 50, 100, 200, 300]


def floor(c):
    return -1 + math.log(math.e + c - 1)


# --- Raw logits into NLLLoss --------------------------------------------------------------------


def test_the_data_has_three_balanced_classes():
    assert features.shape == (300, 2)
    assert torch.bincount(labels).tolist() == [100, 100, 100]


def test_nll_of_raw_logits_falls_below_zero_and_keeps_falling():
    losses = [wrong[step][0] for step in LATER_STEPS]
    assert losses[0] < 0
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] == -math.inf or losses[-1] < -1e20


def test_nll_of_raw_logits_stays_at_chance_while_cross_entropy_learns():
    for step in LATER_STEPS:
        assert 0.25 < wrong[step][1] < 0.42, step  # chance level is 1/3
    assert right[300][1] > 0.9
    assert right[300][0] < right[10][0] < right[0][0]


@pytest.mark.parametrize("c", [10.0, 100.0, -3.0])
def test_a_constant_on_every_logit_lowers_nll_by_that_constant_only(c):
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    assert torch.allclose(F.nll_loss(x + c, y), F.nll_loss(x, y) - c)
    assert torch.allclose(F.cross_entropy(x + c, y), F.cross_entropy(x, y), atol=1e-5)
    assert torch.equal((x + c).argmax(1), x.argmax(1))
    assert torch.allclose(torch.softmax(x + c, 1), torch.softmax(x, 1), atol=1e-6)


def test_the_fix_gives_the_same_value_either_way():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    assert torch.equal(F.nll_loss(F.log_softmax(x, dim=1), y), F.cross_entropy(x, y))


# --- Double softmax -----------------------------------------------------------------------------


@pytest.mark.parametrize("c", [2, 3, 10, 1000])
def test_double_softmax_loss_is_trapped_in_a_band_of_width_one(c):
    target = torch.tensor([0])
    best = F.cross_entropy(F.one_hot(torch.tensor([0]), c).float(), target).item()
    worst = F.cross_entropy(F.one_hot(torch.tensor([1]), c).float(), target).item()
    assert best == pytest.approx(floor(c), abs=1e-5)
    assert worst == pytest.approx(math.log(math.e + c - 1), abs=1e-5)
    assert worst - best == pytest.approx(1.0, abs=1e-5)
    torch.manual_seed(c)
    p = torch.softmax(10 * torch.randn(500, c), dim=1)  # any probabilities at all
    losses = F.cross_entropy(p, torch.randint(0, c, (500,)), reduction="none")
    assert (losses >= floor(c) - 1e-5).all() and (losses <= floor(c) + 1 + 1e-5).all()


def test_double_softmax_shrinks_the_gradient_of_a_confident_wrong_sample():
    target = torch.tensor([1])
    grads = []
    for softmax_first in [False, True]:
        logits = torch.tensor([[4.0, 0.0, -4.0]], requires_grad=True)
        inputs = logits.softmax(dim=1) if softmax_first else logits
        F.cross_entropy(inputs, target).backward()
        grads.append(logits.grad[0])
    plain, doubled = grads
    assert plain[0] > 0.95 and plain[1] < -0.95
    assert doubled.abs().max() < 0.05
    assert doubled.norm() < plain.norm() / 20


def test_double_softmax_trains_slowly_and_never_goes_below_the_floor():
    assert all(loss >= floor(3) for loss, *_ in double.values())
    assert double[300][1] > 0.9  # it does train
    for step in [1, 2]:
        assert double[step][1] > right[step][1]  # ahead at steps 1 and 2
    for step in [5, 10, 20, 50, 100]:
        assert double[step][1] < right[step][1]  # but more slowly from step 5 to step 100
    for step in [200, 300]:  # caught up, to within one sample of 300
        assert abs(double[step][1] - right[step][1]) <= 1 / len(labels) + 1e-6
    assert double[300][0] > right[300][0]


# --- log(softmax) -------------------------------------------------------------------------------


def test_log_of_softmax_gives_inf_and_nan_where_log_softmax_is_exact():
    target = torch.tensor([[0]])
    logits = torch.tensor([[0.0, 120.0, 0.0]], requires_grad=True)
    loss = -torch.log(torch.softmax(logits, dim=1)).gather(1, target).mean()
    loss.backward()
    assert loss.item() == math.inf and torch.isnan(logits.grad).all()
    logits.grad = None
    loss = -F.log_softmax(logits, dim=1).gather(1, target).mean()
    loss.backward()
    assert loss.item() == 120.0
    assert torch.allclose(logits.grad, torch.tensor([[-1.0, 1.0, 0.0]]))


# --- Target dtype and shape ---------------------------------------------------------------------


def _logits():
    torch.manual_seed(0)
    return torch.randn(4, 3), torch.tensor([0, 2, 1, 2])


def test_float_class_indices_raise_and_long_fixes_it():
    x, y = _logits()
    with pytest.raises(
        RuntimeError, match="expected target dtype to be Long or Byte, but got Float"
    ):
        F.cross_entropy(x, y.float())
    assert torch.equal(F.cross_entropy(x, y.float().long()), F.cross_entropy(x, y))


def test_column_target_raises_and_squeeze_fixes_it():
    x, y = _logits()
    with pytest.raises(RuntimeError, match="0D or 1D target tensor expected, multi-target"):
        F.cross_entropy(x, y[:, None])
    assert torch.equal(F.cross_entropy(x, y[:, None].squeeze(1)), F.cross_entropy(x, y))
    assert torch.equal(F.cross_entropy(x, y[:, None].view(-1)), F.cross_entropy(x, y))


def test_integer_one_hot_raises_and_argmax_or_float_fix_it():
    x, y = _logits()
    one_hot = F.one_hot(y, num_classes=3)
    assert one_hot.dtype == torch.int64
    match = "Expected floating point type for target with class probabilities, got Long"
    with pytest.raises(RuntimeError, match=match):
        F.cross_entropy(x, one_hot)
    assert torch.equal(F.cross_entropy(x, one_hot.argmax(dim=1)), F.cross_entropy(x, y))
    assert torch.allclose(F.cross_entropy(x, one_hot.float()), F.cross_entropy(x, y))
    F.cross_entropy(x, one_hot.argmax(dim=1), ignore_index=1)  # indices allow ignore_index


def test_gather_needs_a_two_dimensional_index_and_n1_broadcasts_silently():
    x, y = _logits()
    log_probs = F.log_softmax(x, dim=1)
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions"):
        log_probs.gather(1, y)
    picked = log_probs.gather(1, y.unsqueeze(1))
    alpha = torch.tensor([0.25, 0.5, 0.25])
    assert picked.shape == (4, 1)
    assert (picked * alpha[y]).shape == (4, 4)  # no error
    assert (picked.squeeze(1) * alpha[y]).shape == (4,)
    assert torch.allclose(-picked.squeeze(1), F.cross_entropy(x, y, reduction="none"))


def test_backward_on_an_unreduced_loss_raises():
    x, y = _logits()
    x.requires_grad_(True)
    loss = F.cross_entropy(x, y, reduction="none")
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        loss.backward()
    loss.mean().backward()
    assert x.grad.shape == (4, 3)


# --- A scalar alpha -----------------------------------------------------------------------------


def test_a_scalar_scales_every_sample_alike_and_class_weights_do_not():
    torch.manual_seed(0)
    x, y = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    ce = F.cross_entropy(x, y, reduction="none")
    assert torch.allclose(0.25 * ce / ce, torch.full((6,), 0.25))
    w = torch.tensor([0.5, 2.0, 2.0])
    assert torch.allclose(F.cross_entropy(x, y, weight=w, reduction="none") / ce, w[y])


def test_with_sgd_a_scalar_alpha_is_a_learning_rate_and_with_adam_almost_nothing():
    assert torch.allclose(
        parameters_after(torch.optim.SGD, scale=0.25, lr=0.1),
        parameters_after(torch.optim.SGD, scale=1.0, lr=0.025),
    )
    adam_alpha = parameters_after(torch.optim.Adam, scale=0.25, lr=0.01)
    adam_plain = parameters_after(torch.optim.Adam, scale=1.0, lr=0.01)
    assert torch.allclose(adam_alpha, adam_plain)
    # while SGD with the same learning rate does move differently
    assert not torch.allclose(
        parameters_after(torch.optim.SGD, scale=0.25, lr=0.1),
        parameters_after(torch.optim.SGD, scale=1.0, lr=0.1),
    )


# --- ignore_index set to a real class (issue #63004) --------------------------------------------


def test_an_ignored_real_class_stays_in_the_softmax():
    logits = torch.zeros(3, 3, requires_grad=True)
    target = torch.tensor([0, 1, 2])
    loss = F.cross_entropy(logits, target, ignore_index=2)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(3))
    assert (logits.grad[:2, 2] > 0).all()  # the ignored class's logit is still pushed down
    assert logits.grad[2].abs().sum() == 0  # the ignored sample itself gives no gradient
    kept = target != 2
    assert F.cross_entropy(logits[kept][:, :2], target[kept]).item() == pytest.approx(math.log(2))
    masked = logits.masked_fill(torch.tensor([False, False, True]), float("-inf"))
    assert F.cross_entropy(masked, target, ignore_index=2).item() == pytest.approx(math.log(2))


# --- Missing import -----------------------------------------------------------------------------


def test_missing_import_fails_at_the_first_forward_pass_not_at_definition():
    definition = (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 3)\n"
        "    def forward(self, x):\n        return F.relu(self.fc(x))\n"
    )
    namespace = {}
    exec(definition, namespace)  # defining the class works
    with pytest.raises(NameError, match="name 'F' is not defined"):
        exec("Net()(torch.zeros(1, 2))", namespace)
    exec("import torch.nn.functional as F\n" + definition + "Net()(torch.zeros(1, 2))", {})


# --- Target dtypes, labels from 1, the first steps of the NLL run, SGD variants ------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8])
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_on_the_cpu_int64_and_uint8_class_indices_work(dtype, loss):
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    assert torch.equal(loss(x, y.to(dtype)), loss(x, y))


@pytest.mark.parametrize(
    "dtype, name",
    [(torch.int32, "Int"), (torch.int16, "Short"), (torch.int8, "Char"), (torch.bool, "Bool")],
)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_on_the_cpu_other_integer_dtypes_raise(dtype, name, loss):
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    with pytest.raises(
        RuntimeError, match=f"expected target dtype to be Long or Byte, but got {name}"
    ):
        loss(x, y.to(dtype))


def test_labels_from_one_raise_only_for_the_label_c_and_are_silently_shifted_otherwise():
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F.cross_entropy(x, torch.tensor([1, 3, 2, 3]))
    silent = F.cross_entropy(x, torch.tensor([1, 2, 2, 1]))  # no error: read as classes 1 and 2
    assert math.isfinite(silent.item())
    assert torch.equal(F.cross_entropy(x, torch.tensor([1, 3, 2, 3]) - 1),
                       F.cross_entropy(x, torch.tensor([0, 2, 1, 2])))  # fmt: skip


def test_the_nll_run_first_rises_above_chance_then_falls_back():
    assert wrong[1][1] > 0.5  # after one step: well above 1/3
    assert max(wrong[step][1] for step in LATER_STEPS) < 0.42
    assert wrong[1][0] < 0  # the loss is already negative


def test_a_cross_entropy_is_never_negative():
    torch.manual_seed(0)
    x, y = 50 * torch.randn(1000, 5), torch.randint(0, 5, (1000,))
    assert (F.cross_entropy(x, y, reduction="none") >= 0).all()


def test_with_sgd_momentum_a_scalar_is_still_a_learning_rate_but_not_with_weight_decay():
    def after(scale, lr, **kwargs):
        return parameters_after(
            lambda p, lr: torch.optim.SGD(p, lr=lr, **kwargs), scale=scale, lr=lr
        )

    assert torch.allclose(after(0.25, 0.1, momentum=0.9), after(1.0, 0.025, momentum=0.9))
    assert not torch.allclose(
        after(0.25, 0.1, weight_decay=0.5), after(1.0, 0.025, weight_decay=0.5), atol=1e-4
    )


# --- Review basicsA: the NLL run's collapse, label dtypes, range checks, Adam's weight_decay ------


def test_the_nll_run_grows_every_logit_and_predicts_almost_every_sample_as_one_class():
    start = wrong[0][2].mean(dim=0)
    for step in [10, 20, 50]:
        logits = wrong[step][2]
        assert (logits.mean(dim=0) > start + 10).all(), step  # every class's logits grow
        counts = torch.bincount(logits.argmax(dim=1), minlength=3)
        assert counts.max() >= 0.9 * len(labels), step  # almost every sample: one class
        assert counts.argmax() == logits.mean(dim=0).argmax(), step  # the fastest-growing one
    one_class = (torch.zeros_like(labels) == labels).float().mean().item()
    assert one_class == pytest.approx(1 / 3)  # balanced: predicting one class gives 1/3


def test_numpy_text_readers_give_float_labels_that_the_loss_rejects():
    text = "0\n2\n1\n2\n"
    for read in [np.loadtxt, np.genfromtxt]:
        values = read(io.StringIO(text))
        assert values.dtype == np.float64
        with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
            F.cross_entropy(torch.randn(4, 3), torch.from_numpy(values))


def test_uint8_labels_wrap_silently_and_padding_is_no_longer_ignored():
    labels_int64 = torch.tensor([3, 255, 256, 300, -100])
    converted = labels_int64.to(torch.uint8)  # no error, no warning
    assert converted.tolist() == (labels_int64 % 256).tolist()
    assert not torch.equal(converted.long(), labels_int64)
    padded = torch.tensor([0, 2, -100, 1])
    x = torch.randn(4, 3)
    F.cross_entropy(x, padded)  # int64: -100 is ignored
    with pytest.raises(IndexError, match="Target 156 is out of bounds"):
        F.cross_entropy(x, padded.to(torch.uint8))


def test_the_range_check_must_leave_out_the_ignore_index():
    c, ignore_index = 3, -100
    padded = torch.tensor([0, 2, -100, 1, -100])  # valid labels with padding
    assert not padded.min() >= 0  # the unmasked check rejects valid data
    for target, valid in [(padded, True), (torch.tensor([1, 3, -100, 2]), False)]:
        t = target[target != ignore_index]
        assert bool(t.min() >= 0 and t.max() < c) is valid
        if valid:
            F.cross_entropy(torch.randn(len(target), c), target)
        else:
            with pytest.raises(IndexError):
                F.cross_entropy(torch.randn(len(target), c), target)


def test_with_adam_weight_decay_a_scalar_alpha_scales_the_regularization_by_one_over_alpha():
    scaled = parameters_after(adam(0.1), scale=0.25, lr=0.01)
    plain = parameters_after(adam(0.1), scale=1.0, lr=0.01)
    assert (scaled - plain).abs().max() > 0.1  # a large difference, not rounding
    assert torch.allclose(scaled, parameters_after(adam(0.4), scale=1.0, lr=0.01))
    decoupled = [parameters_after(adam(0.1, True), scale=s, lr=0.01) for s in (0.25, 1.0)]
    assert torch.allclose(*decoupled)
