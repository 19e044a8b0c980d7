"""Global feature pretraining: distillation (no labels) and classification (labels), loadable by the generator."""

from __future__ import annotations

import pytest
import torch

from scgan.checkpoint import load_pretrained_global_features
from scgan.cli import main
from scgan.errors import InputError
from scgan.model import build_generator
from scgan.pretrain import PretrainConfig, distillation_loss, load_result_info, pretrain_global

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_distillation_loss_zero_when_equal_and_positive_otherwise():
    logits = torch.randn(4, 1000)
    assert float(distillation_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(torch.zeros(4, 1000), logits, 2.0)) > 0


def test_pretrain_global_distillation_command_loads_into_generator(tmp_path, capsys):
    out = tmp_path / "global.pt"
    args = ["pretrain-global", "--data", "samples", "--out", str(out), "--preset", "scgan-tiny", "--epochs", "2",
            "--batch-size", "2", "--val-fraction", "0.34", "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "held-out teacher_agreement" in printed and "on 2 image(s) (4 trained on)" in printed
    info = load_result_info(out)
    assert info["source"] == "distillation" and info["teacher"] == "efficientnet-lite0"
    assert 0.0 <= info["val_value"] <= 1.0 and len(info["history"]) == 2
    generator = build_generator("scgan-tiny")
    payload = load_pretrained_global_features(generator.global_features, out)  # strict
    for key, value in payload["state_dict"].items():
        assert torch.equal(generator.global_features.state_dict()[key], value)
    # A preset with other widths refuses the file.
    with pytest.raises(InputError, match="global_channels"):
        load_pretrained_global_features(build_generator("scgan-64").global_features, out)


def test_pretrain_global_classification_with_labels(tmp_path):
    labels = tmp_path / "labels.csv"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "grace_hopper.jpg", "rocket.jpg", "stereo_motorcycle.png"]
    labels.write_text("file,label\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names)))
    result = pretrain_global(
        PretrainConfig(data="samples", labels=str(labels), out=str(tmp_path / "g.pt"), preset="scgan-tiny", epochs=3,
                       batch_size=4, val_fraction=0.34),
        progress=False,
    )  # fmt: skip
    assert result.source == "classification" and result.metric == "top1"
    assert result.val_images == 2 and result.value in (0.0, 0.5, 1.0)
    # It learns: the 1000-way cross-entropy (ln 1000 = 6.9 at chance) falls epoch after epoch on the 4 training photos.
    losses = [row["train_loss"] for row in result.history]
    assert losses[0] > losses[1] > losses[2], losses
    assert load_result_info(result.path)["source"] == "classification"


def test_pretrain_global_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="val-fraction"):
        pretrain_global(PretrainConfig(data="samples", out=str(tmp_path / "g.pt"), val_fraction=1.5))


def test_pretrain_global_needs_a_training_image(tmp_path):
    """Two images and a 90% held-out share would leave nothing to train on: said plainly, nothing written."""
    from scgan.data import list_images

    two = tmp_path / "two.txt"
    two.write_text("".join(f"{e.path}\n" for e in list_images("samples")[:2]))
    out = tmp_path / "g.pt"
    with pytest.raises(InputError, match="leaves no training image"):
        pretrain_global(PretrainConfig(data=str(two), out=str(out), preset="scgan-tiny", val_fraction=0.9),
                        progress=False)  # fmt: skip
    assert not out.exists()


def test_out_that_is_a_folder_is_refused_before_training(tmp_path, capsys):
    # regression: --out naming a folder trained first, then failed with an IsADirectoryError traceback
    args = ["pretrain-global", "--data", "samples", "--out", str(tmp_path), "--preset", "scgan-tiny", "--quiet"]
    assert main(args) == 2
    assert "is a folder; give the path of the file to write" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
