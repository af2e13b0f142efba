"""snippets/scale/large_vocabulary.py and the claims of docs/scale/large_vocabulary.md.

The chunked function against the naive F.cross_entropy(F.linear(...)), and what PyTorch 2.13's
F.linear_cross_entropy and LinearCrossEntropyOptions do (read from their source, checked here).
"""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from scale.large_vocabulary import (
    DEFAULT_CHUNK_ELEMENTS,
    _ChunkedLinearCrossEntropy,
    chunked_linear_cross_entropy,
    linear_cross_entropy_with_z_loss,
)
from torch.nn import LinearCrossEntropyLoss, LinearCrossEntropyOptions

# Tolerances stated on the page: float32 inputs, and bfloat16 inputs against the naive way
# on the same values upcast to float32 (the chunked function computes in float32).
FLOAT32_TOL = {"rtol": 1e-5, "atol": 1e-6}
BF16_VS_FLOAT32_TOL = {"rtol": 1e-2, "atol": 1e-3}  # one bfloat16 rounding of the outputs
FALLBACK = "``options`` ignored"


def make(n=97, h=16, v=300, dtype=torch.float32, seed=0, bias=False, pad_every=5):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g).to(dtype).requires_grad_()
    weight = (torch.randn(v, h, generator=g) / h**0.5).to(dtype).requires_grad_()
    b = (torch.randn(v, generator=g) * 0.1).to(dtype).requires_grad_() if bias else None
    target = torch.randint(v, (n,), generator=g)
    if pad_every:
        target[::pad_every] = -100
    return hidden, weight, b, target


def grads(loss, *tensors):
    return torch.autograd.grad(loss, [t for t in tensors if t is not None])


def naive(hidden, weight, bias, target, reduction="mean", ignore_index=-100):
    return F.cross_entropy(
        F.linear(hidden, weight, bias), target, reduction=reduction, ignore_index=ignore_index
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 7, 32, 97, 1000, None])
def test_chunked_equals_naive_in_float32(reduction, bias, chunk_size):
    hidden, weight, b, target = make(bias=bias)
    ours = chunked_linear_cross_entropy(
        hidden, weight, target, bias=b, reduction=reduction, chunk_size=chunk_size
    )
    ref = naive(hidden, weight, b, target, reduction)
    torch.testing.assert_close(ours, ref, **FLOAT32_TOL)
    for g_ours, g_ref in zip(
        grads(ours, hidden, weight, b), grads(ref, hidden, weight, b), strict=True
    ):
        torch.testing.assert_close(g_ours, g_ref, **FLOAT32_TOL)


def test_a_custom_ignore_index_is_honored():
    hidden, weight, _, target = make(pad_every=0)
    target[::3] = 7  # class 7 is ignored
    ours = chunked_linear_cross_entropy(hidden, weight, target, ignore_index=7, chunk_size=10)
    torch.testing.assert_close(
        ours, naive(hidden, weight, None, target, ignore_index=7), **FLOAT32_TOL
    )
    # The ignored rows get no gradient.
    (g,) = torch.autograd.grad(
        chunked_linear_cross_entropy(hidden, weight, target, ignore_index=7), hidden
    )
    assert g[target == 7].abs().max() == 0 and g[target != 7].abs().max() > 1e-3


@pytest.mark.parametrize("bias", [False, True])
def test_bfloat16_inputs_match_the_naive_way_on_the_upcast_values(bias):
    hidden, weight, b, target = make(dtype=torch.bfloat16, bias=bias)
    ours = chunked_linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=16)
    assert ours.dtype == torch.bfloat16
    ours_grads = grads(ours, hidden, weight, b)
    assert [g.dtype for g in ours_grads] == [torch.bfloat16] * len(ours_grads)
    up = [
        t.detach().float().requires_grad_() if t is not None else None for t in (hidden, weight, b)
    ]
    ref = naive(*up, target)
    torch.testing.assert_close(ours.float(), ref, **BF16_VS_FLOAT32_TOL)
    for g_ours, g_ref in zip(ours_grads, grads(ref, *up), strict=True):
        torch.testing.assert_close(g_ours.float(), g_ref, **BF16_VS_FLOAT32_TOL)


