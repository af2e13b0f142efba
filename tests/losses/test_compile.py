"""torch.compile and devices: every function and module of snippets/losses/ compiles with
fullgraph=True and dynamic=True without a graph break, gives the eager values and gradients,
and reads no tensor data on the host in its hot path (the rule of docs/losses/writing_your_own.md).

What the CPU can prove, and what it cannot:
- fullgraph=True raises on any graph break, and a Python branch on tensor data (`.any()`,
  `.item()`, `bool(tensor)`) is one: the compiled hot path makes no such read.
- The eager hot path for tensors that are not on the CPU is run on the meta device, whose
  tensors have no data: any host read of a value, boolean-mask indexing or nonzero fails there.
- Not proven here: syncs inside CUDA kernels or the CUDA caching allocator, and the CUDA
  device-side assert (no GPU; torch.cuda.set_sync_debug_mode is CUDA-only).
"""

import copy

import pytest
import torch
import torch._dynamo
from losses.class_balanced import class_balanced_weights
from losses.focal import FocalLoss, focal_loss, sigmoid_focal_loss
from losses.large_margin_softmax import CosineMarginHead, margin_logits
from losses.ldam import LDAMLoss
from losses.logit_adjustment import logit_adjusted_cross_entropy, post_hoc_logit_adjustment
from losses.margin import crammer_singer_loss
from losses.neighbors import soft_nearest_neighbor_loss
from losses.noisy_labels import (
    generalized_cross_entropy,
    symmetric_cross_entropy,
    true_class_log_prob,
)
from losses.poly import poly1_cross_entropy

C = 5
HEAD = CosineMarginHead(C, 3, kind="cosface")  # embeddings of size C, 3 classes


def CLASSES_3(n, device):
    return (torch.arange(n) % 3).to(device)


PRIOR = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
WEIGHT = torch.tensor([0.5, 1.0, 2.0, 1.0, 3.0])


def batch(n, c=C, device="cpu"):
    generator = torch.Generator().manual_seed(n)
    logits = torch.randn(n, c, generator=generator) * 3
    target = torch.randint(c, (n,), generator=generator)
    target[0] = -100
    return logits.to(device), target.to(device)


def cosine_batch(n, c=C, device="cpu"):
    logits, target = batch(n, c, device)
    return torch.tanh(logits), target.clamp_min(0)


def multilabel_batch(n, c=C, device="cpu"):
    logits, _ = batch(n, c, device)
    generator = torch.Generator().manual_seed(n + 1)
    return logits, (torch.rand(n, c, generator=generator) < 0.3).float().to(device)


# name -> (function of (logits, target), batch maker). Each returns a tensor that is summed.
CASES = {
    "focal_loss": (lambda x, t: focal_loss(x, t, weight=WEIGHT.to(x.device)), batch),
    "FocalLoss": (FocalLoss(gamma=0.5, reduction="sum"), batch),
    "sigmoid_focal_loss": (
        lambda x, t: sigmoid_focal_loss(x, t, pos_weight=WEIGHT.to(x.device)),
        multilabel_batch,
    ),
    "poly1_cross_entropy": (lambda x, t: poly1_cross_entropy(x, t, epsilon=2.0), batch),
    "logit_adjusted_cross_entropy": (
        lambda x, t: logit_adjusted_cross_entropy(x, t, PRIOR.to(x.device)),
        batch,
    ),
    "post_hoc_logit_adjustment": (
        lambda x, t: post_hoc_logit_adjustment(x, PRIOR.to(x.device)),
        batch,
    ),
    "LDAMLoss": (LDAMLoss([500, 200, 50, 20, 5], weight=WEIGHT), batch),
    "margin_logits": (lambda x, t: margin_logits(x, t, scale=8.0), cosine_batch),
    "CosineMarginHead": (
        HEAD,
        lambda n, device="cpu": (batch(n, device=device)[0], CLASSES_3(n, device)),
    ),
    "crammer_singer_loss": (lambda x, t: crammer_singer_loss(x, t.clamp_min(0)), batch),
    "soft_nearest_neighbor_loss": (
        lambda x, t: soft_nearest_neighbor_loss(x, t.clamp_min(0) % 2),
        batch,
    ),
    "generalized_cross_entropy": (
        lambda x, t: generalized_cross_entropy(x, t.clamp_min(0)),
        batch,
    ),
    "symmetric_cross_entropy": (lambda x, t: symmetric_cross_entropy(x, t.clamp_min(0)), batch),
    "true_class_log_prob": (lambda x, t: true_class_log_prob(x, t.clamp_min(0)), batch),
    "class_balanced_weights": (lambda x, t: class_balanced_weights(x[0].abs() + 1) * x, batch),
}


def loss_and_gradient(function, logits, target):
    x = logits.clone().requires_grad_()
    value = function(x, target)
    (gradient,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), gradient


def data_dependent_branch(x, t):
    """A loss with the check these losses had before: `.any()` decides a Python branch."""
    if (t >= x.shape[1]).any():
        raise IndexError("target out of range")
    return torch.log_softmax(x, dim=1).gather(1, t.unsqueeze(1)).sum()


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_the_graph_break_check_fails_on_a_data_dependent_branch():
    logits, target = batch(6)
    target = target.clamp_min(0)
    explanation = torch._dynamo.explain(data_dependent_branch)(logits, target)
    assert explanation.graph_break_count >= 1
    compiled = torch.compile(data_dependent_branch, fullgraph=True, backend="eager")
    with pytest.raises(torch._dynamo.exc.Unsupported, match=r"[Dd]ata-dependent"):
        compiled(logits, target)


