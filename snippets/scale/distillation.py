"""Soft targets and knowledge distillation: cross-entropy with probabilities, KL, temperature.

Copy this file: it needs PyTorch, and scikit-learn for the digits experiment.
`distillation_loss` is Hinton et al.'s (2015) loss: the KL divergence between the teacher's and
the student's softened distributions, times T**2, mixed with the cross-entropy on the labels.
`run_seed` trains a teacher MLP and two smaller students on scikit-learn's digits (one on labels
only, one with the teacher's soft targets). Run the file to see the examples of its page;
`python distillation.py --experiment` reruns the experiment and writes distillation_results.json.
"""

# --8<-- [start:distillation_loss]
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> Tensor:
    """alpha * T**2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, target).

    teacher_T and student_T are the softmax of the logits divided by T. The KL term is averaged
    over the batch ("batchmean"); T**2 keeps its gradient on the scale of the CE term.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of student_logits "
            f"{tuple(student_logits.shape)}, got {tuple(teacher_logits.shape)}"
        )
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    soft = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, target)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


# --8<-- [end:distillation_loss]


# --8<-- [start:experiment]
SETTINGS = {
    "teacher_hidden": 256,
    "student_hidden": 8,
    "epochs": 60,
    "batch_size": 64,
    "lr": 1e-2,
    "temperature": 4.0,
    "alpha": 0.9,
    "ece_bins": 15,
    "seeds": [0, 1, 2, 3, 4],
}


def digits_split():
    """scikit-learn's digits (1797 8x8 images), 75% / 25% stratified, features scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.25, stratify=y, random_state=0
    )
    as_tensors = (torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test))
    return *as_tensors, torch.tensor(y_train), torch.tensor(y_test)


def mlp(hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    )


