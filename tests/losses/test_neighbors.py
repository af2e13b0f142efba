"""Soft nearest neighbor loss: snippets/losses/neighbors.py and docs/losses/neighbors.md."""

import inspect
import math
from pathlib import Path

import pytest
import torch
from losses.neighbors import soft_nearest_neighbor_loss

from tests.support.sections import run_sections

SNIPPET = Path(__file__).parents[2] / "snippets" / "losses" / "neighbors.py"


def batch(b=12, d=3, classes=3, dtype=torch.float64, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=generator, dtype=torch.float64) * scale
    labels = torch.arange(b) % classes
    return x.to(dtype), labels


def loop_snn(x, labels, temperature=1.0):
    """Independent reference: loops, explicit exponentials in float64 (fine for moderate
    distances), lonely samples skipped."""
    x = x.double()
    terms = []
    for i in range(len(x)):
        same = other = 0.0
        for j in range(len(x)):
            if j == i:
                continue
            e = math.exp(-((x[i] - x[j]) ** 2).sum().item() / temperature)
            other += e
            if labels[j] == labels[i]:
                same += e
        if any(labels[j] == labels[i] for j in range(len(x)) if j != i):
            terms.append(-math.log(same / other))
    return torch.tensor(sum(terms) / len(terms), dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 5.0])
def test_matches_a_loop_implementation(temperature):
    x, labels = batch(10, 4)
    actual = soft_nearest_neighbor_loss(x, labels, temperature=temperature)
    torch.testing.assert_close(actual, loop_snn(x, labels, temperature))


def test_lonely_samples_are_left_out_of_the_mean_but_stay_neighbors():
    x, labels = batch(10, 2)
    labels = labels.clone()
    labels[0] = 7  # the only sample of class 7
    actual = soft_nearest_neighbor_loss(x, labels)
    torch.testing.assert_close(actual, loop_snn(x, labels))
    # It still sits in the other samples' denominators: dropping it changes the loss.
    assert not torch.isclose(actual, soft_nearest_neighbor_loss(x[1:], labels[1:]))


def test_lonely_samples_get_no_gradient_from_their_own_term_and_no_nan():
    x, labels = batch(8, 2)
    labels = labels.clone()
    labels[0] = 9
    x.requires_grad_(True)
    soft_nearest_neighbor_loss(x, labels).backward()
    assert torch.isfinite(x.grad).all()


def test_no_sample_with_a_partner_raises():
    x, _ = batch(3, 2)
    with pytest.raises(ValueError, match="labels: no sample has another sample"):
        soft_nearest_neighbor_loss(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        soft_nearest_neighbor_loss(x[:1], torch.tensor([0]))


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_gradcheck_float64(temperature):
    x, labels = batch(7, 3)
    labels[0] = 5  # include a lonely sample
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e: soft_nearest_neighbor_loss(e, labels, temperature=temperature), (x,)
    )


