"""Property checks shared by the tests of the custom losses in snippets/losses/.

Every check takes `loss`, a callable `loss(input, target, **kwargs) -> Tensor` that follows the
conventions of F.cross_entropy: logits `input` of shape (N, C) or (N, C, d1, ..., dk), integer
class indices `target` of shape (N,) or (N, d1, ..., dk). Keyword arguments given to a check
are passed on to `loss` on every call (for example `gamma=2.0`). Checks that use `reduction`
or `ignore_index` pass them as keyword arguments, so give them only losses that accept them.
A check returns nothing and fails with an AssertionError that says what went wrong.

    from tests.support.loss_properties import check_gradcheck, check_reductions
    check_gradcheck(my_loss, margin=1.0)
"""

import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Loss = Callable[..., Tensor]
REDUCTIONS = ("none", "sum", "mean")


def make_batch(
    n: int = 6,
    c: int = 4,
    *spatial: int,
    dtype: torch.dtype = torch.float64,
    scale: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Random logits (n, c, *spatial) times `scale` and random targets (n, *spatial)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, *spatial, generator=generator, dtype=torch.float64) * scale
    target = torch.randint(c, (n, *spatial), generator=generator)
    return logits.to(dtype), target


def check_gradcheck(loss: Loss, *, n: int = 4, c: int = 3, spatial=(), **kwargs) -> None:
    """torch.autograd.gradcheck in float64, for the loss summed if it is not a scalar."""
    logits, target = make_batch(n, c, *spatial, dtype=torch.float64)
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: loss(x, target, **kwargs).sum(), (logits,))


def check_reductions(
    loss: Loss,
    logits: Tensor,
    target: Tensor,
    *,
    denominator: Tensor | float | None = None,
    **kwargs,
) -> None:
    """ "none", "sum" and "mean" agree: sum == none.sum() and mean == sum / denominator.

    `denominator` defaults to the number of elements of "none" (a plain mean); pass the sum of
    the class weights of the non-ignored elements for a weighted mean like F.cross_entropy's.
    """
    none = loss(logits, target, reduction="none", **kwargs)
    total = loss(logits, target, reduction="sum", **kwargs)
    mean = loss(logits, target, reduction="mean", **kwargs)
    assert none.shape == target.shape, f"'none' has shape {tuple(none.shape)}"
    assert total.shape == mean.shape == (), "'sum' and 'mean' must be scalars"
    torch.testing.assert_close(total, none.sum())
    expected = total / (none.numel() if denominator is None else denominator)
    torch.testing.assert_close(mean, torch.as_tensor(expected, dtype=mean.dtype))


def check_reductions_with_an_ignored_element(
    loss: Loss, *spatial: int, weight: Tensor | None = None, **kwargs
) -> None:
    """check_reductions on a batch (6, 4, *spatial) with one ignored element (-100): "mean"
    divides by the number of kept elements, and with `weight` by the sum of their weights."""
    logits, target = make_batch(6, 4, *spatial)
    target.view(-1)[1] = -100
    valid = target != -100
    check_reductions(loss, logits, target, denominator=valid.sum(), **kwargs)
    if weight is not None:
        denominator = weight[target.clamp_min(0)][valid].sum()
        check_reductions(loss, logits, target, denominator=denominator, weight=weight, **kwargs)


