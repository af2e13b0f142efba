"""CosFace/ArcFace heads: snippets/losses/large_margin_softmax.py and its page's claims."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from losses.large_margin_softmax import CosineMarginHead, margin_logits

from tests.support.sections import run_sections

SNIPPET = Path(__file__).parents[2] / "snippets" / "losses" / "large_margin_softmax.py"
KINDS = [
    {"kind": "cosface", "margin": 0.35},
    {"kind": "arcface", "margin": 0.5},
    {"kind": "arcface", "margin": 0.5, "easy_margin": True},
]
IDS = ["cosface", "arcface", "arcface-easy"]


def random_cosine(n=6, c=4, seed=0, dtype=torch.float64, reach=0.9):
    """Random cosines in [-reach, reach] (away from +-1) and random labels."""
    generator = torch.Generator().manual_seed(seed)
    cosine = (torch.rand(n, c, generator=generator, dtype=torch.float64) * 2 - 1) * reach
    labels = torch.randint(c, (n,), generator=generator)
    return cosine.to(dtype), labels


def head_and_batch(dtype=torch.float64, **settings):
    torch.manual_seed(0)
    head = CosineMarginHead(5, 4, scale=8.0, **settings).to(torch.float64)
    embeddings = torch.randn(6, 5, dtype=torch.float64).to(dtype)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    return head, embeddings, labels


@pytest.mark.parametrize("settings", KINDS, ids=IDS)
def test_gradcheck_margin_logits_float64(settings):
    cosine, labels = random_cosine()
    cosine.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda c: margin_logits(c, labels, scale=3.0, **settings), (cosine,)
    )


@pytest.mark.parametrize("settings", KINDS, ids=IDS)
def test_gradcheck_head_float64(settings):
    head, embeddings, labels = head_and_batch(**settings)
    embeddings.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e, w: F.cross_entropy(
            margin_logits(
                F.normalize(e, dim=1) @ F.normalize(w, dim=1).T, labels, scale=8.0, **settings
            ),
            labels,
        ),
        (embeddings, head.weight),
    )
    assert torch.autograd.gradcheck(lambda e: head(e, labels), (embeddings,))
    assert torch.autograd.gradcheck(lambda e: head(e), (embeddings,))


@pytest.mark.parametrize("kind", ["cosface", "arcface"])
def test_zero_margin_gives_scaled_cosine_logits(kind):
    cosine, labels = random_cosine()
    torch.testing.assert_close(
        margin_logits(cosine, labels, kind=kind, scale=30.0, margin=0.0), 30.0 * cosine
    )
    head, embeddings, labels = head_and_batch(kind=kind, margin=0.0)
    torch.testing.assert_close(head(embeddings, labels), head(embeddings))
    torch.testing.assert_close(head(embeddings), 8.0 * head.cosine(embeddings))


def test_cosine_is_the_cosine_between_embeddings_and_class_vectors():
    head, embeddings, _ = head_and_batch()
    expected = F.cosine_similarity(embeddings[:, None, :], head.weight[None, :, :], dim=2)
    torch.testing.assert_close(head.cosine(embeddings), expected)
    # Scaling an embedding or a class vector does not change the logits.
    torch.testing.assert_close(head(3.0 * embeddings), head(embeddings))


def test_cosface_lowers_the_target_logit_by_s_times_m_and_nothing_else():
    cosine, labels = random_cosine()
    out = margin_logits(cosine, labels, kind="cosface", scale=30.0, margin=0.35)
    expected = 30.0 * cosine - 30.0 * 0.35 * F.one_hot(labels, 4)
    torch.testing.assert_close(out, expected)


def test_arcface_adds_m_to_the_angle_of_the_target_class():
    cosine, labels = random_cosine(50, 5, reach=0.999)
    m = 0.5
    out = margin_logits(cosine, labels, kind="arcface", scale=64.0, margin=m)
    onehot = F.one_hot(labels, 5).bool()
    theta = torch.acos(cosine[onehot])
    inside = theta <= math.pi - m
    assert inside.any() and (~inside).any()
    torch.testing.assert_close(torch.acos(out[onehot][inside] / 64.0), theta[inside] + m)
    # beyond pi - m: cos(theta) - m sin(m), so the target logit keeps decreasing
    torch.testing.assert_close(
        out[onehot][~inside] / 64.0, cosine[onehot][~inside] - m * math.sin(m)
    )
    assert torch.all(out[onehot] < 64.0 * cosine[onehot])  # always lowered
    torch.testing.assert_close(out[~onehot], 64.0 * cosine[~onehot])  # others untouched


def test_arcface_target_logit_decreases_in_theta_and_naive_form_does_not():
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    cosine = torch.stack([theta.cos(), torch.zeros_like(theta)], dim=1)
    labels = torch.zeros(len(theta), dtype=torch.long)
    target = margin_logits(cosine, labels, scale=1.0, margin=0.5)[:, 0]
    assert torch.all(target[1:] <= target[:-1] + 1e-12)
    naive = torch.cos(theta + 0.5)
    assert torch.any(naive[1:] > naive[:-1])  # rises again after pi - m


def test_easy_margin_applies_the_margin_only_below_90_degrees():
    cosine, labels = random_cosine(40, 3)
    out = margin_logits(cosine, labels, scale=1.0, margin=0.5, easy_margin=True)
    onehot = F.one_hot(labels, 3).bool()
    cos_y, out_y = cosine[onehot], out[onehot]
    positive = cos_y > 0
    torch.testing.assert_close(out_y[~positive], cos_y[~positive])
    torch.testing.assert_close(out_y[positive], torch.cos(torch.acos(cos_y[positive]) + 0.5))


def test_cosine_slightly_above_one_gives_finite_values_and_gradients():
    cosine = torch.tensor([[1.0000002, 0.2], [1.0, -0.3], [-1.0000002, 0.1]], requires_grad=True)
    labels = torch.zeros(3, dtype=torch.long)
    for settings in KINDS:
        out = margin_logits(cosine, labels, **settings)
        (gradient,) = torch.autograd.grad(F.cross_entropy(out, labels), cosine)
        assert torch.isfinite(out).all() and torch.isfinite(gradient).all()
    # Without the clamp, acos gives NaN there (what the page shows).
    assert torch.isnan(torch.acos(torch.tensor(1.0000002)))


def test_float32_cosine_of_a_vector_with_itself_can_exceed_one():
    torch.manual_seed(0)
    v = F.normalize(torch.randn(10000, 128), dim=1)
    assert ((v * v).sum(dim=1) > 1).any()
    one = torch.tensor(1.0, requires_grad=True)
    torch.acos(one).backward()
    assert one.grad == -math.inf


def test_extreme_float32_embeddings_give_finite_logits_and_gradient():
    for settings in KINDS:
        torch.manual_seed(0)
        head = CosineMarginHead(5, 4, **settings)
        embeddings = (torch.randn(8, 5) * 1e4).requires_grad_(True)
        labels = torch.randint(4, (8,))
        loss = F.cross_entropy(head(embeddings, labels), labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()
        assert torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("settings", KINDS, ids=IDS)
def test_low_precision_embeddings(dtype, settings):
    torch.manual_seed(0)
    head = CosineMarginHead(5, 4, scale=16.0, **settings)
    embeddings = torch.randn(6, 5).to(dtype)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    x = embeddings.clone().requires_grad_(True)
    logits = head(x, labels)
    assert logits.dtype == dtype and head(x).dtype == dtype
    F.cross_entropy(logits.float(), labels).backward()
    assert x.grad.dtype == dtype
    reference = head(embeddings.float(), labels)
    torch.testing.assert_close(logits.float(), reference, rtol=2e-2, atol=0.1)
    # margin_logits on low-precision cosines too
    cosine, labels = random_cosine(dtype=dtype)
    assert margin_logits(cosine, labels, **settings).dtype == dtype


def test_the_margin_makes_the_loss_larger_for_the_same_embeddings():
    for settings in KINDS[:2]:
        head, embeddings, labels = head_and_batch(**settings)
        with_margin = F.cross_entropy(head(embeddings, labels), labels)
        without = F.cross_entropy(head(embeddings), labels)
        assert with_margin > without


BAD_INPUTS = [
    ("kind", ValueError, lambda c, y: margin_logits(c, y, kind="sphereface")),
    ("scale", ValueError, lambda c, y: margin_logits(c, y, scale=0.0)),
    ("scale", ValueError, lambda c, y: margin_logits(c, y, scale=-64.0)),
    ("margin", ValueError, lambda c, y: margin_logits(c, y, margin=-0.1)),
    ("margin", ValueError, lambda c, y: margin_logits(c, y, kind="cosface", margin=-0.1)),
    ("margin", ValueError, lambda c, y: margin_logits(c, y, margin=4.0)),
    ("labels", ValueError, lambda c, y: margin_logits(c, y.float())),
    ("labels", IndexError, lambda c, y: margin_logits(c, torch.tensor([0, 1, 2, 4, 0, 1]))),
    ("labels", IndexError, lambda c, y: margin_logits(c, torch.tensor([0, 1, 2, -1, 0, 1]))),
    ("labels", ValueError, lambda c, y: margin_logits(c, y[:5])),
    ("cosine", ValueError, lambda c, y: margin_logits(c[0], y)),
    ("cosine", ValueError, lambda c, y: margin_logits(y[:, None].expand(6, 4), y)),
]


@pytest.mark.parametrize(("argument", "error", "call"), BAD_INPUTS)
def test_bad_input_to_margin_logits(argument, error, call):
    cosine, labels = random_cosine(6, 4)
    with pytest.raises(error, match=argument):
        call(cosine, labels)


def test_bad_input_to_the_head():
    head, embeddings, labels = head_and_batch()
    with pytest.raises(ValueError, match="embeddings"):
        head(embeddings[:, :4], labels)
    with pytest.raises(ValueError, match="embeddings"):
        head(embeddings[0], labels)
    with pytest.raises(ValueError, match="embeddings"):
        head(labels[:, None].expand(6, 5), labels)
    with pytest.raises(ValueError, match="labels"):
        head(embeddings, labels.float())
    with pytest.raises(IndexError, match="labels"):
        head(embeddings, labels + 1)
    with pytest.raises(ValueError, match="kind"):
        CosineMarginHead(5, 4, kind="arc")
    with pytest.raises(ValueError, match="margin"):
        CosineMarginHead(5, 4, margin=-0.5)
    with pytest.raises(ValueError, match="scale"):
        CosineMarginHead(5, 4, scale=0)


# --- the page's executed sections -----------------------------------------------------------


def test_page_example_claims():
    page = run_sections(SNIPPET, "checks", "margin_logits", "head", "example", "arcface_angle")
    difference = (page["test_logits"] - page["train_logits"]).detach()
    expected = 30.0 * 0.35 * F.one_hot(page["labels"], 3).float()
    torch.testing.assert_close(difference, expected)
    torch.testing.assert_close(
        torch.acos(page["with_margin"]).squeeze(1), (page["theta"] + 0.5).squeeze(1)
    )


@pytest.mark.slow
def test_page_experiment_claims():
    page = run_sections(SNIPPET, "checks", "margin_logits", "head", "experiment")
    (acc0, angle0), (acc_cos, angle_cos), (acc_arc, angle_arc) = page["results"].values()
    assert angle_arc < angle_cos < angle0  # larger margins pull samples closer to their class
    assert min(acc_cos, acc_arc) >= acc0  # at no cost in accuracy on this run


def test_sqrt_form_of_sine_also_has_an_infinite_derivative_at_one():
    c = torch.tensor(1.0, requires_grad=True)
    torch.sqrt(1 - c**2).backward()
    assert not torch.isfinite(c.grad)


def test_naive_arcface_logit_is_smallest_at_pi_minus_m():
    theta = torch.linspace(0, math.pi, 100001, dtype=torch.float64)
    naive = torch.cos(theta + 0.5)
    torch.testing.assert_close(
        theta[naive.argmin()], torch.tensor(math.pi - 0.5, dtype=torch.float64), atol=1e-4, rtol=0
    )
    assert round(math.degrees(math.pi - 0.5)) == 151


def test_easy_margin_jumps_up_at_90_degrees_and_the_threshold_jumps_down_at_pi_minus_m():
    # The page (margin_jumps): neither fix is continuous; only the threshold stays decreasing.
    m = 0.5

    def target_logit(theta, easy_margin):
        cosine = torch.stack([theta.cos(), torch.zeros_like(theta)], dim=1)
        labels = torch.zeros(len(theta), dtype=torch.long)
        logits = margin_logits(cosine, labels, scale=1.0, margin=m, easy_margin=easy_margin)
        return logits[:, 0]

    step = 1e-6
    edges = torch.tensor([-step, step], dtype=torch.float64)
    easy = target_logit(math.pi / 2 + edges, True)
    threshold = target_logit(math.pi - m + edges, False)
    # cos(90 deg) - cos(90 deg + m) = sin(m) upward; cos(pi - m) - m sin(m) - cos(pi) downward
    jump = torch.tensor(math.sin(m), dtype=torch.float64)
    torch.testing.assert_close(easy[1] - easy[0], jump, atol=1e-5, rtol=0)
    assert threshold[1] - threshold[0] < -0.1
    torch.testing.assert_close(
        threshold[1] - threshold[0],
        torch.tensor(-math.cos(m) - m * math.sin(m) + 1, dtype=torch.float64),
        atol=1e-5,
        rtol=0,
    )
    grid = torch.linspace(0.01, math.pi - 0.01, 2000, dtype=torch.float64)
    assert torch.all(target_logit(grid, False).diff() < 0)  # decreasing on both sides
    assert not torch.all(target_logit(grid, True).diff() < 0)


def test_a_clamp_to_minus_1_1_keeps_the_infinite_derivative_of_acos_at_1():
    # The page: pytorch-metric-learning 2.8.1 clamps to [-1, 1]; that removes the nan only.
    c = torch.tensor([1.0, 1.0 + 1e-6], requires_grad=True)
    angle = torch.acos(c.clamp(-1, 1))
    assert not torch.isnan(angle).any()
    angle.sum().backward()
    assert c.grad[0] == -math.inf


def test_arcface_loss_default_margin_in_degrees_is_about_half_a_radian():
    # The page: ArcFaceLoss's default margin, 28.6 degrees, is about (not exactly) 0.5 radians.
    assert round(math.radians(28.6), 2) == 0.5 and math.radians(28.6) != 0.5
