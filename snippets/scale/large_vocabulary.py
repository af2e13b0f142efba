"""Cross-entropy over a large vocabulary without the (N, V) logits tensor.

Copy this file: it needs only PyTorch. `chunked_linear_cross_entropy(hidden, weight, target)`
returns what `F.cross_entropy(F.linear(hidden, weight, bias), target)` returns, for hidden
states (N, H), a head (V, H) and class indices (N,), but it computes the logits a chunk of rows
at a time in float32 and keeps only one number per row (the log-sum-exp) for the backward pass,
which computes each chunk's logits again. `linear_cross_entropy_with_z_loss` adds PaLM's z-loss
in the same pass. Run the file to see the examples of its page.
"""

# --8<-- [start:chunked]
import torch
from torch import Tensor

# Rows per chunk when chunk_size is None: about 2**22 float32 logits (16 MiB) per chunk.
DEFAULT_CHUNK_ELEMENTS = 2**22


def chunked_linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> Tensor:
    """F.cross_entropy(F.linear(hidden, weight, bias), target, ignore_index=..., reduction=...).

    hidden (N, H), weight (V, H), bias (V,) or None, target (N,) int64; reduction "mean" (sum
    over the rows whose target is not ignore_index, divided by their number) or "sum". The
    logits are computed `chunk_size` rows at a time, in float32 (float64 for float64 inputs).
    """
    loss, _ = _check_and_apply(
        hidden, weight, target, bias, ignore_index, reduction, chunk_size, z_loss=0.0
    )
    return loss