@pytest.mark.parametrize("name", CASES)
def test_no_graph_break(name):
    function, make = CASES[name]
    explanation = torch._dynamo.explain(function)(*make(6))
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize("name", CASES)
def test_fullgraph_dynamic_compile_gives_eager_values_and_gradients_without_recompiling(name):
    function, make = CASES[name]
    compiled = torch.compile(function, fullgraph=True, dynamic=True, backend="aot_eager")
    for n in (6, 9):  # a second batch size must reuse the graph (dynamic=True)
        logits, target = make(n)
        expected_value, expected_gradient = loss_and_gradient(function, logits, target)
        with torch._dynamo.config.patch(error_on_recompile=n == 9):
            value, gradient = loss_and_gradient(compiled, logits, target)
        torch.testing.assert_close(value, expected_value)
        torch.testing.assert_close(gradient, expected_gradient)


@pytest.mark.parametrize(
    "name",
    ["focal_loss", "poly1_cross_entropy", "logit_adjusted_cross_entropy", "sigmoid_focal_loss"],
)
def test_inductor_gives_eager_values_and_gradients(name):
    function, make = CASES[name]
    compiled = torch.compile(function, fullgraph=True, dynamic=True)
    logits, target = make(7)
    expected_value, expected_gradient = loss_and_gradient(function, logits, target)
    value, gradient = loss_and_gradient(compiled, logits, target)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(gradient, expected_gradient)


@pytest.mark.parametrize(
    "name", ["focal_loss", "poly1_cross_entropy", "logit_adjusted_cross_entropy"]
)
def test_compiled_log_p_y_is_log_softmax_and_gather_not_cross_entropy(name):
    # The helpers and docs/losses/focal.md: compiled, log p_y is log_softmax + gather, which
    # Inductor makes faster than its decomposition of F.cross_entropy (docs/losses/index.md).
    calls = []

    def backend(graph_module, example_inputs):
        nodes = graph_module.graph.nodes
        calls.extend(str(n.target) for n in nodes if n.op in ("call_function", "call_method"))
        return graph_module.forward

    function, make = CASES[name]
    torch.compile(function, backend=backend, fullgraph=True, dynamic=True)(*make(6))
    assert any("log_softmax" in call for call in calls), calls
    assert "gather" in calls, calls
    assert not any("cross_entropy" in call for call in calls), calls


@pytest.mark.parametrize("name", CASES)
def test_eager_hot_path_off_the_cpu_reads_no_tensor_data(name):
    function, make = CASES[name]
    logits, target = make(6, device="meta")
    if isinstance(function, torch.nn.Module):
        function = copy.deepcopy(function).to("meta")
    value = function(logits.requires_grad_(), target)
    value.sum().backward()
    assert value.device.type == "meta" and logits.grad.device.type == "meta"


def test_meta_run_fails_on_a_host_read_of_tensor_data():
    logits, target = batch(6, device="meta")
    with pytest.raises((RuntimeError, NotImplementedError)):
        data_dependent_branch(logits, target.clamp_min(0))


def test_compiled_check_of_target_values_raises_on_the_cpu():
    logits, target = batch(6)
    target[1] = C  # out of range
    for function in (focal_loss, poly1_cross_entropy, LDAMLoss([5, 4, 3, 2, 1])):
        with pytest.raises(IndexError, match=r"^target 5 is out of bounds"):
            function(logits, target)
        compiled = torch.compile(function, fullgraph=True, dynamic=True, backend="aot_eager")
        with pytest.raises(
            RuntimeError, match=r"^target must be in \[0, C\) or equal ignore_index$"
        ):
            compiled(logits, target)
    # Inductor may run the gather's own bound check first: either check raises RuntimeError.
    compiled = torch.compile(focal_loss, fullgraph=True, dynamic=True)
    with pytest.raises(RuntimeError, match=r"target must be in \[0, C\)|index out of bounds"):
        compiled(logits, target)
    compiled = torch.compile(logit_adjusted_cross_entropy, fullgraph=True, backend="aot_eager")
    with pytest.raises(RuntimeError, match="class_prior must hold positive finite values"):
        compiled(logits, target.clamp(0, C - 1), torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))


def test_ldam_weight_assigned_after_to_follows_the_module():
    criterion = LDAMLoss([500, 50, 5]).to(torch.float64)
    criterion.weight = torch.tensor([0.2, 1.0, 1.8])  # float32 on the CPU, as DRW assigns it
    assert criterion.weight.dtype == torch.float64
    criterion.to("meta")
    criterion.weight = torch.tensor([0.2, 1.0, 1.8])  # assigned after the move
    assert criterion.weight.device.type == "meta"
    assert "weight" in dict(criterion.named_buffers())
    logits = torch.randn(4, 3, device="meta", dtype=torch.float64, requires_grad=True)
    criterion(logits, torch.tensor([0, 1, 2, 1], device="meta")).backward()
    criterion.weight = None
    assert criterion.weight is None


def test_assert_async_lists_cpu_cuda_and_mps_kernels():
    # The page: torch._assert_async has CPU, CUDA and MPS kernels (native_functions.yaml of
    # this torch), so the losses use it on CUDA and MPS too. This CPU build registers only the
    # CPU one; the CUDA and MPS kernels are read from the source, not executed here.
    import re
    from pathlib import Path

    import torchgen

    yaml = Path(torchgen.__file__).parent / "packaged/ATen/native/native_functions.yaml"
    text = yaml.read_text(encoding="utf-8")
    entry = re.search(r"- func: _assert_async\.msg\(.*?\n\n", text, re.S).group(0)
    dispatch = set(re.findall(r"^    (\w+): ", entry, re.M))
    assert dispatch == {"CPU", "CUDA", "MPS"}

    def has_kernel(key):
        return torch._C._dispatch_has_kernel_for_dispatch_key("aten::_assert_async.msg", key)

    assert has_kernel("CPU") and has_kernel("Meta")
