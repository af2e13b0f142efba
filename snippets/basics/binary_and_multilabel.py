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
extreme = torch.tensor([-200.0, 20.0])  # a confident wrong logit for each target
labels = torch.tensor([1.0, 0.0])
probabilities = torch.sigmoid(extreme)  # rounds to exactly 0 and 1 in float32
from_probabilities = F.binary_cross_entropy(probabilities, labels, reduction="none")
from_logits = F.binary_cross_entropy_with_logits(extreme, labels, reduction="none")
print("sigmoid(z)                           :", probabilities)
print("binary_cross_entropy(sigmoid(z), y)  :", from_probabilities)
print("binary_cross_entropy_with_logits(z, y):", from_logits)
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
# --8<-- [end:multilabel]

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
