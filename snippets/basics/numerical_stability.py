"""Numerical stability: log(softmax(x)) against log_softmax(x), logsumexp, low precision."""

# --8<-- [start:three_logits]
import math

import torch
import torch.nn.functional as F

for s in [10.0, 100.0, 1000.0]:
    x = torch.tensor([s, 0.0, -s])  # float32
    print(f"s = {s:g}")
    print("  log(softmax(x)):", torch.log(torch.softmax(x, dim=0)))
    print("  log_softmax(x) :", F.log_softmax(x, dim=0))
# --8<-- [end:three_logits]


# --8<-- [start:forms]
def by_hand(x):  # softmax written out, then log
    e = torch.exp(x)
    return torch.log(e / e.sum(dim=1, keepdim=True))


def log_of_softmax(x):  # PyTorch's softmax, then log
    return torch.log(torch.softmax(x, dim=1))


def stable(x):  # x - logsumexp(x)
    return F.log_softmax(x, dim=1)


FORMS = {"log(exp(x) / sum(exp(x)))": by_hand, "log(softmax(x))": log_of_softmax}
FORMS["log_softmax(x)"] = stable
# --8<-- [end:forms]


# --8<-- [start:sweep]
def sweep(form, dtype, largest=200.0, step=0.01):
    """Losses of both classes for the logits [s, 0], s = 0 ... largest, computed in dtype."""
    s = torch.arange(0.0, largest + step / 2, step, dtype=torch.float64).to(dtype)
    logits = torch.stack([s, torch.zeros_like(s)], dim=1)
    return s, -form(logits)  # column c: the loss if the target is class c


print("| dtype | form | first s with a non-finite loss | loss, target 0 | loss, target 1 |")
print("|---|---|---|---|---|")
for dtype in [torch.float32, torch.float16, torch.bfloat16]:
    for name, form in FORMS.items():
        s, losses = sweep(form, dtype)
        broken = (~torch.isfinite(losses)).any(dim=1)
        if broken.any():
            i = int(broken.nonzero()[0])
            first = f"{s[i].item():.7g}"
        else:
            i, first = len(s) - 1, f"none up to {s[-1].item():g}"
        row = [str(dtype).removeprefix("torch."), f"`{name}`", first]
        print("| " + " | ".join(row + [f"{v + 0.0:g}" for v in losses[i].tolist()]) + " |")
# --8<-- [end:sweep]

# --8<-- [start:limits]
print("| dtype | log(largest finite value) | -log(smallest subnormal / 2) |")
print("|---|---|---|")
for dtype in [torch.float32, torch.float16, torch.bfloat16]:
    info = torch.finfo(dtype)
    smallest_subnormal = info.tiny * info.eps
    overflow, underflow = math.log(info.max), -math.log(smallest_subnormal / 2)
    print(f"| {str(dtype).removeprefix('torch.')} | {overflow:.4f} | {underflow:.4f} |")
# --8<-- [end:limits]

# --8<-- [start:grid]
s = torch.arange(88.0, 94.0, 0.01, dtype=torch.float64)  # the sweep's steps near the limits
print("those steps rounded to bfloat16:", sorted(set(s.to(torch.bfloat16).tolist())))
# --8<-- [end:grid]

# --8<-- [start:raw_logits]
for row in [[12.0, 12.0], [1.0, -10.5], [-20.0, -30.0]]:
    x = torch.tensor([row], dtype=torch.float16)
    print(f"float16 logits {row}, gap {row[0] - row[1]:g}")
    for name, form in FORMS.items():
        print(f"  {name:<26}", form(x)[0].tolist())
# --8<-- [end:raw_logits]

# --8<-- [start:one_sample]
batch = 0.1 * torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
batch[0] = torch.tensor([2000.0, 2000.0])  # one extreme sample out of 16
labels = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(2))


def naive_loss(logits, target):  # the mean of -log(softmax(x)) at the targets
    return -log_of_softmax(logits).gather(1, target[:, None]).mean()


