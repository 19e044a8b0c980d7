"""Held-out validation during training (``--val-data``), and a short real training run that must learn to colorize.

The slow test is the recorded result of docs/training.md ("A short run"): the 64-pixel preset with the trainer's
defaults on 128 BSDS500 photos (spectral-residual saliency, so that it needs no model file), validated on 32 ImageNet
validation photos it never sees.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scgan.errors import InputError
from scgan.saliency import generate_saliency_maps
from scgan.saliency_detectors import SpectralResidualDetector
from scgan.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _colour_photos(folder: Path, count: int, seed: int) -> Path:
    """Smooth colour gradients with a bright disc: colour photos the data layer accepts (not gray)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:96, 0:96] / 95.0
    for i in range(count):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        img = np.stack([a * xx, b * yy, c * (1 - xx)], -1)
        img[(yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.05] = rng.uniform(0, 1, 3)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def sample_maps(tmp_path_factory) -> Path:
    from scgan.data import list_images

    out = tmp_path_factory.mktemp("saliency")
    generate_saliency_maps(list_images("samples"), out, SpectralResidualDetector(), size=64, progress=False)
    return out


def _tiny(sample_maps: Path, out: Path, val: Path, **changes) -> TrainConfig:
    settings = dict(data="samples", saliency=str(sample_maps), out=str(out), preset="scgan-tiny", global_init="none",
                    global_backbone="vgg16-gray", batch_size=2, stage1_epochs=1, stage2_epochs=1, perceptual="none",
                    sample_count=0, val_data=str(val), val_count=3)  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)


def test_validation_rows_per_epoch_and_resume(sample_maps, tmp_path):
    val = _colour_photos(tmp_path / "val", 4, seed=0)
    straight = tmp_path / "straight"
    train(_tiny(sample_maps, straight, val), progress=False)
    rows = _rows(straight / "val.csv")
    assert [(r["stage"], r["epoch"], r["step"], r["val_images"]) for r in rows] == [("1", "1", "3", "3"),
                                                                                    ("2", "2", "6", "3")]
    for row in rows:
        assert 0 < float(row["val_l1"]) < 2 and 5 < float(row["psnr"]) < 60 and float(row["cci"]) >= 0

    # Killed after epoch 1 plus one step, resumed: the same rows (the resume drops none and adds none twice).
    resumed = tmp_path / "resumed"
    assert train(_tiny(sample_maps, resumed, val, stop_after_steps=4), progress=False).finished is False
    assert len(_rows(resumed / "val.csv")) == 1
    train(_tiny(sample_maps, resumed, val), resume=True, progress=False)
    assert _rows(resumed / "val.csv") == rows


def test_validation_refuses_training_photos(sample_maps, tmp_path):
    with pytest.raises(InputError, match="--val-data samples: 6 of its photos are training photos"):
        train(_tiny(sample_maps, tmp_path / "run", Path("x"), val_data="samples"), progress=False)


@pytest.mark.slow
@pytest.mark.shared_data
def test_short_run_learns_to_colorize_held_out_photos(shared_data, tmp_path):
    """scgan-64, trainer defaults (EfficientNet-Lite0 global features and perceptual loss, calibrated weights):
    3 + 2 epochs on 128 BSDS500 photos, batch 8 (80 steps); held out: 32 ImageNet validation photos."""
    from scgan.data import list_images

    train_list = tmp_path / "train.txt"
    photos = sorted((shared_data / "bsds-trainval").glob("*.jpg"))[:128]
    train_list.write_text("".join(f"{p}\n" for p in photos))
    maps = tmp_path / "saliency"
    generate_saliency_maps(list_images(train_list), maps, SpectralResidualDetector(), size=64, progress=False)
    run = tmp_path / "run"
    config = TrainConfig(data=str(train_list), saliency=str(maps), out=str(run), preset="scgan-64", batch_size=8,
                         stage1_epochs=3, stage2_epochs=2, val_data=str(shared_data / "imagenet-val-sample"),
                         val_count=32, sample_count=0, device="cpu")  # fmt: skip
    result = train(config, progress=False)
    assert result.finished
    rows = _rows(run / "val.csv")
    l1 = [float(r["val_l1"]) for r in rows]
    cci = [float(r["cci"]) for r in rows]
    print("val_l1 per epoch", l1, "CCI", cci, "PSNR", [float(r["psnr"]) for r in rows])
    assert len(rows) == 5
    assert l1[-1] < l1[0]  # validation L1 falls over the run
    assert cci[-1] > 8  # it colorizes: a gray output scores CCI 0