def check_ignore_index(
    loss: Loss, logits: Tensor, target: Tensor, *, ignore_index: int = -100, **kwargs
) -> None:
    """Ignored elements get zero loss and zero gradient, and the others are unaffected.

    Marks every other element of `target` as `ignore_index`. The "sum" of the batch must equal
    the "sum" over the kept elements alone, computed without any ignored element.
    """
    flat_logits = logits.movedim(1, -1).reshape(-1, logits.shape[1])  # (M, C)
    flat_target = target.reshape(-1).clone()
    ignored = torch.arange(flat_target.numel()) % 2 == 1
    flat_target[ignored] = ignore_index
    x = flat_logits.detach().clone().requires_grad_()
    none = loss(x, flat_target, ignore_index=ignore_index, reduction="none", **kwargs)
    assert torch.all(none[ignored] == 0), "ignored elements must have zero loss"
    none.sum().backward()
    assert torch.all(x.grad[ignored] == 0), "ignored elements must have zero gradient"
    assert torch.any(x.grad[~ignored] != 0), "kept elements must have a gradient"
    kept = loss(
        flat_logits[~ignored],
        flat_target[~ignored],
        ignore_index=ignore_index,
        reduction="sum",
        **kwargs,
    )
    with_ignored = loss(
        flat_logits, flat_target, ignore_index=ignore_index, reduction="sum", **kwargs
    )
    torch.testing.assert_close(with_ignored, kept)


def check_all_ignored_like_cross_entropy(
    loss: Loss, *, n: int = 3, c: int = 4, ignore_index: int = -100, **kwargs
) -> None:
    """With every target ignored, "mean" is nan and "sum" is 0, as F.cross_entropy gives.

    "none" is all zeros; the gradient of "sum" is all zeros. The F.cross_entropy behavior is
    asserted too, so that a change in PyTorch shows up here.
    """
    logits, _ = make_batch(n, c, dtype=torch.float32)
    target = torch.full((n,), ignore_index)
    ce_mean = F.cross_entropy(logits, target, ignore_index=ignore_index)
    ce_sum = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    assert torch.isnan(ce_mean) and ce_sum == 0, "F.cross_entropy changed its behavior"
    mean = loss(logits, target, ignore_index=ignore_index, reduction="mean", **kwargs)
    assert torch.isnan(mean), f"'mean' of an all-ignored batch is {mean.item()}, not nan"
    x = logits.clone().requires_grad_()
    total = loss(x, target, ignore_index=ignore_index, reduction="sum", **kwargs)
    assert total == 0, f"'sum' of an all-ignored batch is {total.item()}, not 0"
    total.backward()
    assert torch.all(x.grad == 0)
    none = loss(logits, target, ignore_index=ignore_index, reduction="none", **kwargs)
    assert torch.all(none == 0)


def check_extreme_logits(loss: Loss, *, magnitude: float = 1e4, n: int = 8, c: int = 5, **kwargs):
    """float32 logits of magnitude `magnitude` (confidently right and wrong): finite loss and
    gradient, and a loss of magnitude about `magnitude` for the confidently wrong samples."""
    generator = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (n, c), generator=generator).float() * 2 - 1
    logits = (signs * magnitude).requires_grad_()
    target = torch.randint(c, (n,), generator=generator)
    value = loss(logits, target, **kwargs)
    assert torch.isfinite(value).all(), f"loss is {value}"
    value.sum().backward()
    assert torch.isfinite(logits.grad).all(), "gradient is not finite"


def check_low_precision(loss: Loss, dtype: torch.dtype, *, spatial=(), **kwargs) -> None:
    """float16/bfloat16 logits work, the loss and the gradient come back in that dtype, and the
    value is the float32 loss of the same (rounded) logits, to the precision of the dtype."""
    logits, target = make_batch(8, 5, *spatial, dtype=dtype, scale=3.0)
    x = logits.clone().requires_grad_()
    value = loss(x, target, **kwargs)
    assert value.dtype == dtype, f"returned {value.dtype} for {dtype} input"
    value.sum().backward()
    assert x.grad.dtype == dtype
    reference = loss(logits.float(), target, **kwargs)
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    torch.testing.assert_close(value.float(), reference, rtol=tolerance, atol=tolerance)


def check_computes_in_float32(loss: Loss, dtype: torch.dtype, **kwargs) -> None:
    """A float16/bfloat16 input gives exactly the float32 loss of the same logits, rounded to
    `dtype`: the loss is computed in float32 and only the result is cast (stricter than
    check_low_precision, for losses whose float32 path is the same code)."""
    logits, target = make_batch(8, 5, dtype=dtype, scale=3.0)
    value = loss(logits, target, **kwargs)
    reference = loss(logits.float(), target, **kwargs).to(dtype)
    assert torch.equal(value, reference), f"{value} != {reference}"