def test_extreme_float32_embeddings_give_finite_loss_and_gradient():
    x, labels = batch(16, 4, dtype=torch.float32, scale=1e4)
    x.requires_grad_(True)
    loss = soft_nearest_neighbor_loss(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_translation_invariance_large_offset():
    # Centering inside the function keeps a common offset from eating the distances.
    x, labels = batch(12, 3, dtype=torch.float32)
    shifted = soft_nearest_neighbor_loss(x + 1e3, labels)
    torch.testing.assert_close(shifted, soft_nearest_neighbor_loss(x, labels), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(dtype):
    x, labels = batch(12, 3, dtype=dtype)
    e = x.clone().requires_grad_(True)
    loss = soft_nearest_neighbor_loss(e, labels)
    assert loss.dtype == dtype
    loss.backward()
    assert e.grad.dtype == dtype and torch.isfinite(e.grad.float()).all()
    reference = soft_nearest_neighbor_loss(x.float(), labels)
    torch.testing.assert_close(loss.float(), reference, rtol=1e-2, atol=1e-2)


def test_limits_in_temperature():
    """T -> infinity: every neighbor equally likely, loss -> mean log((B-1)/(n_i-1)).
    T -> 0: only the nearest neighbor counts; 0 when it always has the same label."""
    x, labels = batch(12, 2, classes=3)  # 4 per class
    big = soft_nearest_neighbor_loss(x, labels, temperature=1e9)
    torch.testing.assert_close(big, torch.tensor(math.log(11 / 3), dtype=torch.float64))
    separated = torch.cat([x * 0.01, 10.0 * torch.nn.functional.one_hot(labels, 3)], dim=1)
    assert soft_nearest_neighbor_loss(separated, labels, temperature=1e-2) < 1e-12


BAD_INPUTS = [
    ("embeddings", lambda x, y: soft_nearest_neighbor_loss(x[0], y)),
    ("embeddings", lambda x, y: soft_nearest_neighbor_loss(x[None], y)),
    ("embeddings", lambda x, y: soft_nearest_neighbor_loss(y[:, None], y)),
    ("labels", lambda x, y: soft_nearest_neighbor_loss(x, y.float())),
    ("labels", lambda x, y: soft_nearest_neighbor_loss(x, y[:5])),
    ("labels", lambda x, y: soft_nearest_neighbor_loss(x, y[:, None])),
    ("temperature", lambda x, y: soft_nearest_neighbor_loss(x, y, temperature=0.0)),
    ("temperature", lambda x, y: soft_nearest_neighbor_loss(x, y, temperature=-1.0)),
    ("temperature", lambda x, y: soft_nearest_neighbor_loss(x, y, temperature=float("nan"))),
]


@pytest.mark.parametrize(("argument", "call"), BAD_INPUTS)
def test_bad_input_raises_and_names_the_argument(argument, call):
    x, labels = batch(8, 3)
    with pytest.raises(ValueError, match=argument):
        call(x, labels)


def test_labels_need_not_be_class_indices():
    # Labels are only compared for equality: any integers work, negative or large.
    x, labels = batch(9, 2)
    relabeled = torch.tensor([-5, 1000, 7])[labels]
    torch.testing.assert_close(
        soft_nearest_neighbor_loss(x, relabeled), soft_nearest_neighbor_loss(x, labels)
    )


# --- the page's executed sections -----------------------------------------------------------


def test_page_example_claims():
    page = run_sections(SNIPPET, "checks", "soft_nearest_neighbor", "example", "lonely")
    loss = soft_nearest_neighbor_loss
    separated, entangled, labels = page["separated"], page["entangled"], page["labels"]
    assert loss(separated, labels) < 0.05 < math.log(23 / 7) < loss(entangled, labels)
    # At T = 1 an embedding with no information about the labels scores far above log(23/7).
    unrelated = page["unrelated"]
    assert torch.equal(unrelated, 3.0 * page["noise"])  # drawn without the labels
    assert loss(unrelated, labels) > 2 * math.log(23 / 7)
    # Large T: both tend to log(23/7), the value for an embedding with no structure.
    for points in (separated, entangled):
        torch.testing.assert_close(
            loss(points, labels, temperature=1e7), torch.tensor(math.log(23 / 7)), rtol=0, atol=1e-4
        )


@pytest.mark.slow
def test_page_nca_claims():
    page = run_sections(SNIPPET, "checks", "soft_nearest_neighbor", "example", "nca")
    raw = page["knn_accuracy"](page["X_train"], page["X_test"])
    pca = page["pca"]
    pca_2d = page["knn_accuracy"](pca.transform(page["X_train"]), pca.transform(page["X_test"]))
    learned = page["knn_accuracy"](page["nca_train"], page["nca_test"])
    assert pca_2d + 0.05 < learned < raw


def test_small_temperature_loss_grows_like_one_over_t():
    """T -> 0: T * loss -> mean over samples of (nearest same-class distance - nearest distance)."""
    x, labels = batch(12, 2, classes=3)
    d = torch.cdist(x, x) ** 2
    d.fill_diagonal_(float("inf"))
    same = labels[:, None] == labels[None, :]
    gap = d.masked_fill(~same, float("inf")).amin(dim=1) - d.amin(dim=1)
    assert (gap > 0).any()
    for t in (1e-3, 1e-4):
        torch.testing.assert_close(
            t * soft_nearest_neighbor_loss(x, labels, temperature=t),
            gap.mean(),
            rtol=1e-2,
            atol=1e-3,
        )


def test_masked_fill_passes_no_gradient_to_the_filled_entries():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    row = x.masked_fill(torch.tensor([True, True, True]), float("-inf"))
    (gradient,) = torch.autograd.grad(row.logsumexp(0).nan_to_num(neginf=0.0) * 0, x)
    assert torch.all(gradient == 0)


def test_lonely_sample_term_is_zero_and_the_gradient_matches_a_reference():
    # The page: a sample without a partner gets log_same = log_all, a zero term, and the sum
    # is divided by has_partner.sum(); no row is all -inf, so the gradient is that of the
    # mean over the samples with a partner.
    x, labels = batch(8, 2)
    labels = labels.clone()
    labels[0] = 9  # the only sample of class 9
    x.requires_grad_(True)
    (actual,) = torch.autograd.grad(soft_nearest_neighbor_loss(x, labels), x)

    y = x.detach().clone().requires_grad_(True)
    kernel = torch.exp(-(torch.cdist(y, y) ** 2))
    off_diagonal = ~torch.eye(len(y), dtype=torch.bool)
    same = (labels[:, None] == labels[None, :]) & off_diagonal
    p = (kernel * same).sum(dim=1) / (kernel * off_diagonal).sum(dim=1)
    has_partner = same.any(dim=1)
    (expected,) = torch.autograd.grad(-p[has_partner].log().mean(), y)
    torch.testing.assert_close(actual, expected)
    assert actual[0].abs().sum() > 0  # the lonely sample still moves, as a neighbor of others


def test_no_partner_compiled_path_raises_a_runtime_error(monkeypatch):
    # The page: compiled (or on CUDA), the check goes through torch._assert_async, which on
    # the CPU raises a RuntimeError.
    x, _ = batch(3, 2)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with pytest.raises(RuntimeError, match="labels: no sample has another sample"):
        soft_nearest_neighbor_loss(x, torch.tensor([0, 1, 2]))


def test_no_partner_on_the_meta_device_is_not_checked():
    # The page: the meta device has no values, so nothing is checked there.
    x = torch.randn(3, 2, device="meta")
    loss = soft_nearest_neighbor_loss(x, torch.tensor([0, 1, 2], device="meta"))
    assert loss.device.type == "meta" and loss.shape == ()


def test_assert_async_docstring_warns_about_the_cuda_context():
    # The page, from the docstring (not executed on CUDA here): the failure shows up at a later
    # CUDA kernel launch, and a failed assert trashes the CUDA context (restart the process).
    doc = " ".join(torch._assert_async.__doc__.split())
    assert "you may only find out the assertion failed at a later CUDA kernel launch" in doc
    assert "it will trash your CUDA context if the assert fails" in doc
    assert "forcing you to restart your PyTorch process" in doc


def test_the_device_side_check_is_taken_on_cuda_mps_and_meta():
    # The page: on CUDA, MPS and the meta device (and when compiled) the function checks with
    # torch._assert_async instead of reading the data. Only meta can be run here, so the
    # branch condition is read from the source.
    source = inspect.getsource(soft_nearest_neighbor_loss)
    assert 'labels.device.type in ("cuda", "mps", "meta")' in source
    assert "torch._assert_async(" in source
