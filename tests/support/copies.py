"""The copy rule of the losses chapter, stated once: tests/losses/test_index.py checks that the
copies are identical, and the writing-your-own page renders the same table."""

# helper: the files that carry a copy of it (the first is the one the others copy)
COPIES = {
    "_check_inputs": ("focal", "poly", "logit_adjustment", "ldam"),
    "_reduce": ("focal", "poly", "logit_adjustment"),
    "_true_class_log_prob": ("focal", "poly", "logit_adjustment"),
    "describe": ("margin", "noisy_labels", "large_margin_softmax", "neighbors"),
    "check_logits_and_target": ("margin", "noisy_labels"),
    "check_reduction": ("margin", "noisy_labels"),
    "reduce": ("margin", "noisy_labels"),
}
