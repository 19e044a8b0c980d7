"""`scgan train-baseline pix2pix-sal|uresnet-sal`: the Table III saliency variants trained with SCGAN's trainer (full
recipe), resumed, refused by SCGAN's loader and loaded by ``baselines.load_method``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import baselines
from scgan.checkpoint import file_sha256, load_checkpoint, load_generator
from scgan.cli import main
from scgan.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL_PIX2PIX_SAL = ["--option", "num_downs=5", "--option", "ngf=8"]  # 64 px is a multiple of 2**5


@pytest.fixture(scope="module")
def saliency_dir(tmp_path_factory) -> Path:
    """Spectral-residual maps of the six embedded sample photos at 64 px (the tiny preset's size)."""
    from scgan.data import list_images
    from scgan.saliency import generate_saliency_maps
    from scgan.saliency_detectors import SpectralResidualDetector

    out = tmp_path_factory.mktemp("saliency")
    generate_saliency_maps(list_images("samples"), out, SpectralResidualDetector(), size=64, progress=False)
    return out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _command(name: str, saliency_dir: Path, run: Path, *extra: str) -> list[str]:
    return ["train-baseline", name, "--data", "samples", "--saliency", str(saliency_dir), "--out", str(run),
            "--preset", "scgan-tiny", "--batch-size", "2", "--stage1-epochs", "1", "--stage2-epochs", "1",
            "--quiet", *extra]  # fmt: skip


def test_pix2pix_sal_full_recipe_resume_and_load_method(saliency_dir, tmp_path, cache, capsys):
    """Both stages with everything on (attention, D_c and D_a with WGAN-GP, EfficientNet perceptual), killed after
    step 4 and resumed by the same command, then loaded by `baselines.load_method` and compared with PyTorch."""
    run = tmp_path / "run"
    assert main(_command("pix2pix-sal", saliency_dir, run, *SMALL_PIX2PIX_SAL, "--stop-after-steps", "4")) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["train-baseline", "pix2pix-sal", "--out", str(run), "--resume", "--quiet"]) == 0
    assert "finished after 2 epoch(s), 6 step(s)" in capsys.readouterr().out
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows[3:]:  # stage 2: the full recipe
        for key in ("g_total", "reconstruction", "attention", "gan", "perceptual", "d_c", "d_a", "gp_c", "gp_a"):
            assert row[key] != "" and torch.isfinite(torch.tensor(float(row[key]))), key

    ckpt_path = run / "checkpoint.pt"
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["generator_spec"] == {"kind": "baseline", "name": "pix2pix-sal", "options": {"ngf": 8, "num_downs": 5}}
    assert ckpt["train_config"]["perceptual"] == "efficientnet-lite0" and ckpt["train_config"]["attention"]
    assert set(ckpt["optimizers"]) == {"g", "d_c", "d_a"}
    with pytest.raises(InputError, match=r"pix2pix-sal.*baselines\.load_method\('pix2pix-sal:"):
        load_generator(ckpt_path)

    method = baselines.load_method(f"pix2pix-sal:{ckpt_path}")
    assert method.name == "pix2pix-sal" and method.sha256 == file_sha256(ckpt_path)
    # The exported model is the trained network: ONNX Runtime == the checkpoint's weights in PyTorch.
    from baselines.archs.saliency_variants import Colorizer, build_pix2pix_sal

    net = build_pix2pix_sal(num_downs=5, ngf=8)
    net.load_state_dict(ckpt["generator"])
    reference = Colorizer(net).eval()
    size = method.input_size
    assert size == ckpt["config"]["image_size"]  # exported at the preset's training size, not the paper's 256
    gray = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    got_rgb, got_sal = method.predict(gray)
    with torch.no_grad():
        want_rgb, want_sal = reference(gray)
    torch.testing.assert_close(got_rgb, want_rgb, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_sal, want_sal, atol=1e-4, rtol=0)
    images = torch.rand(2, 3, 40, 52)
    out = method.colorize(images, raw=False)
    assert out.shape == (2, 3, 40, 52) and out.min() >= 0 and out.max() <= 1


def test_uresnet_sal_trains_with_both_critics(saliency_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = _command("uresnet-sal", saliency_dir, run, "--option", "widths=(4,4,8,8)", "--stage1-epochs", "0",
                    "--stop-after-steps", "1", "--no-perceptual", "--sample-count", "0")  # fmt: skip
    assert main(args) == 0
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["generator_spec"]["options"] == {"widths": [4, 4, 8, 8]}
    assert ckpt["step"] == 1 and ckpt["stage"] == 2
    for key in ("d_c", "d_a"):
        assert ckpt["optimizers"][key]["state"], key  # both critics were stepped
    # The stored build options rebuild the network (lists back to the tuples the builder takes).
    from baselines.train import read_build_options, trained_size

    assert read_build_options(run / "checkpoint.pt") == {"widths": (4, 4, 8, 8)}
    assert trained_size(run / "checkpoint.pt") == 64
    # Resuming a run as another baseline is refused.
    assert main(["train-baseline", "pix2pix-sal", "--out", str(run), "--resume", "--quiet"]) == 2
    assert "trained baseline uresnet-sal, not pix2pix-sal" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pix2pix", "--saliency", "s", "--stage2-epochs", "3"], "--saliency: not an option of pix2pix"),
        (["zhang-eccv16", "--w-gan", "1"], "--w-gan: not an option of zhang-eccv16"),
        (["pix2pix-sal"], "--saliency is required"),
        (["pix2pix-sal", "--saliency", "{sal}", "--option", "num_downs=7", "--option", "ngf=2"],
         r"cannot take the 64x64 input of --preset scgan-tiny"),
        (["pix2pix-sal", "--saliency", "{sal}", "--option", "width=3"],
         "--option width: not a build option of pix2pix-sal"),
        (["pix2pix-sal", "--saliency", "{sal}", "--global-init", "g.pt"],
         r"--global-init g\.pt: .* injected generator baseline:pix2pix-sal .* has no global feature network"),
        (["pix2pix-sal", "--saliency", "{sal}", "--no-global"], "--no-global: pix2pix-sal has no global feature"),
    ],
)
def test_train_baseline_argument_errors(argv, message, saliency_dir, tmp_path, capsys):
    argv = [a.replace("{sal}", str(saliency_dir)) for a in argv]
    args = ["train-baseline", *argv, "--data", "samples", "--out", str(tmp_path / "run"), "--preset", "scgan-tiny",
            "--batch-size", "2", "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    import re

    assert re.search(message, err), err


def test_torchrun_two_ranks_without_attention(tmp_path):
    """DDP (gloo, 2 processes) with an injected generator whose saliency head gets no gradient (--no-attention):
    the trainer tells DDP so (find_unused_parameters), otherwise the second step fails."""
    import os
    import subprocess
    import sys

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    run = tmp_path / "run"
    args = ["train-baseline", "uresnet-sal", "--data", "samples", "--out", str(run), "--preset", "scgan-tiny",
            "--option", "widths=(4,4,8,8)", "--no-attention", "--no-perceptual", "--batch-size", "2",
            "--stage1-epochs", "1", "--stage2-epochs", "1", "--stop-after-steps", "4", "--sample-count", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "scgan.cli", *args],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 4 and ckpt["stage"] == 2 and ckpt["discriminator_a"] is None
    assert ckpt["generator_spec"]["name"] == "uresnet-sal"