def one_step(loss_fn, target_on_largest):
    """One SGD step of a two-layer model with 8 ReLU units on batch and labels."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    logits = model(batch)
    largest = int(logits[0].argmax())
    y = labels.clone()
    y[0] = largest if target_on_largest else 1 - largest
    active = model[0](batch[0]) > 0  # the ReLU units that sample 0 passes through
    loss = loss_fn(logits, y)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    return loss, model, logits.detach(), active


_, _, logits, active = one_step(naive_loss, True)
print("logit gap of sample 0:", (logits[0, 0] - logits[0, 1]).abs().item())
print("ReLU units active for sample 0:", int(active.sum()), "of 8")
for name, loss_fn in [("log(softmax(x))", naive_loss), ("cross_entropy", F.cross_entropy)]:
    for on_largest in [True, False]:
        loss, model, *_ = one_step(loss_fn, on_largest)
        where = "on" if on_largest else "not on"
        print(f"{name}, target of sample 0 {where} its largest logit: loss {loss.item():.4g}")
        nan_grads = {n: int(p.grad.isnan().sum()) for n, p in model.named_parameters()}
        nan_weights = sum(int(p.isnan().sum()) for p in model.parameters())
        print(f"  nan gradient entries {nan_grads}, nan weights after the step {nan_weights}")
# --8<-- [end:one_sample]

# --8<-- [start:gradient]
for name, form in FORMS.items():
    for target in [1, 0]:
        x = torch.tensor([[200.0, 0.0]], requires_grad=True)
        loss = -form(x)[0, target]
        loss.backward()
        shown = f"loss = {loss.item() + 0.0:<6g} gradient = {x.grad[0].tolist()}"
        print(f"{name:<26} target {target}: {shown}")
# --8<-- [end:gradient]

# --8<-- [start:logsumexp]
x = torch.tensor([1000.0, 0.0, -1000.0])
m = x.max()
print("log(sum(exp(x)))            :", torch.log(torch.exp(x).sum()).item())
print("m + log(sum(exp(x - m)))    :", (m + torch.log(torch.exp(x - m).sum())).item())
print("torch.logsumexp(x)          :", torch.logsumexp(x, dim=0).item())
print("x - logsumexp(x)            :", x - torch.logsumexp(x, dim=0))
print("log_softmax(x)              :", F.log_softmax(x, dim=0))
# --8<-- [end:logsumexp]

# --8<-- [start:masking]
x = torch.tensor([[2.0, 0.0, -1.0], [1.0, 3.0, 0.0]])
target = torch.tensor([0, 0])
mask = torch.tensor([[False, True, True], [True, True, True]])  # row 1: every class masked
for name, fill in [("-inf", float("-inf")), ("finfo.min", torch.finfo(x.dtype).min)]:
    masked = x.masked_fill(mask, fill).requires_grad_()
    loss = F.cross_entropy(masked, target, reduction="none")
    loss.sum().backward()
    print(
        f"fill {name:<9}: loss per row {[v + 0.0 for v in loss.tolist()]}, gradient finite: "
        f"{bool(torch.isfinite(masked.grad).all())}"
    )
# --8<-- [end:masking]

# --8<-- [start:additive_mask]
bias = torch.zeros_like(x).masked_fill(mask, float("-inf"))  # additive; x and mask from above
target = torch.tensor([0, -100])  # row 1, every class masked, is ignored
keep = target != -100
for name in ["masked_fill, ignore_index", "z + bias, ignore_index", "z + bias, rows dropped"]:
    z = x.clone().requires_grad_()
    masked = z.masked_fill(mask, float("-inf")) if name.startswith("masked_fill") else z + bias
    if name.endswith("dropped"):
        loss = F.cross_entropy(masked[keep], target[keep])
    else:
        loss = F.cross_entropy(masked, target)
    loss.backward()
    print(f"{name:<25}: loss {loss.item():.4g}, gradient {z.grad.tolist()}")
# --8<-- [end:additive_mask]

# --8<-- [start:ignore_all]
every_target_ignored = torch.full((3,), -100)  # -100: the default ignore_index
print("mean loss:", F.cross_entropy(torch.randn(3, 4), every_target_ignored).item())
# --8<-- [end:ignore_all]

# --8<-- [start:masking_caveats]
x = torch.tensor([[2.0, 0.0, -1.0]])
one_masked, two_masked = torch.tensor([[False, True, False]]), torch.tensor([[False, True, True]])
class_0, class_1 = torch.tensor([0]), torch.tensor([1])
for name, fill in [("-inf", float("-inf")), ("finfo.min", torch.finfo(x.dtype).min)]:
    print(f"fill {name}")
    masked = x.masked_fill(two_masked, fill)
    print("  target class masked      :", F.cross_entropy(masked, class_1).item())
    for mask in [one_masked, two_masked]:
        smoothed = F.cross_entropy(x.masked_fill(mask, fill), class_0, label_smoothing=0.1)
        print(f"  label_smoothing, {int(mask.sum())} masked:", smoothed.item())
    every_class_masked = torch.full((1, 3), fill)
    print("  every class masked       :", F.cross_entropy(every_class_masked, class_0).item())
    divided = every_class_masked / 0.5  # a temperature below 1
    loss = F.cross_entropy(divided, class_0).item()
    print("  every class masked, / 0.5:", loss, "; the logits become", divided.tolist())
# --8<-- [end:masking_caveats]

# --8<-- [start:autocast_cpu]
torch.manual_seed(0)
model = torch.nn.Linear(16, 10)
features = torch.randn(32, 16)
target = torch.randint(0, 10, (32,))
with torch.autocast("cpu", dtype=torch.bfloat16):
    logits = model(features)
    ce = F.cross_entropy(logits, target)
    log_probs = F.log_softmax(logits, dim=1)
    probs = torch.softmax(logits, dim=1)
    nll = F.nll_loss(log_probs, target)
print("logits                  :", logits.dtype)
print("cross_entropy(logits)   :", ce.dtype)
print("log_softmax(logits)     :", log_probs.dtype)
print("softmax(logits)         :", probs.dtype)
print("nll_loss(log_softmax)   :", nll.dtype)
after = F.cross_entropy(logits, target)  # after the with block, from the same bfloat16 logits
print("cross_entropy after with:", after.dtype)
# --8<-- [end:autocast_cpu]

# --8<-- [start:low_precision]
torch.manual_seed(0)
logits = 3 * torch.randn(64, 1000)  # 64 samples, 1000 classes
target = torch.randint(0, 1000, (64,))

print("| logits | loss dtype | loss | error against float64 |")
print("|---|---|---|---|")
for dtype in [torch.bfloat16, torch.float16, torch.float32]:
    rounded = logits.to(dtype)  # the logits a low-precision model would return
    reference = F.cross_entropy(rounded.double(), target).item()  # same logits, float64
    for cast in ["", ".float()"]:
        if cast and dtype == torch.float32:
            continue
        x = rounded.float() if cast else rounded
        loss = F.cross_entropy(x, target)
        name = str(dtype).removeprefix("torch.") + cast
        loss_dtype = str(loss.dtype).removeprefix("torch.")
        error = abs(loss.item() - reference)
        print(f"| `{name}` | {loss_dtype} | {loss.item():.6f} | {error:.1e} |")
# --8<-- [end:low_precision]
