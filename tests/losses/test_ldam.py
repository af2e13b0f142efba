"""LDAM loss and DRW: snippets/losses/ldam.py and the claims of docs/losses/ldam.md."""

import re

import pytest
import torch
import torch.nn.functional as F
from losses import ldam
from losses.class_balanced import class_balanced_weights
from losses.ldam import LDAMLoss

from tests.support import loss_properties as props
from tests.support.sections import run_sections

COUNTS = [5000, 500, 50, 5]


def reference_ldam(cosine, target, counts, max_margin, scale, weight=None):
    """An independent formula: margins from the paper, a one-hot subtraction, F.cross_entropy."""
    counts = torch.tensor(counts, dtype=torch.float64)
    margins = max_margin * (counts.min() / counts) ** 0.25
    one_hot = F.one_hot(target, len(counts)).to(cosine.dtype)
    shifted = cosine - one_hot * margins.to(cosine.dtype)
    return F.cross_entropy(scale * shifted, target, weight=weight)


def adapter(criterion):
    """LDAMLoss as loss(input, target, **kwargs) for the shared checks (always "mean")."""

    def loss(x, t, ignore_index=-100, reduction="mean"):
        assert ignore_index == -100 and reduction == "mean"
        return criterion(x, t)

    return loss


def test_margins_are_proportional_to_n_to_the_minus_quarter_and_max_is_max_margin():
    criterion = LDAMLoss(COUNTS, max_margin=0.5)
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    expected = counts**-0.25 / (counts**-0.25).max() * 0.5
    torch.testing.assert_close(criterion.margins, expected.float())
    assert criterion.margins.max() == pytest.approx(0.5)
    assert criterion.margins.argmax() == 3  # the rarest class


def test_matches_an_independent_formula():
    torch.manual_seed(0)
    cosine = (torch.rand(9, 4, dtype=torch.float64) * 2 - 1).requires_grad_()
    target = torch.tensor([0, 1, 2, 3, 0, 0, 1, 3, 2])
    weight = class_balanced_weights(COUNTS, beta=0.9999).double()
    for kwargs in ({}, {"weight": weight}):
        criterion = LDAMLoss(COUNTS, max_margin=0.4, scale=20.0, **kwargs).double()
        expected = reference_ldam(cosine, target, COUNTS, 0.4, 20.0, kwargs.get("weight"))
        torch.testing.assert_close(criterion(cosine, target), expected)


def test_zero_margin_and_unit_scale_is_cross_entropy():
    logits, target = props.make_batch(6, 4, 2, dtype=torch.float32)
    target[0, 0] = -100
    criterion = LDAMLoss(COUNTS, max_margin=0.0, scale=1.0)
    torch.testing.assert_close(criterion(logits, target), F.cross_entropy(logits, target))
    criterion = LDAMLoss(COUNTS, max_margin=0.0, scale=30.0)
    torch.testing.assert_close(criterion(logits, target), F.cross_entropy(30 * logits, target))


def test_gradcheck_float64():
    criterion = LDAMLoss([30, 10, 3]).double()
    props.check_gradcheck(adapter(criterion))
    weighted = LDAMLoss([30, 10, 3], weight=torch.tensor([0.5, 1.0, 2.0])).double()
    props.check_gradcheck(adapter(weighted), spatial=(2,))


def test_finite_for_float32_logits_of_magnitude_1e4():
    props.check_extreme_logits(adapter(LDAMLoss([5, 4, 3, 2, 1])), magnitude=1e4)


def test_ignored_targets_are_masked_like_cross_entropy():
    logits, target = props.make_batch(8, 4)
    criterion = LDAMLoss(COUNTS).double()
    x = logits.clone().requires_grad_()
    masked = target.clone()
    masked[::2] = -100
    criterion(x, masked).backward()
    assert torch.all(x.grad[::2] == 0)
    torch.testing.assert_close(criterion(logits, masked), criterion(logits[1::2], target[1::2]))


