"""Binary and multi-label classification: BCEWithLogitsLoss, multi-hot targets, pos_weight."""

# --8<-- [start:binary_equivalence]
import torch
import torch.nn.functional as F

torch.manual_seed(0)
z = 3 * torch.randn(8)  # one logit per sample
y = torch.randint(0, 2, (8,))  # 0 or 1
two_logits = torch.stack([torch.zeros_like(z), z], dim=1)  # the logits [0, z]

bce = F.binary_cross_entropy_with_logits(z, y.float())
ce = F.cross_entropy(two_logits, y)
print("binary_cross_entropy_with_logits(z, y):", bce.item())
print("cross_entropy([0, z], y)              :", ce.item())
print("sigmoid(z)          :", torch.sigmoid(z)[:4])
print("softmax([0, z])[:, 1]:", torch.softmax(two_logits, dim=1)[:4, 1])
# --8<-- [end:binary_equivalence]

# --8<-- [start:bce_with_logits]
print("| target | z | sigmoid(z) | BCELoss(sigmoid(z)) | d/dz | BCEWithLogitsLoss(z) | d/dz |")
print("|---:|---:|---:|---:|---:|---:|---:|")
cases = [(0.0, z) for z in (15.0, 16.5, 17.0, 20.0)]
cases += [(1.0, z) for z in (-20.0, -30.0, -90.0, -110.0)]
for label, value in cases:  # confident wrong predictions: the exact loss is about |z|
    y = torch.tensor([label])
    z = torch.tensor([value], requires_grad=True)
    p = torch.sigmoid(z)  # float32: rounds to exactly 1.0 from z = 16.7 on
    from_probabilities = F.binary_cross_entropy(p, y)
    (grad_probabilities,) = torch.autograd.grad(from_probabilities, z)
    from_logits = F.binary_cross_entropy_with_logits(z, y)
    (grad_logits,) = torch.autograd.grad(from_logits, z)
    print(
        f"| {label:g} | {value:g} | {p.item():.9g} | {from_probabilities.item():.4g} "
        f"| {grad_probabilities.item() + 0.0:.3g} | {from_logits.item():.4g} "
        f"| {grad_logits.item():.3g} |"
    )
# --8<-- [end:bce_with_logits]

# --8<-- [start:multilabel]
torch.manual_seed(0)
logits = torch.randn(4, 5)  # 4 samples, 5 labels that can be on at the same time
multi_hot = torch.tensor(
    [
        [1, 0, 1, 0, 0],
        [0, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],  # no label at all
    ],
    dtype=torch.float32,
)
loss = F.binary_cross_entropy_with_logits(logits, multi_hot)
by_hand = -(multi_hot * F.logsigmoid(logits) + (1 - multi_hot) * F.logsigmoid(-logits)).mean()
print("binary_cross_entropy_with_logits:", loss.item())
print("mean over N*C of each label's binary loss:", by_hand.item())
print("predicted labels (sigmoid > 0.5):\n", (torch.sigmoid(logits) > 0.5).int())
print("logits > 0 gives the same labels:", torch.equal(logits > 0, torch.sigmoid(logits) > 0.5))
tiny = torch.tensor([1e-8])  # a positive logit so close to 0 that its sigmoid rounds to 0.5
print(
    "z = 1e-8: z > 0 is", (tiny > 0).item(), "; sigmoid(z) > 0.5 is", (tiny.sigmoid() > 0.5).item()
)
# --8<-- [end:multilabel]

# --8<-- [start:column_logits]
torch.manual_seed(0)
column = torch.randn(4, 1)  # a binary head nn.Linear(features, 1) returns (N, 1)
y = torch.tensor([1.0, 0.0, 1.0, 1.0])  # labels of shape (N,)
try:
    F.binary_cross_entropy_with_logits(column, y)
except ValueError as error:
    print(f"{type(error).__name__}: {error}")
print("squeeze(1) the logits :", F.binary_cross_entropy_with_logits(column.squeeze(1), y).item())
print("or unsqueeze(1) target:", F.binary_cross_entropy_with_logits(column, y.unsqueeze(1)).item())
print("a hand-written loss, (column - y) ** 2, has shape", tuple(((column - y) ** 2).shape))
# --8<-- [end:column_logits]

# --8<-- [start:multilabel_long]
try:
    F.binary_cross_entropy_with_logits(logits, multi_hot.long())
except RuntimeError as error:
    print(f"{type(error).__name__}: {error}")
# --8<-- [end:multilabel_long]

# --8<-- [start:multilabel_with_ce]
per_sample = F.cross_entropy(logits, multi_hot, reduction="none")  # runs: read as probabilities
print("cross_entropy(logits, multi_hot) per sample:", per_sample)
print("softmax rows sum to:", torch.softmax(logits, dim=1).sum(dim=1))
print("sigmoid rows sum to:", torch.sigmoid(logits).sum(dim=1))
# --8<-- [end:multilabel_with_ce]

# --8<-- [start:pos_weight]
torch.manual_seed(0)
dataset_targets = (torch.rand(1000, 5) < torch.tensor([0.5, 0.2, 0.1, 0.05, 0.01])).float()
positives = dataset_targets.sum(dim=0)
pos_weight = (len(dataset_targets) - positives) / positives  # negatives / positives, per label
print("positives per label:", positives)
print("pos_weight         :", pos_weight)

loss = F.binary_cross_entropy_with_logits(
    logits, multi_hot, pos_weight=pos_weight, reduction="none"
)  # shape (N, C): pos_weight of shape (C,) broadcasts over the samples
positive_part = pos_weight * multi_hot * F.logsigmoid(logits)
by_hand = -(positive_part + (1 - multi_hot) * F.logsigmoid(-logits))
print("matches -[p y log s(z) + (1 - y) log(1 - s(z))]:", torch.allclose(loss, by_hand))
# --8<-- [end:pos_weight]
