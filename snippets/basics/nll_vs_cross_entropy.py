"""NLLLoss and CrossEntropyLoss: definitions, targets, shapes and arguments."""

# --8<-- [start:definitions]
import torch
import torch.nn.functional as F

torch.manual_seed(0)
logits = torch.randn(4, 3)  # x: N=4 samples, C=3 classes
target = torch.tensor([0, 2, 1, 2])  # y: class indices, dtype int64
picked = logits[torch.arange(4), target]  # x[n, y_n]
lse = torch.logsumexp(logits, dim=1)  # log sum_c exp(x[n, c])

print("nll_loss(x, y)      :", F.nll_loss(logits, target, reduction="none"))
print("-x[n, y_n]          :", -picked)
print("cross_entropy(x, y) :", F.cross_entropy(logits, target, reduction="none"))
print("-(x[n, y_n] - lse)  :", -(picked - lse))
# --8<-- [end:definitions]

# --8<-- [start:equality]
log_probs = F.log_softmax(logits, dim=1)  # what NLLLoss expects
print("rows of exp(log_probs) sum to:", log_probs.exp().sum(dim=1))

weight = torch.tensor([0.5, 1.0, 2.0])
settings = {
    "reduction='mean'": {},
    "reduction='sum'": {"reduction": "sum"},
    "reduction='none'": {"reduction": "none"},
    "weight=w": {"weight": weight},
}
for name, kwargs in settings.items():
    ce = F.cross_entropy(logits, target, **kwargs)
    nll = F.nll_loss(log_probs, target, **kwargs)
    print(f"{name:<17} torch.equal(cross_entropy, nll_loss): {torch.equal(ce, nll)}")
# --8<-- [end:equality]

# --8<-- [start:difference]
ce = F.cross_entropy(logits, target, reduction="none")
nll_of_logits = F.nll_loss(logits, target, reduction="none")
print("cross_entropy - nll_loss(logits):", ce - nll_of_logits)
print("logsumexp(x) per sample         :", lse)
# --8<-- [end:difference]

# --8<-- [start:probability_targets]
soft = torch.tensor(
    [
        [0.7, 0.2, 0.1],
        [0.0, 0.0, 1.0],
        [0.1, 0.8, 0.1],
        [1 / 3, 1 / 3, 1 / 3],
    ]
)  # same shape as the logits, float, each row sums to 1
loss = F.cross_entropy(logits, soft)
by_hand = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
print(f"cross_entropy(x, probabilities): {loss.item():.6f}")
print(f"-sum_c q_c log p_c, mean over N: {by_hand.item():.6f}")

one_hot = F.one_hot(target, num_classes=3).float()
print(f"one-hot float target           : {F.cross_entropy(logits, one_hot).item():.6f}")
print(f"class index target             : {F.cross_entropy(logits, target).item():.6f}")
# --8<-- [end:probability_targets]

# --8<-- [start:target_arguments]
weight = torch.tensor([0.5, 1.0, 2.0])
calls = {
    "cross_entropy(x, indices, ignore_index=1)": lambda: F.cross_entropy(
        logits, target, ignore_index=1
    ),
    "cross_entropy(x, probs, ignore_index=1)": lambda: F.cross_entropy(
        logits, soft, ignore_index=1
    ),
    "cross_entropy(x, probs, ignore_index=-1)": lambda: F.cross_entropy(
        logits, soft, ignore_index=-1
    ),
    "cross_entropy(x, probs, weight=w)": lambda: F.cross_entropy(logits, soft, weight=weight),
    "cross_entropy(x, probs, label_smoothing=0.1)": lambda: F.cross_entropy(
        logits, soft, label_smoothing=0.1
    ),
    "cross_entropy(x, 2 * probs)": lambda: F.cross_entropy(logits, 2 * soft),
    "nll_loss(log_softmax(x), probs)": lambda: F.nll_loss(log_probs, soft),
    "cross_entropy(x, [0, 3, 1, 2])": lambda: F.cross_entropy(logits, torch.tensor([0, 3, 1, 2])),
}
for name, call in calls.items():
    try:
        print(f"{name:<45} -> {call().item():.4f}")
    except (RuntimeError, IndexError) as error:
        print(f"{name:<45} -> {type(error).__name__}: {error}")
reference = F.cross_entropy(logits, soft).item()
print(f"{'cross_entropy(x, probs), for comparison':<45} -> {reference:.4f}")
# --8<-- [end:target_arguments]

# --8<-- [start:kl_div]
import warnings  # noqa: E402

