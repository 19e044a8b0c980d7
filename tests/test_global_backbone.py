"""The EfficientNet-Lite0 global-feature backbone, the penalty's patch reduction, and the TrainConfig migration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scgan.checkpoint import init_global_features
from scgan.config import get_config
from scgan.errors import InputError
from scgan.losses import AdversarialLoss, gradient_penalty, kernel_ops
from scgan.model import EfficientNetGlobalFeatures, GlobalFeatureNetwork, build_generator
from scgan.training.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EFFNET_64 = get_config("scgan-tiny").replace(global_backbone="efficientnet-lite0")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return build_generator(EFFNET_64)


def test_backbone_is_the_packaged_classifier_frozen(generator):
    from metrics.classifier import build_efficientnet_lite0

    features = generator.global_features
    assert isinstance(features, EfficientNetGlobalFeatures)
    packaged = build_efficientnet_lite0(pretrained=True).state_dict()
    mine = features.backbone.state_dict()
    assert mine.keys() == packaged.keys()
    assert all(torch.equal(mine[k], packaged[k]) for k in packaged)
    assert not any(p.requires_grad for p in features.backbone.parameters())
    assert all(p.requires_grad for p in features.project.parameters())
    generator.train()
    assert features.training and not features.backbone.training  # BatchNorm keeps its ImageNet statistics
    assert not any(m.training for m in features.backbone.modules())


def test_backbone_output_is_deterministic_and_broadcast(generator):
    torch.manual_seed(1)
    gray = torch.rand(3, 1, 64, 64) * 2 - 1
    generator.train()
    first = generator.global_features(gray)
    second = generator.global_features(gray)  # train mode: a BatchNorm in train mode would differ or drift
    assert first.shape == (3, EFFNET_64.global_channels[4], 2, 2)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first[..., 0, 0], first[..., 1, 1], rtol=0, atol=0)  # one vector per image
    # Different photos give different features (the branch carries image content).
    assert (first[0] - first[1]).abs().max() > 0


def test_training_step_updates_projection_not_backbone(generator):
    before = {k: v.clone() for k, v in generator.global_features.backbone.state_dict().items()}
    opt = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=1e-2)
    project_before = generator.global_features.project.weight.detach().clone()
    generator.train()
    rgb, _ = generator(torch.rand(2, 1, 64, 64) * 2 - 1)
    rgb.square().mean().backward()
    opt.step()
    assert not torch.equal(project_before, generator.global_features.project.weight.detach())
    after = generator.global_features.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN running statistics


def test_backbone_needs_no_global_init_and_refuses_one(generator):
    assert "efficientnet-lite0" in init_global_features(generator, "")
    with pytest.raises(InputError, match="--global-init .*vgg16-gray"):
        init_global_features(generator, "global.pt")
    with pytest.raises(InputError, match="randomly initialised global network is the vgg16-gray ablation"):
        EFFNET_64.replace(global_init="random")


def test_vgg_backbone_stays_the_paper_default():
    assert get_config("scgan-256").global_backbone == "vgg16-gray"
    vgg = build_generator("scgan-tiny")
    assert isinstance(vgg.global_features, GlobalFeatureNetwork)
    with pytest.raises(InputError, match="--global-init is required"):
        init_global_features(vgg, "")
    assert init_global_features(vgg, "none") == "random"


def test_train_config_defaults_and_v1_migration():
    config = TrainConfig()
    assert config.global_backbone == "efficientnet-lite0"
    assert config.model_config().global_backbone == "efficientnet-lite0"
    old = TrainConfig().to_dict()
    for key in ("global_backbone", "gp_reduction"):
        old.pop(key)
    old["version"] = 1
    migrated = TrainConfig.from_dict(old)  # a run saved before these fields trained the released recipe
    assert migrated.global_backbone == "vgg16-gray" and migrated.gp_reduction == "sum"
    with pytest.raises(InputError, match="version 99"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "version": 99})


class PatchLinearCritic(nn.Module):
    """D(gray, x) = P identical patch scores <w, x>: the gradient of their sum is P w, of their mean w."""

    def __init__(self, shape, patches: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64))
        self.patches = patches

    def forward(self, gray, x):
        score = (self.w * x).flatten(1).sum(1)
        return score[:, None, None, None].expand(-1, 1, 1, self.patches)


@pytest.mark.parametrize("reduction, scale", [("sum", 6.0), ("mean", 1.0)])
def test_penalty_reduction_closed_form(reduction, scale):
    torch.manual_seed(3)
    critic = PatchLinearCritic((1, 3, 4, 4), patches=6)
    gray = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    real, fake = torch.rand(2, 3, 4, 4, dtype=torch.float64), torch.rand(2, 3, 4, 4, dtype=torch.float64)
    eps = torch.rand(2, dtype=torch.float64)
    penalty = gradient_penalty(kernel_ops("reference"), critic, gray, real, fake, eps, reduction)
    torch.testing.assert_close(penalty.detach(), (scale * critic.w.detach().norm() - 1) ** 2)
    with pytest.raises(InputError, match="reduction"):
        gradient_penalty(kernel_ops("reference"), critic, gray, real, fake, eps, "max")
    loss, parts = AdversarialLoss("wgan-gp", 10.0, reduction).critic(
        kernel_ops("reference"), critic, gray, real, fake, eps
    )
    assert parts["gp"] == pytest.approx(float(penalty.detach()))


def test_train_config_names_the_flag_for_random_global_with_the_default_backbone():
    with pytest.raises(InputError, match=r"--global-init none / --random-global\) are for --global-backbone vgg16"):
        TrainConfig(global_init="none")
    assert TrainConfig(global_init="none", global_backbone="vgg16-gray").model_config().global_init == "random"
    assert TrainConfig(global_init="none", global_features=False).model_config().global_features is False


def test_perceptual_weight_is_calibrated_for_efficientnet_and_the_papers_for_vgg():
    from scgan.training.config import EFFICIENTNET_W_PERCEPTUAL, PAPER_W_PERCEPTUAL

    assert TrainConfig().w_perceptual is None  # unset until the run starts
    assert TrainConfig().resolved().w_perceptual == EFFICIENTNET_W_PERCEPTUAL == 0.03
    assert TrainConfig(perceptual="vgg16:v.pth").resolved().w_perceptual == PAPER_W_PERCEPTUAL == 5.0
    assert TrainConfig(perceptual="vgg16:v.pth", w_perceptual=2.0).resolved().w_perceptual == 2.0
    assert TrainConfig().gp_reduction == "mean"
    stored = TrainConfig().resolved().to_dict()
    assert stored["w_perceptual"] == 0.03 and TrainConfig.from_dict(stored).w_perceptual == 0.03


def test_train_help_marks_the_calibrated_defaults(capsys):
    from scgan.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert ("(default: 0.03 with efficientnet-lite0 (calibrated, docs/training.md), 5.0 with vgg16:PATH (the paper)) "
            "[not the paper's: the paper uses 5.0]") in printed
    assert "--global-backbone {vgg16-gray,efficientnet-lite0}" in printed
