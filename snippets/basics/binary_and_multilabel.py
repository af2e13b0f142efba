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

# --8<-- [start:two_heads]
torch.manual_seed(0)
features, labels = torch.randn(8, 4), torch.randint(0, 2, (8,))
one, two = torch.nn.Linear(4, 1), torch.nn.Linear(4, 2)
with torch.no_grad():  # the same function at the start: rows [0, w] and biases [0, b]
    two.weight.copy_(torch.cat([torch.zeros_like(one.weight), one.weight]))
    two.bias.copy_(torch.cat([torch.zeros_like(one.bias), one.bias]))
w_before = one.weight[0].clone()
F.binary_cross_entropy_with_logits(one(features).squeeze(1), labels.float()).backward()
F.cross_entropy(two(features), labels).backward()
for head in (one, two):
    torch.optim.SGD(head.parameters(), lr=0.1).step()
with torch.no_grad():
    step_one = one.weight[0] - w_before  # Linear(4, 1): the step of w
    step_two = two.weight[1] - two.weight[0] - w_before  # Linear(4, 2): the step of w1 - w0
print("one SGD step of w       , Linear(4, 1):", step_one)
print("one SGD step of w1 - w0 , Linear(4, 2):", step_two)
print("twice as far:", torch.allclose(step_two, 2 * step_one))
# --8<-- [end:two_heads]

# --8<-- [start:bce_with_logits]
print("| target | z | sigmoid(z) | BCELoss(sigmoid(z)) | d/dz | BCEWithLogitsLoss(z) | d/dz |")
print("|---:|---:|---:|---:|---:|---:|---:|")
cases = [(0.0, z) for z in (15.0, 16.5, 17.0, 20.0)]
cases += [(1.0, z) for z in (-20.0, -30.0, -90.0, -110.0)]
for label, value in cases:  # confident wrong predictions: the exact loss is about |z|
    y = torch.tensor([label])
    z = torch.tensor([value], requires_grad=True)
    p = torch.sigmoid(z)  # float32: rounds to exactly 1.0 from about z = 16.64 on
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
inputs = logits.clone().requires_grad_()
F.cross_entropy(inputs, multi_hot, reduction="sum").backward()
print("gradient of the sample with no label:", inputs.grad[3])
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

# --8<-- [start:pos_weight_dense]
torch.manual_seed(0)
channel_weight = torch.tensor([1.0, 5.0, 10.0])  # one entry per channel, C = 3
for shape in [(2, 3, 4, 4), (2, 3, 3, 3)]:  # (N, C, H, W) targets; the second has W == C
    x, t = torch.randn(shape), (torch.rand(shape) < 0.2).float()
    per_channel = F.binary_cross_entropy_with_logits(x, t, pos_weight=channel_weight.view(3, 1, 1))
    try:
        flat = f"{F.binary_cross_entropy_with_logits(x, t, pos_weight=channel_weight).item():.4f}"
    except RuntimeError as error:
        flat = f"{type(error).__name__}: {error}"
    print(f"target {shape}")
    print(f"  pos_weight of shape (3, 1, 1): {per_channel.item():.4f}")
    print(f"  pos_weight of shape (3,)     : {flat}")
# --8<-- [end:pos_weight_dense]