def train(model, x, y, loss_fn, *, seed: int, settings=SETTINGS):
    """Adam, shuffled mini-batches; loss_fn(logits, y, rows) sees the rows of each batch."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        for rows in order.split(settings["batch_size"]):
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows], rows).backward()
            optimizer.step()
    return model


def metrics(logits: Tensor, y: Tensor, bins: int) -> dict:
    """Test accuracy, NLL (mean cross-entropy) and ECE with equal-width confidence bins."""
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == y).float()
    which = (confidence * bins).long().clamp_max(bins - 1)
    ece = sum(
        (which == b).float().mean()
        * (confidence[which == b].mean() - correct[which == b].mean()).abs()
        for b in range(bins)
        if (which == b).any()
    )
    return {
        "accuracy": correct.mean().item(),
        "nll": F.cross_entropy(logits, y).item(),
        "ece": float(ece),
    }


def run_seed(seed: int, settings=SETTINGS) -> dict:
    """Teacher, student on labels, student with soft targets: their test metrics for one seed."""
    torch.set_num_threads(1)  # the same result on every run of the same machine
    x_train, x_test, y_train, y_test = digits_split()
    results = {}

    def fit(hidden, loss):
        return train(mlp(settings[hidden]), x_train, y_train, loss, seed=seed)

    def on_labels(out, y, rows):
        return F.cross_entropy(out, y)

    torch.manual_seed(seed)
    teacher = fit("teacher_hidden", on_labels)
    with torch.no_grad():
        teacher_train_logits = teacher(x_train)
        results["teacher"] = metrics(teacher(x_test), y_test, settings["ece_bins"])
    torch.manual_seed(seed + 1000)
    student = fit("student_hidden", on_labels)
    with torch.no_grad():
        results["student_labels"] = metrics(student(x_test), y_test, settings["ece_bins"])
    torch.manual_seed(seed + 1000)  # the same initial student as above

    def soft(out, y, rows):
        return distillation_loss(
            out,
            teacher_train_logits[rows],
            y,
            temperature=settings["temperature"],
            alpha=settings["alpha"],
        )

    student = fit("student_hidden", soft)
    with torch.no_grad():
        results["student_distilled"] = metrics(student(x_test), y_test, settings["ece_bins"])
    return results


def run_experiment(settings=SETTINGS) -> dict:
    import sklearn

    seeds = {str(seed): run_seed(seed, settings) for seed in settings["seeds"]}
    return {
        "settings": settings,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "seeds": seeds,
    }


# --8<-- [end:experiment]


if __name__ == "__main__":
    import sys

    if "--experiment" in sys.argv:
        # python distillation.py --experiment [--seeds 0 1] [--output path.json]
        import argparse

        parser = argparse.ArgumentParser(prog="distillation.py")
        parser.add_argument("--experiment", action="store_true")
        parser.add_argument("--seeds", type=int, nargs="+", default=SETTINGS["seeds"])
        parser.add_argument(
            "--output", type=Path, default=Path(__file__).with_name("distillation_results.json")
        )
        args = parser.parse_args()
        result = run_experiment({**SETTINGS, "seeds": args.seeds})
        args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
        sys.exit(0)

    # --8<-- [start:ce_kl_identity]
    torch.manual_seed(0)
    logits = torch.randn(4, 5, requires_grad=True)
    q = torch.randn(4, 5).softmax(dim=1)  # probability targets, one distribution per row
    log_p = F.log_softmax(logits, dim=1)
    ce = F.cross_entropy(logits, q)  # a float target of the logits' shape: probabilities
    entropy = -(q * q.log()).sum(dim=1).mean()
    kl = F.kl_div(log_p, q, reduction="batchmean")  # KL(q || p), averaged over the rows
    print(f"CE(q, p)          {ce.item():.6f}")
    print(f"H(q) + KL(q || p) {(entropy + kl).item():.6f}")
    # --8<-- [end:ce_kl_identity]

    # --8<-- [start:equal_gradients]
    (grad_ce,) = torch.autograd.grad(ce, logits, retain_graph=True)
    (grad_kl,) = torch.autograd.grad(kl, logits)
    print("max |grad CE - grad KL|:", (grad_ce - grad_kl).abs().max().item())
    print("grad = (softmax - q) / N:", torch.allclose(grad_ce, (log_p.exp() - q) / 4))
    # --8<-- [end:equal_gradients]

    # --8<-- [start:log_target]
    with_probs = F.kl_div(log_p, q, reduction="batchmean")
    with_logs = F.kl_div(log_p, q.log(), reduction="batchmean", log_target=True)
    print(f"target q: {with_probs.item():.6f}")
    print(f"target log q, log_target=True: {with_logs.item():.6f}")
    wrong = F.kl_div(log_p, q.log(), reduction="batchmean")  # log q read as probabilities
    print(f"target log q without log_target: {wrong.item():.6f}")
    # --8<-- [end:log_target]

    # --8<-- [start:batchmean]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mean = F.kl_div(log_p, q, reduction="mean")
    print(f"batchmean {kl.item():.6f}, mean {mean.item():.6f}, ratio {(kl / mean).item():.1f}")
    print("warning:", str(caught[0].message).split(".")[0])
    # --8<-- [end:batchmean]

    # --8<-- [start:temperature]
    torch.manual_seed(0)
    student = torch.randn(64, 10, requires_grad=True)
    teacher = torch.randn(64, 10)
    print("| T | norm of the gradient of KL | times T² |")
    print("| ---: | ---: | ---: |")
    for T in [1, 2, 4, 8, 16]:
        soft = F.kl_div(
            F.log_softmax(student / T, dim=1),
            F.log_softmax(teacher / T, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        (grad,) = torch.autograd.grad(soft, student)
        print(f"| {T} | {grad.norm().item():.3e} | {(grad.norm() * T**2).item():.3e} |")
    # --8<-- [end:temperature]

    # --8<-- [start:results]
    import statistics

    # The committed output of `python distillation.py --experiment` (built from the repo root).
    folder = Path(__file__).parent if "__file__" in globals() else Path("snippets/scale")
    run = json.loads((folder / "distillation_results.json").read_text(encoding="utf-8"))
    models = {
        "teacher": f"teacher ({run['settings']['teacher_hidden']} hidden units)",
        "student_labels": f"student ({run['settings']['student_hidden']}), labels only",
        "student_distilled": f"student ({run['settings']['student_hidden']}), soft targets",
    }
    print(f"{len(run['seeds'])} seeds, torch {run['torch']}, scikit-learn {run['sklearn']}\n")
    print("| model | test accuracy (mean, min–max) | NLL (mean) | ECE (mean) |")
    print("| --- | ---: | ---: | ---: |")
    for key, label in models.items():
        rows = [seed[key] for seed in run["seeds"].values()]
        acc = [r["accuracy"] for r in rows]
        print(
            f"| {label} | {statistics.mean(acc):.4f} ({min(acc):.4f}–{max(acc):.4f}) "
            f"| {statistics.mean(r['nll'] for r in rows):.4f} "
            f"| {statistics.mean(r['ece'] for r in rows):.4f} |"
        )
    wins = sum(
        s["student_distilled"]["accuracy"] > s["student_labels"]["accuracy"]
        for s in run["seeds"].values()
    )
    print(
        f"\nseeds where soft targets gave the higher test accuracy: {wins} of {len(run['seeds'])}"
    )
    # --8<-- [end:results]