def test_all_ignored_behaves_like_cross_entropy():
    # LDAMLoss reduces with "mean"; its all-ignored mean is nan like CrossEntropyLoss's.
    logits = torch.randn(3, 4)
    assert torch.isnan(LDAMLoss(COUNTS)(logits, torch.full((3,), -100)))
    assert torch.isnan(F.cross_entropy(logits, torch.full((3,), -100)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(dtype):
    criterion = LDAMLoss([9, 8, 7, 3, 1], scale=5.0)
    props.check_low_precision(adapter(criterion), dtype)
    props.check_low_precision(adapter(criterion), dtype, spatial=(2,))


def test_spatial_input():
    props.check_spatial(adapter(LDAMLoss(COUNTS).double()))


def test_mean_is_weighted_like_cross_entropy():
    logits, target = props.make_batch(8, 4)
    weight = class_balanced_weights(COUNTS, beta=0.999).double()
    criterion = LDAMLoss(COUNTS, weight=weight).double()
    unweighted = LDAMLoss(COUNTS).double()
    per_sample = torch.stack([unweighted(logits[i : i + 1], target[i : i + 1]) for i in range(8)])
    w_y = weight[target]
    torch.testing.assert_close(criterion(logits, target), (w_y * per_sample).sum() / w_y.sum())


def test_drw_by_assigning_the_weight_buffer():
    criterion = LDAMLoss(COUNTS)
    assert criterion.weight is None
    logits, target = props.make_batch(8, 4, dtype=torch.float32)
    before = criterion(logits, target)
    criterion.weight = class_balanced_weights(COUNTS, beta=0.9999)
    assert "weight" in criterion.state_dict() and "weight" in dict(criterion.named_buffers())
    after = criterion(logits, target)
    expected = LDAMLoss(COUNTS, weight=class_balanced_weights(COUNTS, beta=0.9999))(logits, target)
    torch.testing.assert_close(after, expected)
    assert not torch.allclose(before, after)
    assert criterion.to(torch.float64).weight.dtype == torch.float64


def test_drw_section_switches_the_weight_at_the_given_epoch(capsys):
    session = {"class_balanced_weights": class_balanced_weights}  # the page runs it first
    namespace = run_sections(ldam.__file__, "ldam", "helpers", "margins", "drw", namespace=session)
    assert namespace["drw_epoch"] == 160 and namespace["epochs"] == 200
    torch.testing.assert_close(
        namespace["criterion"].weight, class_balanced_weights(COUNTS, beta=0.9999)
    )
    printed = capsys.readouterr().out
    assert "epoch 159: weight = None" in printed and "epoch 160: weight = [" in printed


@pytest.mark.slow
def test_toy_experiment_deferred_reweighting_does_most_of_the_work(capsys):
    # The page: on the toy, DRW raises balanced accuracy by more than 0.1 (with or without the
    # margins); the margins alone change it by less than 0.02.
    session = {"class_balanced_weights": class_balanced_weights}  # the page runs it first
    run_sections(ldam.__file__, "ldam", "helpers", "toy", namespace=session)
    printed = capsys.readouterr().out
    accuracy = {
        name: float(value)
        for name, value in re.findall(r"^(\S+)\s+balanced accuracy = ([0-9.]+)$", printed, re.M)
    }
    assert set(accuracy) == {"CE", "CE-DRW", "LDAM", "LDAM-DRW"}, printed
    assert accuracy["CE-DRW"] > accuracy["CE"] + 0.1
    assert accuracy["LDAM-DRW"] > accuracy["LDAM"] + 0.1
    assert abs(accuracy["LDAM"] - accuracy["CE"]) < 0.02


LOGITS = torch.randn(2, 3)
TARGET = torch.tensor([0, 1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: LDAMLoss([100, 0, 5]), ValueError, r"^class_counts must be positive"),
        (lambda: LDAMLoss([[100, 5]]), ValueError, r"^class_counts must be a 1-D"),
        (lambda: LDAMLoss([100, 10, 5], max_margin=-0.5), ValueError, r"^max_margin must be"),
        (lambda: LDAMLoss([100, 10, 5], scale=0.0), ValueError, r"^scale must be"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_equal_counts_give_equal_margins():
    criterion = LDAMLoss([100, 100, 100], max_margin=0.3)
    torch.testing.assert_close(criterion.margins, torch.full((3,), 0.3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input_is_computed_in_float32(dtype):
    props.check_computes_in_float32(adapter(LDAMLoss([9, 8, 7, 3, 1], scale=5.0)), dtype)


def test_weight_assigned_after_to_follows_the_margins_buffer():
    # The page: a weight assigned after .to(device) is converted to the device and dtype of
    # the margins buffer.
    criterion = LDAMLoss(COUNTS).to(device="meta", dtype=torch.float64)
    criterion.weight = class_balanced_weights(COUNTS, beta=0.9999)  # float32 on the CPU
    assert criterion.weight.device.type == "meta" and criterion.weight.dtype == torch.float64
    assert criterion.margins.device.type == "meta"


def test_checkpoint_after_the_switch_loads_only_once_weight_is_a_tensor(capsys):
    # The page: state_dict() holds "weight" only once it is a tensor, so a checkpoint saved after
    # the DRW switch fails to load into a new LDAMLoss (Unexpected key "weight") until a weight
    # is assigned; after that, load_state_dict restores the saved weights.
    session = {"class_balanced_weights": class_balanced_weights}
    run_sections(ldam.__file__, "ldam", "helpers", "margins", "drw", namespace=session)
    capsys.readouterr()
    namespace = run_sections(ldam.__file__, "checkpoint", namespace=session)
    printed = capsys.readouterr().out
    assert list(namespace["saved"]) == ["margins", "weight"]
    assert "weight" not in LDAMLoss(COUNTS).state_dict()
    assert 'RuntimeError: Unexpected key(s) in state_dict: "weight".' in printed
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "weight"'):
        LDAMLoss(COUNTS).load_state_dict(namespace["saved"])
    torch.testing.assert_close(namespace["fresh"].weight, namespace["criterion"].weight)
    assert "loaded after assigning a weight: True" in printed
    passed = LDAMLoss(COUNTS, weight=torch.ones(len(COUNTS)))  # or pass weight=
    passed.load_state_dict(namespace["saved"])
    torch.testing.assert_close(passed.weight, namespace["criterion"].weight)