def linear_cross_entropy_with_z_loss(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    z_loss: float = 1e-4,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(cross-entropy, z_loss * log(Z)**2) from one chunked pass; train on their sum.

    log(Z) is the log-sum-exp of a row's logits (PaLM, Chowdhery et al. 2022). The z-loss term is
    reduced over the same rows as the cross-entropy: summed, or divided by their number.
    """
    if not (isinstance(z_loss, int | float) and z_loss >= 0):
        raise ValueError(f"z_loss must be a number >= 0, got {z_loss!r}")
    return _check_and_apply(
        hidden, weight, target, bias, ignore_index, reduction, chunk_size, z_loss=float(z_loss)
    )


# --8<-- [end:chunked]


# --8<-- [start:function]
class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Forward: per chunk, logits -> log-sum-exp and the true-class logit. Saves (N,) floats.

    Backward: per chunk, the logits again, then softmax - one_hot (plus the z-loss term) times
    the upstream gradient, and the two matrix products into grad_hidden and grad_weight.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, ignore_index, reduction, chunk_size, z_loss):
        acc = torch.promote_types(hidden.dtype, torch.float32)  # float32, or float64
        weight_acc = weight.to(acc)  # a copy only for float16/bfloat16 heads
        bias_acc = None if bias is None else bias.to(acc)
        valid = target != ignore_index
        safe_target = target.masked_fill(~valid, 0)
        lse = torch.empty(hidden.shape[0], dtype=acc, device=hidden.device)
        ce = torch.zeros((), dtype=acc, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            logits = _logits(hidden[rows], weight_acc, bias_acc, acc)
            lse[rows] = torch.logsumexp(logits, dim=1)
            true_logit = logits.gather(1, safe_target[rows, None]).squeeze(1)
            ce += ((lse[rows] - true_logit) * valid[rows]).sum()
            del logits  # free this chunk's logits before the next one is computed
        zsum = (lse.square() * valid).sum()
        count = valid.sum()
        # "mean" divides by the number of rows that are not ignored: 0/0 = nan if there is none.
        denominator = count.to(acc) if reduction == "mean" else torch.ones((), dtype=acc)
        ctx.save_for_backward(hidden, weight, bias, safe_target, valid, lse, denominator)
        ctx.chunk_size, ctx.z_loss = chunk_size, z_loss
        out_dtype = hidden.dtype
        return (ce / denominator).to(out_dtype), (z_loss * zsum / denominator).to(out_dtype)

    @staticmethod
    def backward(ctx, grad_ce, grad_z):
        hidden, weight, bias, safe_target, valid, lse, denominator = ctx.saved_tensors
        acc = lse.dtype
        weight_acc = weight.to(acc)
        bias_acc = None if bias is None else bias.to(acc)
        grad_ce = grad_ce.to(acc) / denominator
        grad_z = grad_z.to(acc) * (2.0 * ctx.z_loss) / denominator
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        grad_hidden = torch.empty_like(hidden) if need_h else None
        grad_weight = torch.zeros_like(weight_acc) if need_w else None
        grad_bias = torch.zeros_like(bias_acc) if need_b else None
        for start in range(0, hidden.shape[0], ctx.chunk_size):
            rows = slice(start, start + ctx.chunk_size)
            h = hidden[rows].to(acc)
            logits = _logits(h, weight_acc, bias_acc, acc)
            # d/dlogits of [lse - logit_y] * g_ce + [z * lse**2] * g_z, row by row, in place:
            # softmax * (g_ce + 2 z lse g_z), minus g_ce at the true class; 0 for ignored rows.
            row_scale = (grad_ce + grad_z * lse[rows]) * valid[rows]
            probs = logits.sub_(lse[rows, None]).exp_()
            grad_logits = probs.mul_(row_scale[:, None])
            grad_logits.scatter_add_(
                1, safe_target[rows, None], -(grad_ce * valid[rows].to(acc))[:, None]
            )
            if need_h:
                grad_hidden[rows] = (grad_logits @ weight_acc).to(hidden.dtype)
            if need_w:
                grad_weight.addmm_(grad_logits.T, h)
            if need_b:
                grad_bias += grad_logits.sum(dim=0)
            del logits, probs, grad_logits
        if need_w:
            grad_weight = grad_weight.to(weight.dtype)
        if need_b:
            grad_bias = grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None


def _logits(hidden_rows, weight_acc, bias_acc, acc):
    hidden_rows = hidden_rows.to(acc)
    if bias_acc is None:
        return hidden_rows @ weight_acc.T
    return torch.addmm(bias_acc, hidden_rows, weight_acc.T)


# --8<-- [end:function]


# --8<-- [start:checks]
def _check_and_apply(hidden, weight, target, bias, ignore_index, reduction, chunk_size, z_loss):
    """Check the arguments, naming the one that is wrong, then run the chunked function."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    for name, tensor in (("hidden", hidden), ("weight", weight)):
        if not (torch.is_tensor(tensor) and tensor.is_floating_point() and tensor.dim() == 2):
            got = f"{tensor.dtype}, {tensor.dim()}-D" if torch.is_tensor(tensor) else type(tensor)
            shape = "(N, H)" if name == "hidden" else "(V, H)"
            raise ValueError(f"{name} must be a 2-D floating-point tensor {shape}, got {got}")
    if weight.dtype != hidden.dtype:
        raise ValueError(
            f"weight must have the dtype of hidden ({hidden.dtype}), got {weight.dtype}"
        )
    (n, h), (v, h_weight) = hidden.shape, weight.shape
    if h_weight != h:
        raise ValueError(
            f"weight must have shape (V, H) with H = hidden.shape[1] = {h}, "
            f"got {tuple(weight.shape)}"
        )
    if bias is not None and (
        not torch.is_tensor(bias) or bias.shape != (v,) or bias.dtype != hidden.dtype
    ):
        got = (tuple(bias.shape), bias.dtype) if torch.is_tensor(bias) else type(bias)
        raise ValueError(f"bias must be a ({v},) tensor of dtype {hidden.dtype}, got {got}")
    if not torch.is_tensor(target) or target.dtype != torch.int64:
        got = target.dtype if torch.is_tensor(target) else type(target).__name__
        raise ValueError(
            f"target must be a tensor of class indices of dtype torch.int64, got {got}"
        )
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},), got {tuple(target.shape)}")
    invalid = (target != ignore_index) & ((target < 0) | (target >= v))
    if invalid.any():
        bad = target[invalid][0].item()
        raise ValueError(
            f"target must hold class indices in [0, {v}) or ignore_index={ignore_index}, got {bad}"
        )
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // v)
    elif not (isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size > 0):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return _ChunkedLinearCrossEntropy.apply(
        hidden, weight, bias, target, ignore_index, reduction, chunk_size, z_loss
    )


# --8<-- [end:checks]


