"""Writing your own loss: a blog-style broken focal loss, its real failures, and the checks
that catch them, run against the chapter's focal_loss (snippets/losses/focal.py).

Run it to see the examples of docs/losses/writing_your_own.md.
"""

import os
import sys
from pathlib import Path

# --8<-- [start:broken]
import torch
import torch.nn.functional as F


def blog_focal_loss(logits, target, alpha=0.25, gamma=2.0):
    """The focal loss as it is often written in blog posts. Do not use it."""
    probs = F.softmax(logits, dim=1)
    log_probs = torch.log(probs)  # log of a softmax: underflows to -inf
    p_t = probs.gather(1, target)  # needs a (N, 1) index, gets (N,)
    log_p_t = log_probs.gather(1, target)
    loss = -alpha * (1 - p_t) ** gamma * log_p_t  # alpha: one number for every class
    return loss  # no reduction: shape (N, 1)


# --8<-- [end:broken]

# The chapter's focal.py, imported from the snippets root (the page runs its sections in an
# earlier block).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from losses.focal import focal_loss  # noqa: E402

# The page runs the sections below from the repository root, where mkdocs builds the site.
# Run alone from any folder, this file moves there first, so the same relative paths work.
os.chdir(Path(__file__).resolve().parents[2])

# --8<-- [start:broken_gather]
torch.manual_seed(0)
logits = torch.randn(4, 3, requires_grad=True)
target = torch.tensor([0, 2, 1, 2])  # class indices, as F.cross_entropy takes them
try:
    blog_focal_loss(logits, target)
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
# --8<-- [end:broken_gather]

# --8<-- [start:broken_unreduced]
loss = blog_focal_loss(logits, target.view(-1, 1))  # the usual fix for the error above
print("shape of the loss:", tuple(loss.shape))
try:
    loss.backward()
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
# --8<-- [end:broken_unreduced]

# --8<-- [start:broken_ignore_index]
target_with_ignored = torch.tensor([[0], [2], [1], [-100]])  # -100: ignore this element
try:
    blog_focal_loss(logits, target_with_ignored).mean()
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
# --8<-- [end:broken_ignore_index]

# --8<-- [start:broken_underflow]
confident = torch.tensor([[0.0, 120.0, 0.0]], requires_grad=True)  # sure of class 1
wrong = torch.tensor([0])  # but the target is class 0
broken = blog_focal_loss(confident, wrong.view(-1, 1)).mean()
broken.backward()
print("blog_focal_loss:", broken.item(), " gradient:", confident.grad.tolist())
confident.grad = None
fixed = focal_loss(confident, wrong, gamma=2.0)
fixed.backward()
print("focal_loss:     ", fixed.item(), " gradient:", confident.grad.tolist())
# --8<-- [end:broken_underflow]

# --8<-- [start:broken_alpha]
torch.manual_seed(0)
for _ in range(3):
    batch = torch.randn(6, 3)
    labels = torch.randint(3, (6, 1))
    ratio = blog_focal_loss(batch, labels, alpha=0.25) / blog_focal_loss(batch, labels, alpha=1.0)
    print("alpha=0.25 / alpha=1, per sample:", ratio.flatten().numpy().round(6))
# --8<-- [end:broken_alpha]

# --8<-- [start:gradcheck]
torch.manual_seed(0)
logits64 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
target = torch.tensor([0, 3, 1, 2, -100])
weight = torch.tensor([0.5, 1.0, 2.0, 1.0], dtype=torch.float64)
passed = torch.autograd.gradcheck(
    lambda x: focal_loss(x, target, gamma=2.0, weight=weight), (logits64,)
)
print("gradcheck(focal_loss):", passed)
# gradcheck compares the gradient with the function: it cannot tell that the function is wrong.
labels = torch.tensor([[0], [3], [1], [2], [0]])
passed = torch.autograd.gradcheck(lambda x: blog_focal_loss(x, labels).mean(), (logits64,))
print("gradcheck(blog_focal_loss):", passed)
# --8<-- [end:gradcheck]

# --8<-- [start:limits]
torch.manual_seed(0)
logits = torch.randn(6, 4, 3, requires_grad=True)  # (N, C, d1): 4 classes, 3 positions
target = torch.randint(4, (6, 3))
target[0, 0] = -100
weight = torch.tensor([0.5, 1.0, 2.0, 1.0])
focal = focal_loss(logits, target, gamma=0.0, weight=weight)
(focal_grad,) = torch.autograd.grad(focal, logits)
ce = F.cross_entropy(logits, target, weight=weight)
(ce_grad,) = torch.autograd.grad(ce, logits)
print("gamma=0 loss equals CE:    ", torch.allclose(focal, ce))
print("gamma=0 gradient equals CE:", torch.allclose(focal_grad, ce_grad))
# --8<-- [end:limits]

