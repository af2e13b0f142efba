"""Common mistakes with NLLLoss and CrossEntropyLoss: symptom, cause and fix."""

# --8<-- [start:train]
import math

import torch
import torch.nn.functional as F
from sklearn.datasets import make_blobs

X, y = make_blobs(n_samples=300, centers=3, n_features=2, random_state=0)
features = torch.tensor(X, dtype=torch.float32)
labels = torch.tensor(y)  # class indices 0, 1, 2 (int64), 100 samples each


def train(loss_fn, steps=300, lr=0.1, record=(0, 1, 2, 5, 10, 20, 50, 100, 200, 300)):
    """Full-batch SGD on a small MLP; returns {step: (loss, accuracy, logits)}."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = {}
    for step in range(steps + 1):
        logits = model(features)
        loss = loss_fn(logits, labels)
        if step in record:
            accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
            history[step] = (loss.item(), accuracy, logits.detach())
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return history


def table(runs):
    """Print the histories as a Markdown table."""
    print("| step | " + " | ".join(f"{name}: loss | accuracy" for name in runs) + " |")
    print("|---:|" + "---:|---:|" * len(runs))
    for step in next(iter(runs.values())):
        cells = [f"{runs[name][step][0]:.4g} | {runs[name][step][1]:.3f}" for name in runs]
        print(f"| {step} | " + " | ".join(cells) + " |")


# --8<-- [end:train]

# --8<-- [start:raw_logits_run]
wrong = train(F.nll_loss)  # the model's raw logits go straight into NLLLoss
right = train(F.cross_entropy)  # the same logits into CrossEntropyLoss
table({"`nll_loss(logits)`": wrong, "`cross_entropy(logits)`": right})
# --8<-- [end:raw_logits_run]

# --8<-- [start:raw_logits_collapse]
print("| step | mean logit of class 0, 1, 2 | samples predicted as class 0, 1, 2 |")
print("|---:|---|---|")
for step in [0, 1, 2, 5, 10, 20, 50]:
    logits = wrong[step][2]  # the nll_loss(logits) run above, all 300 samples
    means = ", ".join(f"{m:.3g}" for m in logits.mean(dim=0).tolist())
    counts = torch.bincount(logits.argmax(dim=1), minlength=3).tolist()
    print(f"| {step} | {means} | {counts} |")
# --8<-- [end:raw_logits_collapse]

# --8<-- [start:shift]
torch.manual_seed(0)
logits = torch.randn(4, 3)
target = torch.tensor([0, 2, 1, 2])
for c in [0.0, 10.0, 100.0]:
    shifted = logits + c  # the same prediction: argmax and softmax do not change
    print(
        f"logits + {c:<5g} argmax {shifted.argmax(dim=1).tolist()}"
        f"  nll_loss {F.nll_loss(shifted, target).item():9.4f}"
        f"  cross_entropy {F.cross_entropy(shifted, target).item():.4f}"
    )
# --8<-- [end:shift]

# --8<-- [start:raw_logits_fix]
log_probs = F.log_softmax(logits, dim=1)
print("nll_loss(log_softmax(logits)):", F.nll_loss(log_probs, target).item())
print("cross_entropy(logits)        :", F.cross_entropy(logits, target).item())
# --8<-- [end:raw_logits_fix]

# --8<-- [start:double_softmax_floor]
print("|  C | perfect prediction | all mass on a wrong class | -1 + log(e + C - 1) |")
print("|---:|---:|---:|---:|")
for C in [2, 3, 10, 1000]:
    target = torch.tensor([0])
    perfect = F.one_hot(torch.tensor([0]), C).float()  # softmax output, all mass on class 0
    wrong_class = F.one_hot(torch.tensor([1]), C).float()  # all mass on class 1
    best = F.cross_entropy(perfect, target).item()  # softmax output into CrossEntropyLoss
    worst = F.cross_entropy(wrong_class, target).item()
    print(f"| {C} | {best:.4f} | {worst:.4f} | {-1 + math.log(math.e + C - 1):.4f} |")
# --8<-- [end:double_softmax_floor]

# --8<-- [start:double_softmax_gradient]
target = torch.tensor([1])
for name, transform in [("cross_entropy(logits)", None), ("cross_entropy(softmax)", "softmax")]:
    logits = torch.tensor([[4.0, 0.0, -4.0]], requires_grad=True)  # confident and wrong
    inputs = logits.softmax(dim=1) if transform else logits
    F.cross_entropy(inputs, target).backward()
    print(f"{name:<23} gradient wrt logits: {logits.grad[0]}")
# --8<-- [end:double_softmax_gradient]

# --8<-- [start:double_softmax_run]
double = train(lambda logits, y: F.cross_entropy(logits.softmax(dim=1), y))
table({"`cross_entropy(softmax(logits))`": double, "`cross_entropy(logits)`": right})
# --8<-- [end:double_softmax_run]

# --8<-- [start:log_of_softmax]
target = torch.tensor([0])
for name in ["log(softmax)", "log_softmax"]:
    logits = torch.tensor([[0.0, 120.0, 0.0]], requires_grad=True)
    if name == "log(softmax)":
        log_p = torch.log(torch.softmax(logits, dim=1))  # underflows to log(0) = -inf
    else:
        log_p = F.log_softmax(logits, dim=1)
    loss = -log_p.gather(1, target.unsqueeze(1)).mean()
    loss.backward()
    print(f"{name:<13} loss = {loss.item():<5g} gradient = {logits.grad[0].tolist()}")
# --8<-- [end:log_of_softmax]

# --8<-- [start:float_target]
torch.manual_seed(0)
logits = torch.randn(4, 3)
target = torch.tensor([0.0, 2.0, 1.0, 2.0])  # e.g. labels read from a float array
try:
    F.cross_entropy(logits, target)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
print("fixed with .long():", F.cross_entropy(logits, target.long()).item())
# --8<-- [end:float_target]

# --8<-- [start:target_dtypes]
for dtype in [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]:
    try:
        value = F.cross_entropy(logits, target.to(dtype)).item()
        print(f"{dtype!s:<12} -> {value:.4f}")
    except RuntimeError as error:
        print(f"{dtype!s:<12} -> {type(error).__name__}: {error}")
labels_int64 = torch.tensor([3, 255, 256, 300, -100])
print("int64 labels", labels_int64.tolist(), "-> uint8", labels_int64.to(torch.uint8).tolist())
# --8<-- [end:target_dtypes]

# --8<-- [start:labels_from_one]
labels_1_to_3 = torch.tensor([1, 3, 2, 3])  # classes numbered 1..C, e.g. from a CSV file
try:
    F.cross_entropy(logits, labels_1_to_3)
except IndexError as error:
    print(f"{type(error).__name__}: {error}")
no_class_3 = torch.tensor([1, 2, 2, 1])  # this batch happens to hold no label equal to C = 3
print("no error, wrong classes:", F.cross_entropy(logits, no_class_3).item())
print("fixed with target - 1  :", F.cross_entropy(logits, labels_1_to_3 - 1).item())
# --8<-- [end:labels_from_one]

# --8<-- [start:column_target]
target = torch.tensor([[0], [2], [1], [2]])  # shape (N, 1)
try:
    F.cross_entropy(logits, target)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
print("fixed with .squeeze(1):", F.cross_entropy(logits, target.squeeze(1)).item())
# --8<-- [end:column_target]

# --8<-- [start:one_hot_long]
target = F.one_hot(torch.tensor([0, 2, 1, 2]), num_classes=3)  # dtype int64
try:
    F.cross_entropy(logits, target)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
print("fixed with .argmax(dim=1):", F.cross_entropy(logits, target.argmax(dim=1)).item())
print("or with .float()         :", F.cross_entropy(logits, target.float()).item())
# --8<-- [end:one_hot_long]

# --8<-- [start:gather_1d]
target = torch.tensor([0, 2, 1, 2])
log_probs = F.log_softmax(logits, dim=1)
try:
    log_probs.gather(1, target)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
picked = log_probs.gather(1, target.unsqueeze(1))  # index of shape (N, 1)
alpha = torch.tensor([0.25, 0.5, 0.25])  # a per-class factor, indexed by the target
print("gather(1, target.unsqueeze(1))      :", tuple(picked.shape))
print("(N, 1) * (N,) broadcasts silently to:", tuple((picked * alpha[target]).shape))
print("after .squeeze(1)                   :", tuple((picked.squeeze(1) * alpha[target]).shape))
# --8<-- [end:gather_1d]

# --8<-- [start:unreduced_backward]
logits = torch.randn(4, 3, requires_grad=True)
loss = F.cross_entropy(logits, target, reduction="none")  # shape (N,)
try:
    loss.backward()
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
loss.mean().backward()  # reduce to a scalar first
print("after .mean(): gradient of shape", tuple(logits.grad.shape))
# --8<-- [end:unreduced_backward]

# --8<-- [start:scalar_alpha]
torch.manual_seed(0)
logits = torch.randn(6, 3)
target = torch.tensor([0, 0, 0, 0, 1, 2])  # class 0 is frequent
ce = F.cross_entropy(logits, target, reduction="none")
weight = torch.tensor([0.5, 2.0, 2.0])  # class weights
weighted = F.cross_entropy(logits, target, weight=weight, reduction="none")
print("alpha * loss / loss, alpha=0.25:", 0.25 * ce / ce)
print("weighted loss / loss           :", weighted / ce)


def parameters_after(optimizer_class, scale, lr, steps=20):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 3)
    optimizer = optimizer_class(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        (scale * F.cross_entropy(model(features), labels)).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


sgd_alpha = parameters_after(torch.optim.SGD, scale=0.25, lr=0.1)
sgd_lr = parameters_after(torch.optim.SGD, scale=1.0, lr=0.025)
adam_alpha = parameters_after(torch.optim.Adam, scale=0.25, lr=0.01)
adam_plain = parameters_after(torch.optim.Adam, scale=1.0, lr=0.01)
print("SGD:  alpha=0.25, lr=0.1 equals alpha=1, lr=0.025:", torch.allclose(sgd_alpha, sgd_lr))
print("Adam: alpha=0.25 equals alpha=1 (lr=0.01 both)  :", torch.allclose(adam_alpha, adam_plain))


def adam(weight_decay, decoupled=False):  # Adam adds weight_decay to the gradient, AdamW does not
    optimizer_class = torch.optim.AdamW if decoupled else torch.optim.Adam
    return lambda params, lr: optimizer_class(params, lr=lr, weight_decay=weight_decay)


adam_l2 = parameters_after(adam(0.1), scale=0.25, lr=0.01)
comparisons = {
    "Adam(weight_decay=0.1):  alpha=0.25 equals alpha=1": (
        adam_l2,
        parameters_after(adam(0.1), scale=1.0, lr=0.01),
    ),
    "Adam(weight_decay=0.1):  ... equals alpha=1, weight_decay=0.4": (
        adam_l2,
        parameters_after(adam(0.4), scale=1.0, lr=0.01),
    ),
    "AdamW(weight_decay=0.1): alpha=0.25 equals alpha=1": (
        parameters_after(adam(0.1, decoupled=True), scale=0.25, lr=0.01),
        parameters_after(adam(0.1, decoupled=True), scale=1.0, lr=0.01),
    ),
}
for name, (a, b) in comparisons.items():
    print(f"{name:<61}: {torch.allclose(a, b)}")
# --8<-- [end:scalar_alpha]

# --8<-- [start:ignore_real_class]
logits = torch.zeros(3, 3, requires_grad=True)  # no preference between the classes yet
target = torch.tensor([0, 1, 2])  # class 2 means "unknown", to be left out
loss = F.cross_entropy(logits, target, ignore_index=2)
loss.backward()
print("ignore_index=2         :", loss.item())
print("gradient wrt class 2   :", logits.grad[:, 2])

kept = target != 2
print("class 2 column removed :", F.cross_entropy(logits[kept][:, :2], target[kept]).item())
masked = logits.masked_fill(torch.tensor([False, False, True]), float("-inf"))
print("class 2 logit -inf     :", F.cross_entropy(masked, target, ignore_index=2).item())
# --8<-- [end:ignore_real_class]

# --8<-- [start:missing_import]
source = """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

Net()(torch.zeros(1, 2))
"""
try:
    exec(source, {})  # a fresh module namespace: only what the source imports exists
except NameError as error:
    print(f"{type(error).__name__}: {error}")
exec("import torch.nn.functional as F\n" + source, {})  # with the import, it runs
print("with `import torch.nn.functional as F`: OK")
# --8<-- [end:missing_import]
