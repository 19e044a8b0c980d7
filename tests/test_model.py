"""SCGAN networks: exact parameter counts, shapes at every preset, gradients, init, ablations, input validation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import scgan
from scgan.config import PRESETS, ModelConfig, get_config
from scgan.errors import InputError
from scgan.model import (
    ConvBlock,
    batchnorm_batch_statistics,
    build_discriminator,
    build_generator,
    build_global_features,
    count_parameters,
    fold_spectral_norm,
)

# The released architecture (docs/model.md / issue 3): trainable parameters of the 256-pixel configuration.
PAPER_GENERATOR = 58_755_200
PAPER_GLOBAL_FEATURES = 17_077_952
PAPER_SALIENCY = 1_624_448
PAPER_DISCRIMINATOR = 5_766_144


@pytest.fixture(scope="module")
def paper_generator():
    torch.manual_seed(0)
    return build_generator("scgan-256")


def test_public_names_at_package_level():
    assert scgan.PRESETS is PRESETS
    assert scgan.ModelConfig is ModelConfig
    assert scgan.build_generator is build_generator
    assert scgan.build_discriminator is build_discriminator


def test_paper_parameter_counts(paper_generator):
    assert count_parameters(paper_generator) == PAPER_GENERATOR
    assert count_parameters(paper_generator.global_features) == PAPER_GLOBAL_FEATURES
    assert count_parameters(paper_generator.saliency_branch) == PAPER_SALIENCY
    assert count_parameters(build_discriminator("scgan-256")) == PAPER_DISCRIMINATOR


def test_spectral_norm_parameters_are_the_unnormalised_weights(paper_generator):
    # With spectral norm the trainable tensor is `parametrizations.weight.original`; u/v are buffers, no bias anywhere.
    names = [name for name, _ in paper_generator.named_parameters()]
    conv_weights = [n for n in names if n.endswith("parametrizations.weight.original")]
    assert len(conv_weights) == 14 + 9 + 9 + 6  # global net, down1..down9, up1..up9, saliency branch
    assert not any(n.endswith(".bias") and ".conv." in n for n in names)
    buffers = [name for name, _ in paper_generator.named_buffers()]
    assert any(n.endswith("parametrizations.weight.0._u") for n in buffers)


def test_paper_generator_shapes_and_ranges(paper_generator):
    paper_generator.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        rgb, saliency = paper_generator(torch.rand(1, 1, 256, 256) * 2 - 1)
    assert rgb.shape == (1, 3, 256, 256) and saliency.shape == (1, 1, 256, 256)
    assert rgb.min() >= -1 and rgb.max() <= 1
    assert saliency.min() >= 0 and saliency.max() <= 1
    out = build_discriminator("scgan-256").eval()(torch.zeros(1, 1, 256, 256), torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30)


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "scgan-256"])
def test_small_preset_shapes(name):
    config = PRESETS[name]
    size = config.image_size
    generator = build_generator(name).eval()
    with torch.no_grad():
        rgb, saliency = generator(torch.rand(1, 1, size, size) * 2 - 1)
        # A preset takes any multiple of its size (fully convolutional); the bottleneck grows.
        rgb2, _ = generator(torch.rand(1, 1, size, 2 * size) * 2 - 1)
    assert rgb.shape == (1, 3, size, size) and saliency.shape == (1, 1, size, size)
    assert rgb2.shape == (1, 3, size, 2 * size)
    scores = build_discriminator(name)(torch.zeros(2, 1, size, size), torch.zeros(2, 3, size, size))
    assert scores.shape == (2, 1, size // 8 - 2, size // 8 - 2)
    features = generator.global_features(torch.zeros(1, 1, size, size))
    assert features.shape == (1, config.global_channels[4], size // 32, size // 32)


def test_presets_smallest_last_and_same_structure(paper_generator):
    configs = list(PRESETS.values())
    assert configs[0].name == "scgan-256" and configs[0] == ModelConfig()
    generators = [paper_generator] + [build_generator(c) for c in configs[1:]]
    counts = [count_parameters(g) for g in generators]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)
    sizes = [c.image_size for c in configs]
    assert sizes == sorted(sizes, reverse=True)
    for config, generator in zip(configs, generators):
        assert config.levels == config.image_size.bit_length() - 1
        # depth follows the size: down1..down{L+1}, up1..up{L+1}
        assert hasattr(generator, f"down{config.levels + 1}") and not hasattr(generator, f"down{config.levels + 2}")
        assert hasattr(generator, f"up{config.levels + 1}") and not hasattr(generator, f"up{config.levels + 2}")


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny").train()
    discriminator = build_discriminator("scgan-tiny").train()
    gray = torch.rand(2, 1, 64, 64) * 2 - 1
    rgb, saliency = generator(gray)
    weights = torch.randn_like(rgb)
    loss = (rgb * weights).mean() + (saliency * torch.randn_like(saliency)).mean()
    loss = loss + discriminator(gray, rgb).mean()
    loss.backward()
    for module in (generator, discriminator):
        for name, p in module.named_parameters():
            assert p.grad is not None, f"no gradient for {name}"
            assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_eval_mode_is_deterministic_and_stateless():
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny")
    gray = torch.rand(2, 1, 64, 64) * 2 - 1
    generator.train()
    generator(gray)  # one training step's forward updates BN statistics and spectral-norm vectors
    generator.eval()
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    with torch.no_grad():
        a, sa = generator(gray)
        b, sb = generator(gray)
        c, _ = generator(gray[:1])
    assert torch.equal(a, b) and torch.equal(sa, sb)
    torch.testing.assert_close(c, a[:1], rtol=0, atol=1e-6)  # eval: per-image result independent of the batch
    for key, value in generator.state_dict().items():
        assert torch.equal(value, state[key]), f"eval forward changed {key}"


def test_normal_init_really_applies_to_spectrally_normalised_convs(paper_generator):
    checked = 0
    for name, module in paper_generator.named_modules():
        if isinstance(module, ConvBlock):
            assert parametrize.is_parametrized(module.conv, "weight"), name
            original = module.conv.parametrizations.weight.original
            if original.numel() >= 10_000:
                assert abs(original.std().item() - 0.02) < 0.002, f"{name}: std {original.std().item():.4f}"
                assert abs(original.mean().item()) < 0.002, name
                checked += 1
            if module.norm is not None:
                assert abs(module.norm.weight.mean().item() - 1.0) < 0.02, name
                assert torch.equal(module.norm.bias, torch.zeros_like(module.norm.bias)), name
    assert checked > 30
    # PyTorch's default init (kaiming-uniform) would give std 1/sqrt(3 * fan_in) ~ 0.0085 for a 512-channel 3x3 conv,
    # so the check above distinguishes "init applied" from "init silently skipped" (the released code's bug).
    default = nn.Conv2d(512, 512, 3)
    assert abs(default.weight.std().item() - 0.02) > 0.005


def test_conv_block_is_upsample_reflect_pad_conv_bn_lrelu():
    # Written out with functional ops: reflection (not zero) padding, nearest upsampling, no bias, BN, LeakyReLU(0.2).
    torch.manual_seed(0)
    block = ConvBlock(3, 5, 3, upsample=True).eval()
    block.norm.running_mean.uniform_(-0.5, 0.5)
    block.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 4, 6)
    with torch.no_grad():
        up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        conv = torch.nn.functional.conv2d(torch.nn.functional.pad(up, (1, 1, 1, 1), mode="reflect"), block.conv.weight)
        mean, var, weight, bias = (t.view(1, -1, 1, 1) for t in (block.norm.running_mean, block.norm.running_var,
                                                                  block.norm.weight, block.norm.bias))
        expected = torch.nn.functional.leaky_relu((conv - mean) / torch.sqrt(var + 1e-5) * weight + bias, 0.2)
        torch.testing.assert_close(block(x), expected)
    for network in (build_generator("scgan-tiny"), build_discriminator("scgan-tiny")):
        for name, module in network.named_modules():
            if isinstance(module, ConvBlock):
                assert isinstance(module.pad, nn.ReflectionPad2d) and module.conv.padding == (0, 0), name


def test_init_gain_is_a_config_switch():
    torch.manual_seed(0)
    generator = build_generator(PRESETS["scgan-128"].replace(init_gain=0.05))
    original = generator.down5.conv.parametrizations.weight.original
    assert abs(original.std().item() - 0.05) < 0.005


def test_spectral_norm_switch():
    config = PRESETS["scgan-tiny"].replace(spectral_norm=False)
    generator = build_generator(config)
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())
    assert count_parameters(generator) == count_parameters(build_generator("scgan-tiny"))
    # the critics are always spectrally normalised (paper and released code)
    assert all(parametrize.is_parametrized(m.conv, "weight") for m in build_discriminator(config).modules()
               if isinstance(m, ConvBlock))


def test_ablations_remove_exactly_their_parts():
    base = PRESETS["scgan-256"]
    no_saliency = build_generator(base.replace(saliency=False))
    assert no_saliency.saliency_branch is None
    assert count_parameters(no_saliency) == PAPER_GENERATOR - PAPER_SALIENCY
    no_global = build_generator(base.replace(global_features=False))
    assert no_global.global_features is None
    # down7 loses the 512 global-feature input channels (3x3 conv, no bias)
    assert count_parameters(no_global) == PAPER_GENERATOR - PAPER_GLOBAL_FEATURES - 512 * 512 * 9
    # global_init="random" changes no layer (only whether the trainer loads pretrained weights)
    random_tiny = build_generator(PRESETS["scgan-tiny"].replace(global_init="random"))
    assert list(random_tiny.state_dict()) == list(build_generator("scgan-tiny").state_dict())

    tiny = PRESETS["scgan-tiny"]
    for config in (tiny.replace(saliency=False), tiny.replace(global_features=False)):
        generator = build_generator(config).eval()
        rgb, saliency = generator(torch.zeros(1, 1, 64, 64))
        assert rgb.shape == (1, 3, 64, 64)
        assert (saliency is None) == (not config.saliency)


def test_generator_input_validation_messages():
    generator = build_generator("scgan-tiny").eval()
    with pytest.raises(InputError, match=r"gray \(N, 1, H, W\).*\(1, 3, 64, 64\).*BT.601"):
        generator(torch.zeros(1, 3, 64, 64))
    with pytest.raises(InputError, match=r"multiples of 64 \(64, 128, 192.*got 100x64"):
        generator(torch.zeros(1, 1, 100, 64))
    with pytest.raises(InputError, match=r"multiples of 64.*got 32x32"):
        generator(torch.zeros(1, 1, 32, 32))
    with pytest.raises(InputError, match="float"):
        generator(torch.zeros(1, 1, 64, 64, dtype=torch.uint8))
    with pytest.raises(InputError, match="shape"):
        generator(torch.zeros(1, 64, 64))
    discriminator = build_discriminator("scgan-tiny")
    with pytest.raises(InputError, match=r"rgb must be \(N, 3, H, W\)"):
        discriminator(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(InputError, match="differ"):
        discriminator(torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 32, 64))
    with pytest.raises(InputError, match=">= 17"):
        discriminator(torch.zeros(1, 1, 16, 16), torch.zeros(1, 3, 16, 16))


def test_config_validation_and_round_trip():
    with pytest.raises(InputError, match=r"unknown preset 'scgan-512'.*scgan-256, scgan-128"):
        get_config("scgan-512")
    with pytest.raises(InputError, match="power of two >= 64"):
        ModelConfig(image_size=96)
    with pytest.raises(InputError, match="power of two >= 64"):
        ModelConfig(image_size=32)
    with pytest.raises(InputError, match="global_init"):
        ModelConfig(global_init="imagenet")
    with pytest.raises(InputError, match="saliency must be True or False, got 'no'"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "saliency": "no"})
    with pytest.raises(InputError, match=r"unknown keys \['dropout'\]"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "dropout": 0.5})
    for config in PRESETS.values():
        data = config.to_dict()
        assert isinstance(data["global_channels"], list)
        assert ModelConfig.from_dict(data) == config
        assert get_config(data) == config


def test_released_bn_mode_uses_batch_statistics_and_restores_state():
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny")
    gray = torch.rand(3, 1, 64, 64) * 2 - 1
    generator.train()
    generator(torch.rand(4, 1, 64, 64))  # make running statistics differ from the batch statistics
    generator.eval()
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    with torch.no_grad():
        eval_rgb, _ = generator(gray)
        with batchnorm_batch_statistics(generator):
            released_rgb, _ = generator(gray)
        # reference: a copy with BatchNorm (only) in train mode
        reference = copy.deepcopy(generator)
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.train()
        reference_rgb, _ = reference(gray)
    torch.testing.assert_close(released_rgb, reference_rgb)
    assert (released_rgb - eval_rgb).abs().max() > 1e-3
    for key, value in generator.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not generator.training


def test_released_bn_mode_on_a_train_mode_generator_changes_no_state():
    # A train-mode generator would count the batch (num_batches_tracked) and run a spectral-norm power iteration
    # (u/v) on every forward; the context must do neither and hand the module back in train mode.
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny").train()
    generator(torch.rand(2, 1, 64, 64) * 2 - 1)
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    gray = torch.rand(3, 1, 64, 64) * 2 - 1
    with torch.no_grad(), batchnorm_batch_statistics(generator):
        inside, _ = generator(gray)
    for key, value in generator.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert generator.training and all(m.training for m in generator.modules())
    with torch.no_grad(), batchnorm_batch_statistics(generator.eval()):
        from_eval, _ = generator(gray)
    torch.testing.assert_close(inside, from_eval, rtol=0, atol=0)


def test_discriminator_output_size_follows_any_input_size():
    discriminator = build_discriminator("scgan-tiny").eval()
    for height, width in ((17, 17), (45, 64), (63, 30)):
        scores = discriminator(torch.zeros(1, 1, height, width), torch.zeros(1, 3, height, width))
        assert scores.shape == (1, 1, -(-height // 8) - 2, -(-width // 8) - 2), (height, width)
    with pytest.raises(InputError, match="gray must be a float"):
        discriminator(torch.zeros(1, 1, 32, 32, dtype=torch.uint8), torch.zeros(1, 3, 32, 32))


def test_fold_spectral_norm_keeps_the_eval_function():
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny")
    generator.train()
    generator(torch.rand(2, 1, 64, 64))
    generator.eval()
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    folded = fold_spectral_norm(generator)
    assert not any(parametrize.is_parametrized(m) for m in folded.modules())
    assert not folded.training and not folded.config.spectral_norm
    gray = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(folded(gray)[0], generator(gray)[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(folded(gray)[1], generator(gray)[1], rtol=0, atol=1e-5)
    # the source generator is untouched and still works
    assert all(torch.equal(v, state[k]) for k, v in generator.state_dict().items())
    assert parametrize.is_parametrized(generator.down2.conv)
    # folding keeps the dtype and leaves the caller's RNG stream alone (it builds a throw-away initialised network)
    rng = torch.get_rng_state()
    folded64 = fold_spectral_norm(generator.double())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.dtype == torch.float64 for p in folded64.parameters())
    with torch.no_grad():
        torch.testing.assert_close(folded64(gray.double())[0], generator(gray.double())[0], rtol=0, atol=1e-12)


def test_global_features_pretrained_round_trip(tmp_path):
    from scgan.checkpoint import (
        GLOBAL_FEATURES_FORMAT,
        load_global_features,
        load_pretrained_global_features,
        save_global_features,
    )

    torch.manual_seed(0)
    config = PRESETS["scgan-tiny"]
    pretrained = build_global_features(config)
    path = save_global_features(tmp_path / "global.pt", pretrained, config, source="distillation")
    payload = load_global_features(path)
    assert payload["format"] == GLOBAL_FEATURES_FORMAT and payload["source"] == "distillation"

    torch.manual_seed(1)
    generator = build_generator(config)
    key = "conv3_1.conv.parametrizations.weight.original"
    assert not torch.equal(generator.global_features.state_dict()[key], pretrained.state_dict()[key])
    load_pretrained_global_features(generator.global_features, path)
    for name, value in pretrained.state_dict().items():
        assert torch.equal(generator.global_features.state_dict()[name], value), name

    other = build_generator("scgan-64")
    with pytest.raises(InputError, match="global_channels"):
        load_pretrained_global_features(other.global_features, path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_pretrained_global_features(generator.global_features, tmp_path / "missing.pt")


def test_generator_fits_a_tiny_target():
    # A sanity check that the wiring learns: a few Adam steps of L1 on one colour image and its saliency map.
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny").train()
    target = torch.rand(1, 3, 4, 4).repeat_interleave(16, 2).repeat_interleave(16, 3) * 2 - 1
    gray = (0.299 * target[:, :1] + 0.587 * target[:, 1:2] + 0.114 * target[:, 2:])
    saliency_target = (target[:, :1] > 0).float()
    optimiser = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(12):
        rgb, saliency = generator(gray.repeat(2, 1, 1, 1))
        loss = (rgb - target).abs().mean() + (saliency - saliency_target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::3]
