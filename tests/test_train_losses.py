"""Training losses (reconstruction, attention, WGAN-GP, LSGAN), kernel-op selection and the perceptual networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scgan.errors import InputError
from scgan.losses import (
    AdversarialLoss,
    attention_loss,
    gradient_penalty,
    kernel_ops,
    lsgan_critic_loss,
    lsgan_generator_loss,
    reconstruction_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)
from scgan.perceptual import build_perceptual_loss, load_vgg16_conv3_3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ops():
    return kernel_ops("reference")


def test_kernel_ops_selection():
    import kernels.reference

    ref = kernel_ops("reference")
    assert ref.name == "reference" and ref.attention_l1 is kernels.reference.attention_l1
    assert kernel_ops("triton").name == "triton" or not kernels.HAS_TRITON
    assert kernel_ops("auto", "cpu").name == "reference"  # the interpreter is for tests, not for training
    with pytest.raises(InputError, match="--kernels"):
        kernel_ops("cuda")


def test_reconstruction_losses():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert float(reconstruction_loss(a, b, "l1")) == pytest.approx(0.5)
    assert float(reconstruction_loss(a, b, "l2")) == pytest.approx(0.25)
    with pytest.raises(InputError, match="shapes differ"):
        reconstruction_loss(a, b[:1])
    with pytest.raises(InputError, match="l1"):
        reconstruction_loss(a, b, "huber")


def test_attention_loss_formula_and_gradients(ops):
    torch.manual_seed(0)
    rgb_p = torch.rand(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    sal_p = torch.rand(2, 1, 5, 7, dtype=torch.float64, requires_grad=True)
    rgb_t, sal_t = torch.rand(2, 3, 5, 7, dtype=torch.float64), torch.rand(2, 1, 5, 7, dtype=torch.float64)
    loss = attention_loss(ops, rgb_p, sal_p, rgb_t, sal_t)
    expected = (rgb_p * sal_p - rgb_t * sal_t).abs().mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert rgb_p.grad.abs().sum() > 0 and sal_p.grad.abs().sum() > 0


def test_wgan_and_lsgan_terms():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    assert float(wgan_critic_loss(real, fake)) == pytest.approx(-1.0 - 2.0)
    assert float(wgan_generator_loss(fake)) == pytest.approx(1.0)
    assert float(lsgan_critic_loss(real, fake)) == pytest.approx(0.5 * ((0 + 4) / 2 + (0 + 4) / 2))
    assert float(lsgan_generator_loss(fake)) == pytest.approx((1 + 9) / 2)
    with pytest.raises(InputError, match="GAN loss"):
        AdversarialLoss("hinge")


class LinearCritic(nn.Module):
    """D(gray, x) = sum(w * x) per patch-free sample: its input gradient is w for every sample."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, gray, x):
        return (self.w * x).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_matches_closed_form_and_reaches_critic(ops):
    torch.manual_seed(1)
    critic = LinearCritic((1, 3, 4, 4))
    gray = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    real, fake = torch.rand(3, 3, 4, 4, dtype=torch.float64), torch.rand(3, 3, 4, 4, dtype=torch.float64)
    penalty = gradient_penalty(ops, critic, gray, real, fake, torch.rand(3, dtype=torch.float64))
    expected = (critic.w.detach().norm() - 1) ** 2
    torch.testing.assert_close(penalty.detach(), expected)
    penalty.backward()  # double backward: d penalty / d w = 2 (|w| - 1) w / |w|
    norm = critic.w.detach().norm()
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1) * critic.w.detach() / norm)


def test_wgan_gp_critic_loss_on_patch_critic(ops):
    from scgan.model import build_discriminator

    torch.manual_seed(2)
    critic = build_discriminator("scgan-tiny")
    gray, real, fake = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32)
    loss, parts = AdversarialLoss("wgan-gp", 10.0).critic(ops, critic, gray, real, fake, torch.rand(2))
    assert set(parts) == {"adv", "gp"} and parts["gp"] >= 0
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())
    loss_ls, parts_ls = AdversarialLoss("lsgan").critic(ops, critic, gray, real, fake, torch.rand(2))
    assert set(parts_ls) == {"adv"} and float(loss_ls.detach()) >= 0


@pytest.fixture(scope="module")
def effnet_loss():
    return build_perceptual_loss("efficientnet-lite0")


def test_efficientnet_perceptual_loss(effnet_loss):
    torch.manual_seed(3)
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    pred = (target + 0.3 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    assert float(effnet_loss(target, target)) == 0.0
    loss = effnet_loss(pred, target)
    assert float(loss.detach()) > 0
    loss.backward()
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in effnet_loss.parameters())
    effnet_loss.train()
    assert not effnet_loss.network.training  # frozen network stays in eval mode (BatchNorm running statistics)
    with pytest.raises(InputError, match="perceptual loss"):
        effnet_loss(pred[:, :1], target[:, :1])


def _vgg16_features_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from scgan.perceptual import VGG16_LAYOUT

    gen = torch.Generator().manual_seed(seed)
    state, index, in_ch = {}, 0, 3
    for item in VGG16_LAYOUT:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, in_ch, 3, 3, generator=gen) * 0.05
        state[f"features.{index}.bias"] = torch.zeros(item)
        in_ch, index = item, index + 2
    return state


def test_vgg16_loader_strict_and_sliced_at_conv3_3(tmp_path):
    state = _vgg16_features_state()
    path = tmp_path / "vgg16_features.pth"
    torch.save(state, path)
    features = load_vgg16_conv3_3(path)
    assert len(features) == 16 and isinstance(features[14], nn.Conv2d) and features[14].out_channels == 256
    torch.testing.assert_close(features[14].weight, state["features.14.weight"])
    loss = build_perceptual_loss(f"vgg16:{path}")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss.features(x)[0].shape == (1, 256, 8, 8)  # conv3_3 at 1/4

    # Strictness: an unexpected key, a missing key, a classifier key of the wrong shape.
    for bad, message in (
        ({**state, "features.99.weight": torch.zeros(1)}, "unexpected"),
        ({k: v for k, v in state.items() if k != "features.28.bias"}, "missing"),
        ({**state, "classifier.0.weight": torch.zeros(3, 3)}, "missing|wrong shapes"),
    ):
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(InputError, match=message):
            load_vgg16_conv3_3(tmp_path / "bad.pth")
    with pytest.raises(InputError, match="unknown perceptual"):
        build_perceptual_loss("resnet50")
