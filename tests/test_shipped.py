"""Shipped weights (scgan.shipped, baselines.shipped, `scgan ship-weights`): a tiny model trained here for one step,
shipped into a temporary weights folder, loaded by name everywhere a name is taken; a changed file (sha256) and a
file that loads but computes something else (probe) fail naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import baselines
from baselines.shipped import ship_checkpoint
from scgan import shipped
from scgan.cli import main as scgan_main
from scgan.errors import InputError
from scgan.saliency import generate_saliency_maps
from scgan.saliency_detectors import SpectralResidualDetector
from scgan.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scgan_checkpoint(tmp_path_factory) -> Path:
    """One stage-1 step of the tiny preset with the default frozen EfficientNet-Lite0 global backbone."""
    from scgan.data import list_images

    root = tmp_path_factory.mktemp("scgan-run")
    generate_saliency_maps(list_images("samples"), root / "sal", SpectralResidualDetector(), size=64, progress=False)
    config = TrainConfig(data="samples", saliency=str(root / "sal"), out=str(root / "run"), preset="scgan-tiny",
                         batch_size=2, stage1_epochs=1, stage2_epochs=1, perceptual="none", sample_count=0,
                         stop_after_steps=1)
    train(config, progress=False)
    return root / "run" / "checkpoint.pt"


@pytest.fixture(scope="module")
def pix2pix_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("p2p-run")
    args = ["train-baseline", "pix2pix", "--data", "samples", "--out", str(root), "--preset", "scgan-tiny",
            "--option", "num_downs=5", "--option", "ngf=8", "--batch-size", "2", "--stop-after-steps", "1",
            "--sample-count", "0", "--quiet"]
    assert scgan_main(args) == 0
    return root / "checkpoint.pt"


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("SCGAN_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def test_scgan_ships_without_the_frozen_backbone_and_loads_by_name(scgan_checkpoint, weights, tmp_path, capsys):
    from scgan.checkpoint import file_sha256, load_generator
    from scgan.colorize import ScganColorizer

    args = ["ship-weights", str(scgan_checkpoint), "--name", "scgan:mini", "--budget", "2 images", "--recipe", "test"]
    assert scgan_main(args) == 0
    entry = json.loads((weights / "registry.json").read_text())["models"]["scgan:mini"]
    path = weights / entry["file"]
    assert entry["sha256"] == file_sha256(path) and entry["kind"] == "scgan" and entry["input_size"] == 64
    assert entry["images_seen"] == 2 and entry["steps"] == 1 and entry["budget"] == "2 images"
    assert entry["build_options"]["global_backbone"] == "efficientnet-lite0" and len(entry["probe"]["output"]) == 48
    assert entry["checkpoint_sha256"] == file_sha256(scgan_checkpoint)
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert not any(k.startswith("global_features.backbone.") for k in stored)
    assert any(k.startswith("global_features.project.") for k in stored)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())

    # The shipped generator computes what the checkpoint's does, up to fp16 weights.
    generator, _, sha = shipped.load_scgan("scgan:mini")
    original, _ = load_generator(scgan_checkpoint)
    gray = shipped.probe_gray(64)
    torch.testing.assert_close(ScganColorizer(generator).predict(gray)[0], ScganColorizer(original).predict(gray)[0],
                               atol=5e-3, rtol=0)
    method = baselines.load_method("scgan:mini")
    assert (method.name, method.input_size, method.sha256) == ("scgan:mini", 64, sha)
    assert method.colorize(torch.rand(1, 3, 40, 48), raw=False).shape == (1, 3, 40, 48)

    capsys.readouterr()
    assert scgan_main(["baselines"]) == 0
    assert "scgan:mini" in capsys.readouterr().out
    assert scgan_main(["colorize", "samples", "--out", str(tmp_path / "out"), "--quiet"]) == 0  # default model
    report = json.loads((tmp_path / "out" / "colorize_report.json").read_text())
    assert report["model"] == "scgan:mini" and report["model_sha256"] == sha
    assert scgan_main(["export", "--model", "scgan:mini", "--out", str(tmp_path / "mini.onnx"), "--quiet"]) == 0
    assert baselines.contract.validate_colorizer(tmp_path / "mini.onnx").input_size == 64


def test_one_checkpoint_ships_to_the_same_bytes(scgan_checkpoint, tmp_path):
    first = ship_checkpoint(scgan_checkpoint, "scgan:mini", folder=tmp_path / "a")
    second = ship_checkpoint(scgan_checkpoint, "scgan:mini", folder=tmp_path / "b")
    assert first["sha256"] == second["sha256"]
    assert (tmp_path / "a" / "scgan-mini.pt").read_bytes() == (tmp_path / "b" / "scgan-mini.pt").read_bytes()


def test_a_changed_file_fails_its_sha256_naming_it(scgan_checkpoint, weights):
    ship_checkpoint(scgan_checkpoint, "scgan:mini", weights)
    path = weights / "scgan-mini.pt"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"{path}: sha256 .* does not match"):
        shipped.load_scgan("scgan:mini")
    with pytest.raises(InputError, match="does not match"):
        baselines.load_method("scgan:mini")


def test_a_file_that_computes_something_else_fails_its_probe_naming_it(scgan_checkpoint, weights):
    from scgan.checkpoint import file_sha256

    ship_checkpoint(scgan_checkpoint, "scgan:mini", weights)
    path = weights / "scgan-mini.pt"
    payload = torch.load(path, weights_only=True)
    biases = [k for k in payload["state_dict"] if k.endswith(".bias")]
    for key in biases:  # same keys and shapes: loads strictly, computes something else
        payload["state_dict"][key] = payload["state_dict"][key] + 0.5
    torch.save(payload, path)
    registry = json.loads((weights / "registry.json").read_text())
    registry["models"]["scgan:mini"]["sha256"] = file_sha256(path)  # a consistent sha256: only the probe can tell
    (weights / "registry.json").write_text(json.dumps(registry))
    with pytest.raises(InputError, match=rf"{path}: scgan:mini loads but computes something else"):
        shipped.load_scgan("scgan:mini")


def test_baseline_ships_and_loads_by_name(pix2pix_checkpoint, weights, tmp_path):
    with pytest.raises(InputError, match="holds a pix2pix model; name it pix2pix:TAG"):
        ship_checkpoint(pix2pix_checkpoint, "scgan:mini", weights)
    entry = ship_checkpoint(pix2pix_checkpoint, "pix2pix:mini", weights, budget="2 images")
    assert entry["kind"] == "baseline" and entry["build_options"] == {"num_downs": 5, "ngf": 8}
    with pytest.raises(InputError, match="already shipped"):
        ship_checkpoint(pix2pix_checkpoint, "pix2pix:mini", weights)
    method = baselines.load_method("pix2pix:mini")
    reference = baselines.load_method(f"pix2pix:{pix2pix_checkpoint}")  # the fp32 checkpoint itself
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(method.colorize(images, raw=True), reference.colorize(images, raw=True),
                               atol=5e-3, rtol=0)
    assert method.name == "pix2pix:mini" and method.sha256 == entry["sha256"]
    assert scgan_main(["export", "--model", "pix2pix:mini", "--out", str(tmp_path / "p.onnx"), "--quiet"]) == 0
    with pytest.raises(InputError, match="a shipped pix2pix model, not SCGAN"):
        shipped.load_scgan("pix2pix:mini")


def test_no_shipped_weights_is_a_one_line_error_saying_how_to_make_them(weights, tmp_path, capsys):
    assert scgan_main(["colorize", "samples", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "scgan:mini: no shipped weights are installed yet" in err and "scgan ship-weights" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="no shipped weights are installed yet"):
        baselines.load_method("zhang-eccv16:mini")


def test_probe_input_is_fixed():
    gray = shipped.probe_gray(64)
    assert gray.shape == (1, 1, 64, 64) and 0.0 <= gray.min() < gray.max() <= 1.0
    assert torch.equal(gray, shipped.probe_gray(64)) and gray.std() > 0.1
    assert shipped.looks_like_name("scgan:mini") and not shipped.looks_like_name("runs/a/checkpoint.pt")


PACKAGED = list(shipped.read_registry(Path(shipped.__file__).parent / "weights"))


@pytest.mark.parametrize("name", PACKAGED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no shipped weights in scgan/weights/registry.json yet (bench/recipes trains and ships them)"))])
def test_every_packaged_model_loads_and_passes_its_probe(name, monkeypatch, tmp_path):
    monkeypatch.delenv("SCGAN_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path))
    folder = shipped.weights_dir()
    files = [p for p in folder.iterdir() if p.suffix == ".pt"]
    assert all(p.stat().st_size < shipped.MAX_FILE_BYTES for p in files)
    assert sum(p.stat().st_size for p in files) < shipped.MAX_TOTAL_BYTES
    assert baselines.load_method(name).name == name


#: The committed leaderboards of the shipped models on imagenet-val-sample (bench/recipes, step `leaderboard`).
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "imagenet-val-2026-12-02"
#: Per-image columns regenerated (all the others come from the same colorization).
REGENERATED = ("psnr", "ssim", "cci", "delta_e00")
PHOTOS_PER_METHOD = 2


@pytest.mark.parametrize("protocol", ["wang", "scgan-paper"])
def test_committed_results_regenerate_from_the_shipped_weights(protocol, shared_data, monkeypatch, tmp_path):
    """The committed per-image rows of every shipped model come back, within 1e-4, from the committed weights on the
    same photos (a few per model): the results are the weights' and nothing else's."""
    import shutil

    import pandas as pd

    from bench.leaderboard import LeaderboardConfig, run_leaderboard

    if not PACKAGED:
        pytest.skip("no shipped weights in scgan/weights/registry.json yet")
    rows_file = RESULTS / protocol / "rows.csv"
    assert rows_file.is_file(), f"{rows_file}: the committed leaderboard of the shipped models is missing"
    monkeypatch.delenv("SCGAN_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path / "cache"))
    committed = pd.read_csv(rows_file, dtype={"file": str, "error": str})
    committed = committed[committed["error"].fillna("") == ""]
    assert set(PACKAGED) <= set(committed["method"]), "a shipped model is missing from the committed rows"
    # The same photos for every model (the first of the sorted list), copied under their committed names.
    files = sorted(committed["file"].unique())[:PHOTOS_PER_METHOD]
    photos = tmp_path / "photos"
    for name in files:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / "imagenet-val-sample" / name, photos / name)
    result = run_leaderboard(LeaderboardConfig(data=str(photos), methods=PACKAGED, out=tmp_path / "lb",
                                               protocol=protocol, metrics=list(REGENERATED), quiet=True, cache=False))
    fresh = result["rows"].set_index(["method", "file"])
    old = committed.set_index(["method", "file"])
    checked = 0
    for method in PACKAGED:
        for name in files:
            for column in REGENERATED:
                got, want = float(fresh.loc[(method, name), column]), float(old.loc[(method, name), column])
                assert abs(got - want) <= 1e-4, f"{method} {name} {column}: {got} regenerated, {want} committed"
                checked += 1
    assert checked == len(PACKAGED) * len(files) * len(REGENERATED)