def check_spatial(loss: Loss, *, spatial=(3, 2), **kwargs) -> None:
    """(N, C, d1, ..., dk) input equals the flattened (N * d1 * ... * dk, C) input, for every
    reduction the loss accepts through `kwargs` (pass reduction=... to pick one)."""
    logits, target = make_batch(2, 4, *spatial, dtype=torch.float64)
    flat_logits = logits.movedim(1, -1).reshape(-1, logits.shape[1])
    value = loss(logits, target, **kwargs)
    flat = loss(flat_logits, target.reshape(-1), **kwargs)
    torch.testing.assert_close(value.reshape(-1) if value.dim() else value, flat)


def _bad_input() -> dict[str, tuple[Callable[[Loss], object], type, str]]:
    logits, target = make_batch(4, 3, dtype=torch.float32)
    spatial = torch.randn(2, 3, 4)
    return {
        "float target": (
            lambda loss: loss(logits, target.float()),
            ValueError,
            r"^target must hold integer class indices \(torch\.int64\), got torch\.float32$",
        ),
        "bool target": (
            lambda loss: loss(logits, target.bool()),
            ValueError,
            r"^target must hold integer class indices \(torch\.int64\), got torch\.bool$",
        ),
        "class index C": (
            lambda loss: loss(logits, torch.tensor([0, 1, 3, 1])),
            IndexError,
            r"^target 3 is out of bounds: target must be in \[0, 3\)",
        ),
        "negative class index": (
            lambda loss: loss(logits, torch.tensor([0, -1, 2, 1])),
            IndexError,
            r"^target -1 is out of bounds: target must be in \[0, 3\)",
        ),
        "target of another length": (
            lambda loss: loss(logits, torch.tensor([0, 1, 2])),
            ValueError,
            r"^target must have shape \(4,\) for input of shape \(4, 3\), got \(3,\)$",
        ),
        "spatial target of another shape": (
            lambda loss: loss(spatial, torch.zeros(2, 5, dtype=torch.long)),
            ValueError,
            r"^target must have shape \(2, 4\) for input of shape \(2, 3, 4\), got \(2, 5\)$",
        ),
        "target with a class dimension": (
            lambda loss: loss(logits, target.unsqueeze(1)),
            ValueError,
            r"^target must have shape \(4,\) for input of shape \(4, 3\), got \(4, 1\)$",
        ),
        "integer input": (
            lambda loss: loss(logits.long(), target),
            ValueError,
            r"^input must be a floating-point tensor of logits, got torch\.int64$",
        ),
        "1-D input": (
            lambda loss: loss(torch.randn(3), torch.tensor(0)),
            ValueError,
            r"^input must have shape \(N, C, d1, \.\.\., dk\), got \(3,\)$",
        ),
        "unknown reduction": (
            lambda loss: loss(logits, target, reduction="avg"),
            ValueError,
            r"^reduction must be 'none', 'mean' or 'sum', got 'avg'$",
        ),
    }


# Bad input that every loss of the chapter taking (input, target) as F.cross_entropy does rejects,
# with the one wording the chapter uses for each error (its copied _check_inputs and
# check_logits_and_target helpers). `loss` is called as loss(input, target, **kwargs) on 3 classes.
BAD_INPUT = _bad_input()


def check_bad_input(loss: Loss, case: str) -> None:
    """`loss` raises the chapter's error, worded the chapter's way, for the bad input `case`."""
    call, error, match = BAD_INPUT[case]
    try:
        call(loss)
    except error as raised:
        assert re.search(match, str(raised)), f"{case}: {error.__name__}({str(raised)!r})"
    else:
        raise AssertionError(f"{case}: no {error.__name__}")
