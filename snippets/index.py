"""The 30-second answer: which loss takes what."""

# --8<-- [start:answer]
import torch
import torch.nn.functional as F

torch.manual_seed(0)
logits = torch.randn(4, 3)  # raw scores from the model: 4 samples, 3 classes
target = torch.tensor([0, 2, 1, 2])  # class indices, dtype int64

ce = F.cross_entropy(logits, target)  # takes raw logits
log_probs = F.log_softmax(logits, dim=1)
nll = F.nll_loss(log_probs, target)  # takes log-probabilities

print("cross_entropy(logits)          =", ce.item())
print("nll_loss(log_softmax(logits))  =", nll.item())
print("bit-for-bit equal:", torch.equal(ce, nll))
# --8<-- [end:answer]

# --8<-- [start:silent_mistake]
wrong = F.nll_loss(logits, target)  # raw logits into NLLLoss: no error, wrong number
print("nll_loss(logits), the mistake  =", wrong.item())
print("it is just -mean(logits[i, target[i]]):", (-logits[range(4), target].mean()).item())
# --8<-- [end:silent_mistake]
