"""Training losses of the baselines: the soft encoding and rebalancing of Zhang et al., Iizuka's MSE +
classification, pix2pix's L1 + GAN; each finite, decreasing over a few steps on one image, with gradients reaching
every trainable parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from baselines import losses
from baselines.archs import pix2pix
from baselines.registry import get_architecture
from metrics.color import rgb_to_lab


def smooth_image(size=32, seed=0):
    """A colourful, smooth RGB image (1, 3, size, size) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=generator)
    return nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def _steps(loss_fn, params, steps=6, lr=1e-3):
    optimiser = torch.optim.Adam(params, lr=lr)
    values = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn()
        assert torch.isfinite(loss)
        loss.backward()
        optimiser.step()
        values.append(float(loss.detach()))
    return values


def _params_without_grad(net, loss_fn, skip=()):
    """Trainable parameters (not under the ``skip`` prefixes) that one backward of ``loss_fn()`` leaves without a
    non-zero gradient."""
    net.zero_grad(set_to_none=True)
    loss_fn().backward()
    return [
        n
        for n, p in net.named_parameters()
        if p.requires_grad and not n.startswith(skip) and (p.grad is None or not p.grad.abs().sum() > 0)
    ]


def test_soft_encoding_uses_five_nearest_bins():
    ab = torch.tensor([[3.0, -4.0], [61.0, 58.0], [0.0, 0.0]]).t().reshape(1, 2, 1, 3)
    encoded = losses.soft_encode(ab)
    assert encoded.shape == (1, 313, 1, 3)
    torch.testing.assert_close(encoded.sum(dim=1), torch.ones(1, 1, 3))
    assert ((encoded > 0).sum(dim=1) == 5).all()
    centres = losses.bin_centres()
    # The largest weight goes to the nearest bin, and the weights follow exp(-d^2 / (2 * 5^2)).
    nearest = losses.nearest_bin(ab)
    assert torch.equal(encoded.argmax(dim=1), nearest)
    pixel = ab[0, :, 0, 0]
    weights = encoded[0, :, 0, 0]
    top = weights.topk(2).indices
    d = torch.linalg.norm(centres[top] - pixel, dim=1)
    ratio = weights[top[1]] / weights[top[0]]
    torch.testing.assert_close(ratio, torch.exp(-(d[1] ** 2 - d[0] ** 2) / 50.0))


def test_prior_and_rebalancing_weights():
    images = torch.cat([smooth_image(16, s) for s in range(3)])
    prior = losses.ab_prior(images)
    assert prior.shape == (313,) and prior.sum().item() == pytest.approx(1.0)
    ab = rgb_to_lab(images.double())[:, 1:]
    assert prior[losses.nearest_bin(ab).flatten()].min() > 0
    weights = losses.rebalancing_weights(prior)
    # E_p~[w] = 1 with the smoothed prior; rare colours weigh more than frequent ones.
    centres = losses.bin_centres(torch.float64)
    kernel = torch.exp(-(torch.cdist(centres, centres) ** 2) / 50.0)
    smoothed = (kernel / kernel.sum(0, keepdim=True)) @ prior
    assert (smoothed * weights).sum().item() == pytest.approx(1.0)
    assert weights[prior.argmax()] < weights[prior.argmin()]
    # lambda = 1 gives uniform weights (no rebalancing).
    torch.testing.assert_close(losses.rebalancing_weights(prior, lam=1.0), torch.ones(313, dtype=torch.float64))
    with pytest.raises(ValueError, match="prior must have shape"):
        losses.rebalancing_weights(torch.ones(10))


def test_class_rebalanced_cross_entropy_value():
    """Eq. 2 of Zhang et al. computed pixel by pixel: -w[q*] sum_q Z_q log P_q, Z the 5-neighbour Gaussian soft
    encoding of the ground truth subsampled with stride 4 (the authors' training net), averaged over pixels."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 313, 2, 3, generator=generator)
    ab_full = torch.randn(1, 2, 8, 12, generator=generator) * 40
    weights = torch.rand(313, generator=generator) + 0.5
    loss = losses.class_rebalanced_cross_entropy(logits, ab_full, weights)
    centres = losses.bin_centres(torch.float64)
    total = 0.0
    for i in range(2):
        for j in range(3):
            distances = torch.linalg.norm(centres - ab_full[0, :, 4 * i, 4 * j].double(), dim=1)
            nearest = distances.argsort()[:5]
            z = torch.exp(-(distances[nearest] ** 2) / (2 * 5.0**2))
            z = z / z.sum()
            log_p = torch.log_softmax(logits[0, :, i, j].double(), dim=0)[nearest]
            total += float(weights[nearest[0]] * -(z * log_p).sum())
    assert loss.item() == pytest.approx(total / 6, rel=1e-5)
    with pytest.raises(ValueError, match="not an integer multiple"):
        losses.class_rebalanced_cross_entropy(logits, ab_full[..., :10], weights)


class TinyZhang(nn.Module):
    """A small stand-in with the ECCV 2016 training interface (``logits(L)`` at 1/4 resolution)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 313, 3, 2, 1))

    def logits(self, lightness):
        return self.body((lightness - 50) / 100)