def test_all_targets_ignored_gives_nan_for_mean_and_zero_for_sum_like_cross_entropy():
    hidden, weight, _, target = make()
    target[:] = -100
    assert math.isnan(chunked_linear_cross_entropy(hidden, weight, target).item())
    assert math.isnan(naive(hidden, weight, None, target).item())
    assert chunked_linear_cross_entropy(hidden, weight, target, reduction="sum").item() == 0.0


def test_only_one_number_per_row_is_saved_for_backward():
    n, h, v = 97, 16, 300
    hidden, weight, b, target = make(n, h, v, bias=True)
    loss = chunked_linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=8)
    saved = loss.grad_fn.saved_tensors
    assert max(t.numel() for t in saved) == v * h  # the head itself, no (N, V) tensor
    new = [t for t in saved if not any(t is x for x in (hidden, weight, b, target))]
    assert max(t.numel() for t in new) <= n  # the log-sum-exp per row, masks, the count


def test_the_default_chunk_has_about_2_to_the_22_logits():
    hidden, weight, _, target = make(n=64, v=2**20 // 64)  # 16384 classes: 256 rows per chunk
    assert DEFAULT_CHUNK_ELEMENTS == 2**22
    loss = chunked_linear_cross_entropy(hidden, weight, target)
    assert loss.grad_fn.chunk_size == 2**22 // weight.shape[0]


@pytest.mark.parametrize(
    ("change", "argument", "error"),
    [
        (lambda a: {**a, "weight": torch.randn(300, 15)}, "weight", "H = hidden.shape[1] = 16"),
        (lambda a: {**a, "weight": a["weight"].double()}, "weight", "dtype of hidden"),
        (lambda a: {**a, "hidden": a["hidden"][0]}, "hidden", "2-D"),
        (lambda a: {**a, "target": a["target"].int()}, "target", "torch.int64"),
        (lambda a: {**a, "target": a["target"].float()}, "target", "torch.int64"),
        (lambda a: {**a, "target": a["target"][:-1]}, "target", "shape (97,)"),
        (lambda a: {**a, "target": a["target"].clone().fill_(300)}, "target", "[0, 300)"),
        (lambda a: {**a, "target": a["target"].clone().fill_(-1)}, "target", "got -1"),
        (lambda a: {**a, "bias": torch.zeros(299)}, "bias", "(300,)"),
        (lambda a: {**a, "reduction": "none"}, "reduction", "'none'"),
        (lambda a: {**a, "chunk_size": 0}, "chunk_size", "positive"),
    ],
)
def test_bad_input_gets_an_error_naming_the_argument(change, argument, error):
    hidden, weight, _, target = make()
    args = change({"hidden": hidden, "weight": weight, "target": target})
    positional = [args.pop(k) for k in ("hidden", "weight", "target")]
    with pytest.raises(ValueError, match=argument) as caught:
        chunked_linear_cross_entropy(*positional, **args)
    assert error in str(caught.value)


def test_z_loss_is_the_coefficient_times_the_mean_squared_log_normalizer():
    hidden, weight, b, target = make(bias=True)
    ce, z = linear_cross_entropy_with_z_loss(
        hidden, weight, target, bias=b, z_loss=1e-3, chunk_size=9
    )
    logits = F.linear(hidden, weight, b)
    log_z = torch.logsumexp(logits, dim=1)[target != -100]
    ref_z = 1e-3 * log_z.square().mean()
    ref_ce = F.cross_entropy(logits, target)
    torch.testing.assert_close(ce, ref_ce, **FLOAT32_TOL)
    torch.testing.assert_close(z, ref_z, **FLOAT32_TOL)
    for g_ours, g_ref in zip(
        grads(ce + z, hidden, weight, b), grads(ref_ce + ref_z, hidden, weight, b), strict=True
    ):
        torch.testing.assert_close(g_ours, g_ref, **FLOAT32_TOL)
    _, z_sum = linear_cross_entropy_with_z_loss(
        hidden, weight, target, z_loss=1e-3, reduction="sum"
    )
    torch.testing.assert_close(
        z_sum, 1e-3 * torch.logsumexp(F.linear(hidden, weight), 1)[target != -100].square().sum()
    )
    with pytest.raises(ValueError, match="z_loss"):
        linear_cross_entropy_with_z_loss(hidden, weight, target, z_loss=-1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradcheck_of_cross_entropy_plus_z_loss_in_float64(reduction):
    hidden, weight, b, target = make(n=9, h=3, v=6, dtype=torch.float64, bias=True, pad_every=4)

    def f(hidden, weight, bias):
        ce, z = _ChunkedLinearCrossEntropy.apply(
            hidden, weight, bias, target, -100, reduction, 4, 0.5
        )
        return ce, z

    assert torch.autograd.gradcheck(f, (hidden, weight, b))


# --- PyTorch's F.linear_cross_entropy / LinearCrossEntropyOptions (torch 2.13) ----------------


def torch_chunked(*args, options=None, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = F.linear_cross_entropy(*args, options=options, **kwargs)
    return out, [str(w.message) for w in caught]


def test_options_none_is_exactly_linear_then_cross_entropy():
    hidden, weight, b, target = make(bias=True)
    ref = naive(hidden, weight, b, target)
    assert torch.equal(F.linear_cross_entropy(hidden, weight, target, linear_bias=b), ref)
    assert F.linear_cross_entropy(hidden, weight, target).grad_fn.name() == "NllLossBackward0"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_the_chunked_path_matches_with_bias_class_weights_and_ignore_index(reduction):
    hidden, weight, b, target = make(bias=True)
    class_weight = torch.rand(weight.shape[0]) + 0.1
    kwargs = {"linear_bias": b, "weight": class_weight, "reduction": reduction}
    out, caught = torch_chunked(
        hidden, weight, target, options=LinearCrossEntropyOptions(batch_chunk_size=10), **kwargs
    )
    assert not caught and "chunked" in out.grad_fn.name()
    ref = F.cross_entropy(
        F.linear(hidden, weight, b), target, weight=class_weight, reduction=reduction
    )
    torch.testing.assert_close(out, ref, **FLOAT32_TOL)
    for g_ours, g_ref in zip(
        grads(out.sum(), hidden, weight, b), grads(ref.sum(), hidden, weight, b), strict=True
    ):
        torch.testing.assert_close(g_ours, g_ref, **FLOAT32_TOL)


def test_the_chunked_path_in_bfloat16_matches_float32():
    hidden, weight, _, target = make(dtype=torch.bfloat16)
    out, caught = torch_chunked(
        hidden, weight, target, options=LinearCrossEntropyOptions(batch_chunk_size=16)
    )
    assert not caught and out.dtype == torch.bfloat16
    ref = naive(hidden.detach().float(), weight.detach().float(), None, target)
    torch.testing.assert_close(out.float(), ref, **BF16_VS_FLOAT32_TOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label_smoothing": 0.1},
        {"target": "probabilities"},
        {"weight_3d": True},
    ],
    ids=["label_smoothing", "probability_targets", "k_dimensional_head"],
)
def test_unsupported_arguments_fall_back_to_the_reference_path_with_a_warning(kwargs):
    hidden, weight, _, target = make()
    kwargs = dict(kwargs)
    if kwargs.pop("target", None):
        target = F.one_hot(target.clamp_min(0), weight.shape[0]).float()
    if kwargs.pop("weight_3d", None):  # the head, passed as linear_weight, with out_features (10,)
        weight = torch.randn(30, 10, hidden.shape[1])
        target = torch.randint(30, (hidden.shape[0], 10))
    out, caught = torch_chunked(
        hidden, weight, target, options=LinearCrossEntropyOptions(), **kwargs
    )
    assert len(caught) == 1 and FALLBACK in caught[0]
    assert "chunked" not in out.grad_fn.name()
    assert torch.equal(out, F.linear_cross_entropy(hidden, weight, target, **kwargs))
    if "label_smoothing" in kwargs:  # the reference path is the naive way, label smoothing too
        ref = F.cross_entropy(F.linear(hidden, weight), target, label_smoothing=0.1)
        assert torch.equal(out, ref)


def test_an_int32_target_warns_then_fails_in_cross_entropy():
    hidden, weight, _, target = make(pad_every=0)
    with pytest.raises(RuntimeError, match="Long"):
        with pytest.warns(UserWarning, match="options`` ignored"):
            F.linear_cross_entropy(
                hidden, weight, target.int(), options=LinearCrossEntropyOptions()
            )


def test_ignore_index_with_probability_targets_is_an_error():
    hidden, weight, _, target = make(pad_every=0)
    probs = F.one_hot(target, weight.shape[0]).float()
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(hidden, weight, probs, ignore_index=-100)


def test_the_chunked_path_runs_backward_once_unless_allow_retain_graph():
    hidden, weight, _, target = make()
    loss = F.linear_cross_entropy(
        hidden, weight, target, options=LinearCrossEntropyOptions(batch_chunk_size=8)
    )
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward called twice"):
        loss.backward()
    options = LinearCrossEntropyOptions(batch_chunk_size=8, allow_retain_graph=True)
    loss = F.linear_cross_entropy(hidden, weight, target, options=options)
    hidden.grad = None
    loss.backward(retain_graph=True)
    first = hidden.grad.clone()
    loss.backward()
    torch.testing.assert_close(hidden.grad, 2 * first)


def test_with_reduction_none_the_chunked_path_recomputes_and_a_second_backward_works():
    hidden, weight, _, target = make()
    options = LinearCrossEntropyOptions(batch_chunk_size=8)
    losses = F.linear_cross_entropy(hidden, weight, target, reduction="none", options=options)
    assert "chunked" in losses.grad_fn.name()
    losses.sum().backward(retain_graph=True)
    first = hidden.grad.clone()
    losses.sum().backward()  # no allow_retain_graph needed: "none" recomputes in backward
    torch.testing.assert_close(hidden.grad, 2 * first)


def test_the_chunked_path_gives_no_graph_for_higher_order_gradients():
    hidden, weight, _, target = make()
    loss = F.linear_cross_entropy(
        hidden, weight, target, options=LinearCrossEntropyOptions(batch_chunk_size=8)
    )
    (g,) = torch.autograd.grad(loss, hidden, create_graph=True)
    assert not g.requires_grad  # the reference path's gradient would require grad
    loss = F.linear_cross_entropy(hidden, weight, target)
    (g,) = torch.autograd.grad(loss, hidden, create_graph=True)
    assert g.requires_grad


def test_auto_options_resolve_per_device_and_dtype_on_the_cpu():
    cpu = torch.device("cpu")
    n, h, v = 512, 64, 131072
    fp32 = LinearCrossEntropyOptions()._adjust(n, h, v, torch.float32, cpu)
    assert (fp32.acc_policy, fp32.chunking_method, fp32.acc_dtype) == (
        "compact",
        "aspect_ratio:2",
        torch.float32,
    )
    bf16 = LinearCrossEntropyOptions()._adjust(n, h, v, torch.bfloat16, cpu)
    assert (bf16.acc_policy, bf16.chunking_method, bf16.acc_dtype) == (
        "accurate",
        "aspect_ratio",
        torch.float32,
    )
    # aspect_ratio: next_pow2(ceil(N / ceil(V / H))), divided by the factor, at least 1 row,
    # at both vocabulary sizes of the benchmark.
    for vocab in (32768, v):
        for dtype in (torch.float32, torch.bfloat16):
            assert (
                LinearCrossEntropyOptions()._adjust(n, h, vocab, dtype, cpu).batch_chunk_size == 1
            )
    wide = LinearCrossEntropyOptions()._adjust(8192, 128, 32768, torch.bfloat16, cpu)
    assert wide.batch_chunk_size == 1 << math.ceil(
        math.log2(math.ceil(8192 / math.ceil(32768 / 128)))
    )
    # batch_chunk_size=None is one chunk of all N rows only when chunking_method is None.
    assert (
        LinearCrossEntropyOptions(chunking_method=None)
        ._adjust(n, h, v, torch.float32, cpu)
        .batch_chunk_size
        == n
    )
    assert (
        LinearCrossEntropyOptions(batch_chunk_size=100)
        ._adjust(n, h, v, torch.float32, cpu)
        .batch_chunk_size
        == 100
    )


@pytest.mark.parametrize("policy", ["accurate", "balanced", "compact"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_an_explicit_acc_policy_accumulates_in_the_input_dtype_unless_acc_dtype_is_set(
    policy, dtype
):
    cpu = torch.device("cpu")
    auto = LinearCrossEntropyOptions()._adjust(512, 64, 4096, dtype, cpu)
    assert auto.acc_dtype == torch.float32
    explicit = LinearCrossEntropyOptions(acc_policy=policy)._adjust(512, 64, 4096, dtype, cpu)
    assert (explicit.acc_policy, explicit.acc_dtype) == (policy, dtype)
    both = LinearCrossEntropyOptions(acc_policy=policy, acc_dtype=torch.float32)
    assert both._adjust(512, 64, 4096, dtype, cpu).acc_dtype == torch.float32


def test_float64_inputs_are_computed_in_float64():
    hidden, weight, b, target = make(dtype=torch.float64, bias=True)
    mine = chunked_linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=8)
    ref = naive(hidden, weight, b, target)
    # Far tighter than float32 could give: the logits are not rounded to float32.
    torch.testing.assert_close(mine, ref, rtol=1e-13, atol=1e-14)
    for g, r in zip(grads(mine, hidden, weight, b), grads(ref, hidden, weight, b), strict=True):
        assert g.dtype == torch.float64
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-13)


def test_batch_chunk_size_and_a_disagreeing_chunking_method_are_an_error():
    options = LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio")
    with pytest.raises(ValueError, match="pass only one"):
        options._adjust(512, 64, 131072, torch.float32, torch.device("cpu"))
    with pytest.raises(ValueError, match="acc_policy"):
        LinearCrossEntropyOptions(acc_policy="fast")


def test_the_module_form_holds_the_head():
    torch.manual_seed(0)
    module = LinearCrossEntropyLoss(16, 300, options=LinearCrossEntropyOptions(batch_chunk_size=8))
    hidden, _, _, target = make()
    assert module.linear.weight.shape == (300, 16) and module.linear.bias is None
    assert module.weight is None  # `weight` is the class weights, as in CrossEntropyLoss
    ref = F.cross_entropy(F.linear(hidden, module.linear.weight), target)
    torch.testing.assert_close(module(hidden, target), ref, **FLOAT32_TOL)


def test_the_chunked_op_computes_the_gradients_in_its_forward_pass():
    from torch.nn.modules.linear_cross_entropy import _linear_cross_entropy_batch_chunked as op

    hidden, weight, _, target = make()
    loss, grad_hidden, grad_weight, _ = op(
        hidden.detach(), weight.detach(), target, None, None, "mean", -100, 0.0,
        8, "compact", torch.float32, False, True, True, False,
    )  # fmt: skip
    ref = naive(hidden, weight, None, target)
    torch.testing.assert_close(loss, ref, **FLOAT32_TOL)
    for mine, theirs in zip((grad_hidden, grad_weight), grads(ref, hidden, weight), strict=True):
        torch.testing.assert_close(mine, theirs, **FLOAT32_TOL)


def test_tracing_falls_back_with_a_warning():
    hidden, weight, _, target = make()
    options = LinearCrossEntropyOptions(batch_chunk_size=8)
    with pytest.warns(UserWarning, match="tracing=True"):
        torch.jit.trace(
            lambda h, w: F.linear_cross_entropy(h, w, target, options=options),
            (hidden.detach(), weight.detach()),
            check_trace=False,
        )


def test_the_docstring_states_when_chunking_pays_off():
    doc = " ".join(LinearCrossEntropyOptions.__doc__.split())
    assert "``num_batches >= in_features`` and ``num_classes > in_features``" in doc
    assert "unsupported configurations fall through to the reference path with a warning" in doc