log_p = F.log_softmax(logits, dim=1)
kl = F.kl_div(log_p, soft, reduction="batchmean")  # KL(q || p), mean over the N samples
entropy = -(soft * soft.clamp(min=1e-12).log()).sum(dim=1).mean()  # H(q): 0 log 0 taken as 0
print(f"cross_entropy(x, q)      : {F.cross_entropy(logits, soft).item():.6f}")
print(f"kl_div(log p, q) + H(q)  : {(kl + entropy).item():.6f}")
x = logits.clone().requires_grad_()
(grad_ce,) = torch.autograd.grad(F.cross_entropy(x, soft), x)
(grad_kl,) = torch.autograd.grad(F.kl_div(F.log_softmax(x, dim=1), soft, reduction="batchmean"), x)
print("same gradient wrt the logits:", torch.allclose(grad_ce, grad_kl, atol=1e-7))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    F.kl_div(log_p, soft)  # the default reduction="mean"
print(f"reduction='mean': {caught[0].category.__name__}: {caught[0].message}")
x3 = torch.randn(2, 3, 5, requires_grad=True)  # (N, C, d_1) input
q3 = torch.softmax(torch.randn(2, 3, 5), dim=1)
(g_ce,) = torch.autograd.grad(F.cross_entropy(x3, q3), x3)
(g_kl,) = torch.autograd.grad(F.kl_div(F.log_softmax(x3, dim=1), q3, reduction="batchmean"), x3)
ratio = g_kl / g_ce
print(f"(2, 3, 5) input, grad kl / grad ce: from {ratio.min():.6f} to {ratio.max():.6f}")
# --8<-- [end:kl_div]

# --8<-- [start:shapes]
torch.manual_seed(0)
examples = {
    "one sample": (torch.randn(3), torch.tensor(1)),
    "batch": (torch.randn(4, 3), torch.tensor([0, 2, 1, 2])),
    "segmentation": (torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))),
}
for name, (x, y) in examples.items():
    per_element = F.cross_entropy(x, y, reduction="none")
    print(
        f"{name:<12} input {tuple(x.shape)!s:<12} target {tuple(y.shape)!s:<9}"
        f" -> reduction='none' gives {tuple(per_element.shape)}"
    )
# --8<-- [end:shapes]

# --8<-- [start:sequence]
torch.manual_seed(0)
B, T, V = 2, 7, 11  # batch, time steps, vocabulary (classes)
seq_logits = torch.randn(B, T, V)  # what a sequence model returns
tokens = torch.randint(0, V, (B, T))
try:
    F.cross_entropy(seq_logits, tokens)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")

permuted = F.cross_entropy(seq_logits.permute(0, 2, 1), tokens)  # (B, V, T): classes in dim 1
flattened = F.cross_entropy(seq_logits.reshape(-1, V), tokens.reshape(-1))  # (B*T, V), (B*T,)
print("permute(0, 2, 1):", permuted.item())
print("reshape(-1, V)  :", flattened.item())
# --8<-- [end:sequence]

# --8<-- [start:sequence_silent]
square_logits = torch.randn(B, V, V)  # T == V: the wrong layout now has a valid shape
square_tokens = torch.randint(0, V, (B, V))
print("no permute, T == V:", F.cross_entropy(square_logits, square_tokens).item())
print("permute(0, 2, 1)  :", F.cross_entropy(square_logits.permute(0, 2, 1), square_tokens).item())
# --8<-- [end:sequence_silent]

# --8<-- [start:weighted_mean]
torch.manual_seed(0)
logits = torch.randn(6, 3)
target = torch.tensor([0, 0, 0, 0, 1, 2])  # class 0 is frequent
weight = torch.tensor([0.2, 1.0, 3.0])  # class weights
per_sample = F.cross_entropy(logits, target, weight=weight, reduction="none")
print("w[y_n] * loss_n     :", per_sample)
print("reduction='mean'    :", F.cross_entropy(logits, target, weight=weight).item())
print("sum / sum_n w[y_n]  :", (per_sample.sum() / weight[target].sum()).item())
print("sum / N             :", (per_sample.sum() / len(target)).item())
# --8<-- [end:weighted_mean]

# --8<-- [start:weighted_mean_probabilities]
one_hot = F.one_hot(target, num_classes=3).float()
print("one-hot float target, mean:", F.cross_entropy(logits, one_hot, weight=weight).item())
print("class index target, mean  :", F.cross_entropy(logits, target, weight=weight).item())
# --8<-- [end:weighted_mean_probabilities]

# --8<-- [start:ignore_index]
torch.manual_seed(0)
logits = torch.randn(4, 3)
target = torch.tensor([0, -100, 1, -100])  # -100 is the default ignore_index (padding)
per_sample = F.cross_entropy(logits, target, reduction="none")
print("reduction='none':", per_sample)
print("reduction='mean':", F.cross_entropy(logits, target).item())
print("sum / 2 kept    :", (per_sample.sum() / 2).item())
weight = torch.tensor([0.2, 1.0, 3.0])
kept_weight = weight[target[target != -100]].sum()  # weights of the kept targets only
weighted_sum = F.cross_entropy(logits, target, weight=weight, reduction="sum")
print("weight=w, mean             :", F.cross_entropy(logits, target, weight=weight).item())
print("weight=w, sum / kept weight:", (weighted_sum / kept_weight).item())