# --8<-- [start:extreme]
torch.manual_seed(0)
signs = torch.randint(0, 2, (8, 5)).float() * 2 - 1
huge = (signs * 1e4).requires_grad_()  # float32 logits of magnitude 1e4
labels = torch.randint(5, (8,))
for name, loss_fn in {
    "focal_loss": lambda x: focal_loss(x, labels),
    "blog_focal_loss": lambda x: blog_focal_loss(x, labels.view(-1, 1)).mean(),
}.items():
    huge.grad = None
    value = loss_fn(huge)
    value.backward()
    finite = torch.isfinite(value).item() and torch.isfinite(huge.grad).all().item()
    print(f"{name:16s} loss = {value.item():.6g}, loss and gradient finite: {finite}")
# --8<-- [end:extreme]

# --8<-- [start:independent]
torch.manual_seed(0)
logits64 = torch.randn(7, 4, dtype=torch.float64) * 3
target = torch.randint(4, (7,))
weight = torch.tensor([0.5, 1.0, 2.0, 1.0], dtype=torch.float64)
# The definition, written as plainly as possible, in float64:
p = torch.softmax(logits64, dim=1)[torch.arange(7), target]
w = weight[target]
reference = (-w * (1 - p) ** 2 * torch.log(p)).sum() / w.sum()
actual = focal_loss(logits64, target, gamma=2.0, weight=weight)
print("focal_loss:", actual.item())
print("reference: ", reference.item())
print("equal (torch.allclose):", torch.allclose(actual, reference))
# --8<-- [end:independent]

# --8<-- [start:conventions_table]
import importlib  # noqa: E402 (the page runs this section alone)
import inspect  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, "snippets")  # the snippets root, from the repository root
chapter = {
    "focal": ("focal_loss", "FocalLoss", "sigmoid_focal_loss"),
    "poly": ("poly1_cross_entropy",),
    "logit_adjustment": ("logit_adjusted_cross_entropy",),
    "ldam": ("LDAMLoss",),
    "noisy_labels": ("generalized_cross_entropy", "symmetric_cross_entropy"),
    "margin": ("crammer_singer_loss",),
    "large_margin_softmax": ("margin_logits",),
    "neighbors": ("soft_nearest_neighbor_loss",),
}
print("| loss | `weight` | `ignore_index` | `reduction` |")
print("| --- | --- | --- | --- |")
for module_name, names in chapter.items():
    module = importlib.import_module(f"losses.{module_name}")
    for name in names:
        loss = getattr(module, name)
        parameters = inspect.signature(loss).parameters  # a class: its __init__
        cells = []
        for argument in ("weight", "ignore_index", "reduction"):
            if argument in parameters:
                cells.append("✓")
            elif hasattr(loss, argument):  # a class attribute, not an argument
                cells.append(f"fixed: `{getattr(loss, argument)}`")
            else:
                cells.append("—")
        print(f"| `{name}` | " + " | ".join(cells) + " |")
# --8<-- [end:conventions_table]

# --8<-- [start:shared_helpers]
import ast  # noqa: E402 (the page runs this section alone)
import pathlib  # noqa: E402

holders = {}  # top-level function -> the loss files that define it
for path in sorted(pathlib.Path("snippets/losses").glob("*.py")):
    if path.stem in ("benchmark", "index"):  # not loss files
        continue
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name != "main":
            holders.setdefault(node.name, []).append(path.name)
print("| helper | files that carry a copy |")
print("| --- | --- |")
for name, files in holders.items():
    if len(files) > 1:
        print(f"| `{name}` | " + ", ".join(f"`{file}`" for file in files) + " |")
# --8<-- [end:shared_helpers]

# --8<-- [start:value_checks]
import torch._dynamo  # noqa: E402


def checked_with_any(input, target):
    """The check as it is usually written: a Python `if` on a value read from the tensor."""
    if ((target < 0) | (target >= input.shape[1])).any():
        raise IndexError("target out of range")
    return F.cross_entropy(input, target)


torch.manual_seed(0)
logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
for name, loss_fn in {"checked_with_any": checked_with_any, "focal_loss": focal_loss}.items():
    explanation = torch._dynamo.explain(loss_fn)(logits, labels)
    print(f"{name}: graph breaks = {explanation.graph_break_count}")
try:
    torch.compile(checked_with_any, fullgraph=True, backend="eager")(logits, labels)
except torch._dynamo.exc.Unsupported as error:
    print("fullgraph=True:", str(error).splitlines()[0])

bad = torch.tensor([0, 1, 2, 3, 5, 0])  # 5 is not a class of C=5
compiled = torch.compile(focal_loss, fullgraph=True, dynamic=True)
for name, call in {
    "F.cross_entropy, eager, CPU": lambda: F.cross_entropy(logits, bad),
    "focal_loss, eager, CPU": lambda: focal_loss(logits, bad),
    "focal_loss, compiled, CPU": lambda: compiled(logits, bad),
}.items():
    try:
        call()
    except (IndexError, RuntimeError) as error:
        message = str(error).splitlines()[0]
        if "main.cpp" in message:  # the generated kernel's file name changes with the build
            message = message[message.index("index out of bounds") :]
        print(f"{name}: {type(error).__name__}: {message}")
# --8<-- [end:value_checks]
