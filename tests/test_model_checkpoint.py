"""Checkpoint files: atomic save, safe load with clear errors, strict generator rebuild from the stored config."""

from __future__ import annotations

import pytest
import torch

from scgan.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    load_generator,
    load_global_features,
    save_checkpoint,
)
from scgan.config import PRESETS
from scgan.errors import InputError
from scgan.model import build_discriminator, build_generator


class NotATensor:
    """A plain Python object: refused by weights_only loading."""

    def __init__(self, value):
        self.value = value


def _tiny_generator(seed=0):
    torch.manual_seed(seed)
    generator = build_generator("scgan-tiny")
    generator.train()
    generator(torch.rand(2, 1, 64, 64))  # non-trivial BN statistics and spectral-norm vectors
    return generator.eval()


def test_round_trip_rebuilds_the_same_generator(tmp_path):
    generator = _tiny_generator()
    discriminator = build_discriminator("scgan-tiny")
    path = save_checkpoint(
        tmp_path / "run" / "last.pt",
        {
            "config": generator.config,
            "generator": generator.state_dict(),
            "discriminator_c": discriminator.state_dict(),
            "epoch": 3,
            "step": 120,
            "rng": {"torch": torch.get_rng_state(), "python": [1, 2, 3]},
        },
    )
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind
    checkpoint = load_checkpoint(path)
    assert checkpoint["format"] == CHECKPOINT_FORMAT
    assert checkpoint["config"] == PRESETS["scgan-tiny"].to_dict()
    assert checkpoint["epoch"] == 3 and checkpoint["step"] == 120

    loaded, checkpoint = load_generator(path)
    assert not loaded.training
    assert loaded.config == generator.config
    gray = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        for a, b in zip(loaded(gray), generator(gray)):
            assert torch.equal(a, b)


def test_preset_name_as_config_and_format_tag_checked(tmp_path):
    generator = _tiny_generator()
    path = save_checkpoint(tmp_path / "a.pt", {"config": "scgan-tiny", "generator": generator.state_dict()})
    assert load_checkpoint(path)["config"]["name"] == "scgan-tiny"
    with pytest.raises(InputError, match="format"):
        save_checkpoint(tmp_path / "b.pt", {"format": "other/1", "config": "scgan-tiny", "generator": {}})
    with pytest.raises(InputError, match=r"lacks \['generator'\]"):
        save_checkpoint(tmp_path / "c.pt", {"config": "scgan-tiny"})
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "c.pt").exists()


def test_strict_load_fails_on_a_mismatched_state_dict(tmp_path):
    generator = _tiny_generator()
    state = generator.state_dict()
    dropped = "up3.norm.running_mean"
    del state[dropped]
    state["extra.weight"] = torch.zeros(1)
    path = save_checkpoint(tmp_path / "broken.pt", {"config": generator.config, "generator": state})
    expected = rf"broken\.pt.*missing keys \['{dropped}'\].*unexpected keys \['extra.weight'\]"
    with pytest.raises(InputError, match=expected):
        load_generator(path)

    # weights of one preset under the config of another: shapes differ
    other = build_generator("scgan-64").state_dict()
    path = save_checkpoint(tmp_path / "mixed.pt", {"config": generator.config, "generator": other})
    with pytest.raises(InputError, match=r"mixed\.pt: weights do not match"):
        load_generator(path)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    junk = tmp_path / "photo.png"
    junk.write_bytes(b"\x89PNG not a checkpoint")
    with pytest.raises(InputError, match=r"photo\.png: not a checkpoint"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(InputError, match=r"plain\.pt: not an scgan-bench checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(InputError, match="not a file"):
        load_checkpoint(tmp_path)
    other = tmp_path / "other.pt"
    torch.save({"format": "other-tool/1", "config": {}, "generator": {}}, other)
    with pytest.raises(InputError, match=r"other\.pt: not an scgan-bench checkpoint \(format 'other-tool/1'"):
        load_checkpoint(other)
    no_weights = tmp_path / "no_weights.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": {}}, no_weights)
    with pytest.raises(InputError, match=r"no_weights\.pt: checkpoint has no \['generator'\] entries"):
        load_checkpoint(no_weights)
    # a checkpoint is not a global-features file (and the other way round)
    with pytest.raises(InputError, match=r"other\.pt: not an scgan-bench global-features file"):
        load_global_features(other)
    bad_config = tmp_path / "config.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "config": {"image_size": 100}, "generator": {}}, bad_config)
    with pytest.raises(InputError, match=r"config\.pt: bad model config.*power of two"):
        load_generator(bad_config)


def test_python_objects_are_not_unpickled_unless_trusted(tmp_path):
    generator = _tiny_generator()
    path = save_checkpoint(
        tmp_path / "objects.pt",
        {"config": generator.config, "generator": generator.state_dict(), "extra": NotATensor(5)},
    )
    with pytest.raises(InputError, match=r"objects\.pt.*trusted=True"):
        load_checkpoint(path)
    assert load_checkpoint(path, trusted=True)["extra"].value == 5