all_ignored = torch.full((4,), -100)  # e.g. a batch that is all padding
print("every target ignored, mean:", F.cross_entropy(logits, all_ignored).item())
print("every target ignored, sum :", F.cross_entropy(logits, all_ignored, reduction="sum").item())
count = (all_ignored != -100).sum()  # how many targets are kept
safe = F.cross_entropy(logits, all_ignored, reduction="sum") / count.clamp(min=1)
print("sum / max(count, 1)       :", safe.item())

x = logits.clone().requires_grad_()
nan_mean = F.cross_entropy(x, all_ignored)
nan_mean.backward()
print("gradient of that nan mean :", x.grad.abs().max().item())  # 0: nothing flows back
# --8<-- [end:ignore_index]

# --8<-- [start:all_ignored_step]
for name, make in {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.1),
    "SGD, momentum=0.9": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.1),
}.items():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3)
    optimizer = make(model.parameters())
    kept = torch.tensor([0, 1, 2, 1])  # one ordinary step first: momentum and Adam have state
    F.cross_entropy(model(torch.randn(4, 3)), kept).backward()
    optimizer.step()
    optimizer.zero_grad()
    before = model.weight.detach().clone()
    summed = F.cross_entropy(model(torch.randn(4, 3)), all_ignored, reduction="sum")
    (summed / count.clamp(min=1)).backward()  # an all-padding batch: loss 0, gradient 0
    optimizer.step()
    moved = (model.weight.detach() - before).abs().max().item()
    print(f"{name:<18} largest change of a weight: {moved:.4f}")
# --8<-- [end:all_ignored_step]

# --8<-- [start:label_smoothing]
torch.manual_seed(0)
logits = torch.randn(4, 3)
target = torch.tensor([0, 2, 1, 2])
eps, C = 0.1, 3
smoothed_target = (1 - eps) * F.one_hot(target, C).float() + eps / C
print("smoothed target of sample 0:", smoothed_target[0])
smoothed = F.cross_entropy(logits, target, label_smoothing=eps)
print(f"label_smoothing=0.1         : {smoothed.item():.6f}")
print(f"that target as probabilities: {F.cross_entropy(logits, smoothed_target).item():.6f}")
# --8<-- [end:label_smoothing]

# --8<-- [start:smoothing_with_weight]
p0 = torch.linspace(0.001, 0.999, 999)  # candidate predicted probability of class 0
candidates = torch.stack([p0, 1 - p0], dim=1).log()  # logits whose softmax is (p0, 1 - p0)
target = torch.zeros(999, dtype=torch.long)  # every candidate is scored against class 0
q = torch.tensor([0.95, 0.05])  # smoothed target of class 0 (eps = 0.1, C = 2)
for w in [[1.0, 1.0], [0.1, 0.9]]:
    weight = torch.tensor(w)
    losses = F.cross_entropy(
        candidates, target, weight=weight, label_smoothing=0.1, reduction="none"
    )
    predicted = (weight * q / (weight * q).sum())[0].item()
    print(f"weight={w}: lowest loss at p0 = {p0[losses.argmin()].item():.3f}", end="; ")
    print(f"(w * q)[0] / sum(w * q) = {predicted:.3f}")
# --8<-- [end:smoothing_with_weight]


# --8<-- [start:smoothing_weight_workaround]
def smoothed_weighted_cross_entropy(logits, target, weight, label_smoothing, ignore_index=-100):
    """(N, C) logits: smooth the target first, then weight each sample by its class's weight."""
    kept = target != ignore_index  # drop ignored targets first: weight[-100] would raise
    logits, target = logits[kept], target[kept]
    per_sample = F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction="none")
    return (weight[target] * per_sample).sum() / weight[target].sum()


weight = torch.tensor([0.1, 0.9])
losses = [  # each candidate prediction scored alone, against class 0
    smoothed_weighted_cross_entropy(candidates[i : i + 1], target[i : i + 1], weight, 0.1)
    for i in range(len(p0))
]
print(f"weight=[0.1, 0.9]: lowest loss at p0 = {p0[torch.stack(losses).argmin()].item():.3f}")

torch.manual_seed(0)
x, y = torch.randn(5, 2), torch.tensor([0, 1, -100, 1, 0])  # one padded target
ours = smoothed_weighted_cross_entropy(x, y, weight, label_smoothing=0.0)
builtin = F.cross_entropy(x, y, weight=weight)
print(f"no smoothing: {ours.item():.6f} vs F.cross_entropy(weight=w): {builtin.item():.6f}")
# --8<-- [end:smoothing_weight_workaround]