def test_class_rebalanced_cross_entropy_trains():
    torch.manual_seed(0)
    image = smooth_image(32)
    weights = losses.rebalancing_weights(losses.ab_prior(image)).float()
    net = TinyZhang()

    def loss_fn():
        return losses.supervised_loss("zhang-eccv16", net, image, rebalance=weights)[0]

    values = _steps(loss_fn, net.parameters())
    assert values[-1] < values[0]
    assert _params_without_grad(net, loss_fn) == []


def test_iizuka_loss_trains_with_classification():
    arch = get_architecture("iizuka")
    torch.manual_seed(0)
    net = arch.build(**arch.test_options).train()
    size = arch.test_size
    images = torch.cat([smooth_image(size, 0), smooth_image(size, 1)])  # BatchNorm1d on the FCs needs batch > 1
    labels = torch.tensor([3, -1])

    def loss_fn():
        return losses.supervised_loss("iizuka", net, images, labels=labels)[0]

    values = _steps(loss_fn, net.parameters(), steps=3, lr=1e-4)
    assert values[-1] < values[0]
    assert _params_without_grad(net, loss_fn) == []
    # Without labels only the MSE term is there; ab = 0 is chrominance 0.5.
    with torch.no_grad():
        chroma, logits = net(torch.rand(2, 1, size, size))
    expected = float(nn.functional.mse_loss(chroma, torch.full_like(chroma, 0.5)))
    assert float(losses.iizuka_loss(chroma, torch.zeros(2, 2, size, size))) == pytest.approx(expected, rel=1e-6)


def test_pix2pix_l1_plus_gan_trains():
    torch.manual_seed(0)
    image = smooth_image(32)
    generator = pix2pix.build(num_downs=5, ngf=8).train()
    discriminator = pix2pix.NLayerDiscriminator(input_nc=4, ndf=8, n_layers=3)
    gray = (0.299 * image[:, :1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]) * 2 - 1
    real = image * 2 - 1
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    l1_values = []
    for _ in range(6):
        fake = generator(gray)
        opt_d.zero_grad()
        d_loss = losses.pix2pix_discriminator_loss(
            discriminator(torch.cat([gray, real], 1)), discriminator(torch.cat([gray, fake.detach()], 1))
        )
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = losses.pix2pix_generator_loss(discriminator(torch.cat([gray, fake], 1)), fake, real)
        assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
        g_loss.backward()
        assert all(p.grad is not None for p in generator.parameters())
        opt_g.step()
        l1_values.append(float(nn.functional.l1_loss(fake.detach(), real)))
    assert l1_values[-1] < l1_values[0]
    assert discriminator(torch.zeros(1, 4, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 PatchGAN at 256


@pytest.mark.parametrize("name", ["pix2pix-sal", "uresnet-sal", "zhang-siggraph17"])
def test_supervised_loss_of_other_architectures(name):
    arch = get_architecture(name)
    torch.manual_seed(0)
    net = arch.build(**arch.test_options).train()
    if name == "zhang-siggraph17":
        net.eval()  # full-width net: one gradient check, no optimisation loop (slow on CPU)
        image = smooth_image(16)
        loss, parts = losses.supervised_loss(name, net, image)
        loss.backward()
        assert torch.isfinite(loss) and "smooth_l1" in parts
        # the 529-class head is trained by the classification loss only, not by the automatic-mode regression
        assert [n for n, p in net.named_parameters() if p.grad is None and not n.startswith("model_class")] == []
        return
    image = smooth_image(arch.test_size)
    values = _steps(lambda: losses.supervised_loss(name, net, image)[0], net.parameters())
    assert values[-1] < values[0]
    # the saliency head gets no gradient from L1 alone (SCGAN's attention loss trains it): check the RGB path
    assert _params_without_grad(net, lambda: losses.supervised_loss(name, net, image)[0], skip=("saliency",)) == []


def test_saliency_variants_train_with_the_attention_loss():
    arch = get_architecture("uresnet-sal")
    net = arch.build(**arch.test_options)
    image = smooth_image(arch.test_size)
    saliency_target = torch.rand(1, 1, arch.test_size, arch.test_size)
    rgb, saliency = net(image.mean(1, keepdim=True) * 2 - 1)
    attention = (rgb * saliency - (image * 2 - 1) * saliency_target).abs().mean()
    attention.backward()
    assert all(p.grad is not None for p in net.saliency.parameters())


def test_supervised_loss_rejects_bad_input():
    with pytest.raises(ValueError, match=r"expected RGB images \(N, 3, H, W\)"):
        losses.supervised_loss("pix2pix", pix2pix.build(5, 8), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="no training loss for 'nope'"):
        losses.supervised_loss("nope", pix2pix.build(5, 8), torch.rand(1, 3, 32, 32))