if __name__ == "__main__":
    # --8<-- [start:memory_formula]
    import torch

    def logits_bytes(n: int, v: int, dtype: torch.dtype) -> int:
        """Bytes of one (N, V) tensor: the logits, log_softmax's output, or their gradient."""
        return n * v * torch.empty((), dtype=dtype).element_size()

    def gib(n_bytes: float) -> str:
        return f"{n_bytes / 2**30:.2f} GiB"

    print("| B · T tokens | V | one (N, V) tensor in float32 | in bfloat16 |")
    print("| ---: | ---: | ---: | ---: |")
    for tokens, vocab in [(8 * 2048, 32_000), (8 * 2048, 128_256), (8 * 8192, 256_000)]:
        fp32, bf16 = (
            logits_bytes(tokens, vocab, torch.float32),
            logits_bytes(tokens, vocab, torch.bfloat16),
        )
        print(f"| {tokens:,} | {vocab:,} | {gib(fp32)} | {gib(bf16)} |")
    # --8<-- [end:memory_formula]

    # --8<-- [start:three_ways]
    import torch.nn.functional as F
    from torch.nn import LinearCrossEntropyOptions

    torch.manual_seed(0)
    N, H, V = 512, 64, 4096
    hidden = torch.randn(N, H, requires_grad=True)
    head = (torch.randn(V, H) / H**0.5).requires_grad_()
    target = torch.randint(V, (N,))
    target[::7] = -100  # padding: ignored by all three

    def loss_and_grads(compute):
        hidden.grad = head.grad = None
        loss = compute()
        loss.backward()
        return loss.detach(), hidden.grad.clone(), head.grad.clone()

    ways = {
        "F.cross_entropy(F.linear(...))": lambda: F.cross_entropy(F.linear(hidden, head), target),
        "chunked_linear_cross_entropy": lambda: chunked_linear_cross_entropy(
            hidden, head, target, chunk_size=128
        ),
        "F.linear_cross_entropy(options=...)": lambda: F.linear_cross_entropy(
            hidden, head, target, options=LinearCrossEntropyOptions(batch_chunk_size=128)
        ),
    }
    results = {name: loss_and_grads(compute) for name, compute in ways.items()}
    naive = results["F.cross_entropy(F.linear(...))"]
    for name, (loss, grad_hidden, grad_head) in results.items():
        print(
            f"{name:38} loss {loss.item():.6f}  "
            f"max |Δ grad hidden| {(grad_hidden - naive[1]).abs().max().item():.1e}  "
            f"max |Δ grad head| {(grad_head - naive[2]).abs().max().item():.1e}"
        )
    # --8<-- [end:three_ways]

    # --8<-- [start:fallback]
    import warnings

    options = LinearCrossEntropyOptions(batch_chunk_size=128)
    for label, kwargs in [
        ("label_smoothing=0.1", {"label_smoothing": 0.1}),
        ("probability targets", {"target": F.one_hot(target.clamp_min(0), V).float()}),
        ("reduction='none'", {"reduction": "none"}),
        ("weight=class weights", {"weight": torch.rand(V)}),
        ("linear_bias=bias", {"linear_bias": torch.zeros(V)}),
    ]:
        call = {"target": target, **kwargs}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            F.linear_cross_entropy(hidden, head, options=options, **call).sum().backward()
        fell_back = any("options`` ignored" in str(w.message) for w in caught)
        print(f"{label:24} -> {'reference path, with a warning' if fell_back else 'chunked path'}")
    # --8<-- [end:fallback]

    # --8<-- [start:z_loss]
    torch.manual_seed(0)
    hidden.grad = head.grad = None
    ce, z = linear_cross_entropy_with_z_loss(hidden, head, target, z_loss=1e-4, chunk_size=128)
    (ce + z).backward()
    logits = F.linear(hidden, head)
    log_z = torch.logsumexp(logits, dim=1)[target != -100]
    print(f"cross-entropy {ce.item():.6f} (naive {F.cross_entropy(logits, target).item():.6f})")
    expected = 1e-4 * log_z.square().mean().item()
    print(f"z-loss        {z.item():.3e} (1e-4 * mean(log Z ** 2) = {expected:.3e})")
    # --8<-- [end:z_loss]

    # --8<-- [start:benchmark_tables]
    import json
    from pathlib import Path

    # The committed output of benchmark.py (the page is built from the repository root).
    folder = Path(__file__).parent if "__file__" in globals() else Path("snippets/scale")
    LABELS = {
        "naive": "F.cross_entropy(F.linear(...))",
        "chunked": "chunked_linear_cross_entropy",
        "torch_reference": "F.linear_cross_entropy, options=None",
        "torch_chunked": "F.linear_cross_entropy, batch_chunk_size",
        "torch_chunked_auto": "F.linear_cross_entropy, LinearCrossEntropyOptions()",
    }

    def show_benchmark(bench: dict) -> None:
        machine = bench["machine"]
        where = machine.get("gpu") or f"{machine['cpu_model']}, {bench['threads']} thread(s)"
        print(f"{where}, torch {machine['torch']}, {bench['date']}", end="; ")
        print(f"N = {bench['n']}, H = {bench['h']}")
        print(f"time: median of {bench['repeats']} interleaved rounds, float32\n")
        naive_peak = {
            (r["vocab"], r["dtype"]): r["peak_bytes"]
            for r in bench["memory"]
            if r["way"] == "naive"
        }
        timing = {(r["vocab"], r["way"]): r for r in bench["time"]}
        print("| V | dtype | way | rows per chunk | peak MiB | of naive | time, × naive |")
        print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
        for r in bench["memory"]:
            chunk = {"chunked": r["chunk_size"], "torch_chunked": r["chunk_size"]}.get(
                r["way"], "-"
            )
            if r["way"] == "torch_chunked_auto":
                chunk = "auto"
            ratio = r["peak_bytes"] / naive_peak[(r["vocab"], r["dtype"])]
            t = timing.get((r["vocab"], r["way"])) if r["dtype"] == "float32" else None
            time_cell = "-" if t is None else f"{t['median_ratio_to_naive']:.2f}"
            print(
                f"| {r['vocab']:,} | {r['dtype']} | `{LABELS[r['way']]}` | {chunk} "
                f"| {r['peak_bytes'] / 2**20:,.0f} | {ratio:.3f} | {time_cell} |"
            )

    def goals(bench: dict) -> dict:
        """The issue's goals for chunked_linear_cross_entropy at the largest V, in float32."""
        vocab = max(r["vocab"] for r in bench["memory"])
        peak = {
            r["way"]: r["peak_bytes"]
            for r in bench["memory"]
            if (r["vocab"], r["dtype"]) == (vocab, "float32")
        }
        time = {r["way"]: r["median_ratio_to_naive"] for r in bench["time"] if r["vocab"] == vocab}
        return {
            "vocab": vocab,
            "memory_ratio": peak["chunked"] / peak["naive"],
            "time_ratio": time["chunked"],
            "memory_met": peak["chunked"] <= peak["naive"] / 8,
            "time_met": time["chunked"] <= 1.3,
            "torch_memory_ratio": peak["torch_chunked"] / peak["naive"],
            "torch_time_ratio": time["torch_chunked"],
        }

    cpu = json.loads((folder / "benchmark_results.json").read_text(encoding="utf-8"))
    show_benchmark(cpu)
    g = goals(cpu)
    verdict = {True: "met", False: "NOT met"}
    print(f"\nAt V = {g['vocab']:,} (float32), chunked_linear_cross_entropy needed")
    print(f"{g['memory_ratio']:.3f} of the naive peak (goal ≤ 0.125: {verdict[g['memory_met']]})")
    print(f"and {g['time_ratio']:.2f} × its time (goal ≤ 1.3: {verdict[g['time_met']]}).")
    print(f"F.linear_cross_entropy's chunked path, same chunks: {g['torch_memory_ratio']:.3f}")
    print(f"of the peak, {g['torch_time_ratio']:.2f} × the time.")
    # --8<-- [end:benchmark_tables]

    # --8<-- [start:benchmark_cuda]
    cuda_file = folder / "benchmark_results_cuda.json"
    if cuda_file.exists():
        show_benchmark(json.loads(cuda_file.read_text(encoding="utf-8")))
    else:
        print(f"{cuda_file.name} does not exist: the GPU has not been measured.")
    # --8<-- [end:benchmark_cuda]

    # --8<-- [start:benchmark_plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "large-vocabulary"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    vocabs = sorted({r["vocab"] for r in cpu["memory"]})
    for ax, dtype in zip(axes, ["float32", "bfloat16"], strict=True):
        for offset, way in enumerate(LABELS):
            peaks = [
                next(
                    r["peak_bytes"]
                    for r in cpu["memory"]
                    if (r["vocab"], r["dtype"], r["way"]) == (v, dtype, way)
                )
                / 2**20
                for v in vocabs
            ]
            ax.bar(
                [i + 0.16 * (offset - 2) for i in range(len(vocabs))], peaks, width=0.16, label=way
            )
        ax.set(
            title=dtype,
            xticks=range(len(vocabs)),
            xticklabels=[f"V = {v:,}" for v in vocabs],
            yscale="log",
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("peak memory above the inputs (MiB)")
    axes[1].legend(fontsize=8)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:benchmark_plot]
