"""The two-stage trainer on the embedded sample photos with the tiny preset: steps, overfit, resume, NaN stop, DDP.

Longer than 500 lines for one reason: the runs share one module-scoped set of saliency maps (the ``saliency_dir``
fixture, the slow part) and the ``tiny`` config helper; in several modules each would compute its own maps.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import scgan.training.scgan_method as scgan_method_module
from scgan.checkpoint import load_checkpoint, load_generator
from scgan.cli import main
from scgan.errors import InputError
from scgan.saliency import generate_saliency_maps
from scgan.saliency_detectors import SpectralResidualDetector
from scgan.training import TrainConfig, Trainer, TrainingDiverged, step_random, train

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def saliency_dir(tmp_path_factory) -> Path:
    """Spectral-residual maps of the six sample photos, at 64 px (the tiny preset's size)."""
    from scgan.data import list_images

    out = tmp_path_factory.mktemp("saliency")
    generate_saliency_maps(list_images("samples"), out, SpectralResidualDetector(), size=64, progress=False)
    return out


def tiny(saliency_dir: Path, out: Path, **changes) -> TrainConfig:
    """Tiny preset, batch 2 (3 steps per epoch on the 6 samples), no perceptual network unless asked."""
    settings = dict(
        data="samples", saliency=str(saliency_dir), out=str(out), preset="scgan-tiny", global_init="none",
        global_backbone="vgg16-gray", batch_size=2, stage1_epochs=1, stage2_epochs=1, perceptual="none", sample_count=2,
    )  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)


def read_losses(run: Path) -> list[dict[str, str]]:
    with open(run / "losses.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_config_defaults_are_the_paper_recipe_but_the_documented_deviations():
    cfg = TrainConfig()
    assert (cfg.stage1_epochs, cfg.stage2_epochs, cfg.batch_size) == (10, 30, 8)
    assert (cfg.lr_stage1, cfg.lr_g, cfg.lr_d, cfg.betas) == (2e-4, 1e-4, 1e-4, (0.5, 0.999))
    assert (cfg.lr_decay_every, cfg.lr_decay_factor, cfg.d_steps) == (10, 0.5, 1)
    assert (cfg.w_reconstruction, cfg.w_attention, cfg.w_gan, cfg.gp_weight) == (1, 0.5, 0.05, 10)
    # Deviations (docs/training.md, "Deviations from the paper"): the calibrated perceptual weight for the
    # EfficientNet-Lite0 features (the paper's 5 with VGG-16), the penalty on the mean patch score, the global backbone.
    assert cfg.resolved().w_perceptual == 0.03 and TrainConfig(perceptual="vgg16:v.pth").resolved().w_perceptual == 5
    assert (cfg.gp_reduction, cfg.global_backbone) == ("mean", "efficientnet-lite0")
    assert (cfg.input_noise, cfg.gan, cfg.reconstruction) == (0.005, "wgan-gp", "l1")
    assert cfg.perceptual == "efficientnet-lite0"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="gan must be"):
        TrainConfig(gan="hinge")
    with pytest.raises(InputError, match="loss weights"):
        TrainConfig(w_gan=-0.05)
    with pytest.raises(InputError, match="version 99"):
        TrainConfig.from_dict({**cfg.to_dict(), "version": 99})
    with pytest.raises(InputError, match="unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "lr": 1.0})


def test_both_stages_run_and_log(saliency_dir, tmp_path):
    """A few steps of each stage with everything on (both critics, gradient penalty, EfficientNet perceptual)."""
    run = tmp_path / "run"
    result = train(tiny(saliency_dir, run, perceptual="efficientnet-lite0"), progress=False)
    assert result.finished and result.step == 6 and result.epoch == 2
    rows = read_losses(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["stage"] for r in rows] == ["1"] * 3 + ["2"] * 3
    for row in rows:
        assert float(row["lr_g"]) == (2e-4 if row["stage"] == "1" else 1e-4)
        for key in ("g_total", "reconstruction", "attention"):
            assert torch.isfinite(torch.tensor(float(row[key])))
    for row in rows[3:]:
        for key in ("gan", "perceptual", "d_c", "d_a", "gp_c", "gp_a"):
            assert row[key] != "" and torch.isfinite(torch.tensor(float(row[key]))), key
        assert float(row["lr_d"]) == 1e-4
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["stage1_epoch001.png", "stage2_epoch002.png"]
    from PIL import Image

    with Image.open(run / "samples" / "stage2_epoch002.png") as grid:
        assert grid.size == (4 * 64, 2 * 64)  # gray | prediction | saliency | ground truth, two images
    # The checkpoint holds everything and is what `scgan colorize --model` loads.
    ckpt = load_checkpoint(run / "checkpoint.pt")
    for key in ("discriminator_c", "discriminator_a", "train_config", "optimizers", "schedulers", "epoch", "rng"):
        assert key in ckpt
    assert set(ckpt["optimizers"]) == {"g", "d_c", "d_a"} and ckpt["rng"]["python"]
    generator, _ = load_generator(run / "checkpoint.pt")
    assert not generator.training


def test_stage1_l1_falls_when_overfitting(saliency_dir, tmp_path):
    cfg = tiny(saliency_dir, tmp_path / "run", stage1_epochs=1, stage2_epochs=0, lr_stage1=2e-3, sample_count=0)
    trainer = Trainer(cfg, progress=False)
    trainer.train_mode()
    rgb, sal = map(torch.stack, zip(*(trainer.dataset[i] for i in range(2))))
    l1 = []
    for step in range(25):
        draws = step_random(cfg.seed, step, 2, 64, slice(0, 2))
        l1.append(trainer.train_step(rgb, sal, draws)["reconstruction"])
    assert all(map(lambda v: v == v, l1))
    assert sum(l1[-3:]) / 3 < 0.6 * sum(l1[:3]) / 3, l1


def test_resume_reaches_the_same_weights(saliency_dir, tmp_path):
    """2 epochs (stage 1 then 2) straight vs killed mid-epoch 1, resumed, killed mid-epoch 2, resumed."""
    straight = tmp_path / "straight"
    train(tiny(saliency_dir, straight), progress=False)
    resumed = tmp_path / "resumed"
    assert not train(tiny(saliency_dir, resumed, stop_after_steps=2), progress=False).finished
    assert load_checkpoint(resumed / "checkpoint.pt")["epoch_step"] == 2
    assert not train(tiny(saliency_dir, resumed, stop_after_steps=5), resume=True, progress=False).finished
    # Resumed with a stop that is already behind it: no step at all (the state and the log stay as they are).
    assert train(tiny(saliency_dir, resumed, stop_after_steps=3), resume=True, progress=False).step == 5
    assert train(tiny(saliency_dir, resumed), resume=True, progress=False).finished
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in ("generator", "discriminator_c", "discriminator_a"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert a["step"] == b["step"] == 6
    assert read_losses(straight) == read_losses(resumed)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(saliency_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    calls = {"n": 0}
    real = scgan_method_module.reconstruction_loss

    def poisoned(pred, target, kind="l1"):
        calls["n"] += 1
        value = real(pred, target, kind)
        return value * float("nan") if calls["n"] == 5 else value

    monkeypatch.setattr(scgan_method_module, "reconstruction_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"at step 5 \(stage 2, epoch 2\).*checkpoint kept"):
        train(tiny(saliency_dir, run), progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 3 and ckpt["epoch"] == 1  # the end-of-epoch-1 checkpoint, not the poisoned state
    assert all(torch.isfinite(v).all() for v in ckpt["generator"].values() if v.is_floating_point())


def test_missing_saliency_map_names_the_file(saliency_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(saliency_dir, partial)
    (partial / "coffee.png").unlink()
    with pytest.raises(InputError, match="coffee.png"):
        Trainer(tiny(saliency_dir, tmp_path / "run", saliency=str(partial)), progress=False)


def test_global_init_required_and_loaded(saliency_dir, tmp_path):
    with pytest.raises(InputError, match="--global-init is required"):
        Trainer(tiny(saliency_dir, tmp_path / "run", global_init=""), build_data=False)
    from scgan.checkpoint import save_global_features
    from scgan.model import build_global_features

    torch.manual_seed(3)
    net = build_global_features("scgan-tiny")
    path = save_global_features(tmp_path / "global.pt", net, "scgan-tiny", source="test")
    trainer = Trainer(tiny(saliency_dir, tmp_path / "run", global_init=str(path)), build_data=False)
    for key, value in net.state_dict().items():
        assert torch.equal(trainer.generator.global_features.state_dict()[key], value)
    assert "test" in trainer.global_init_source


ABLATIONS = {
    "--no-attention": dict(attention=False),
    "--no-gan": dict(gan="none"),
    "--no-perceptual": dict(perceptual="none"),
    "--lsgan": dict(gan="lsgan"),
    "--l2": dict(reconstruction="l2"),
    "--no-global": dict(global_features=False),
    "--random-global": dict(global_init="none"),
}


@pytest.mark.parametrize("flag", list(ABLATIONS))
def test_each_table2_ablation_is_one_flag_and_trains(flag, saliency_dir, tmp_path):
    from scgan.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--data", "samples", "--saliency", "s", "--out", "o", "--preset", "scgan-tiny", flag,
         "--global-backbone", "vgg16-gray"]
        + ([] if flag in ("--random-global", "--no-global") else ["--global-init", "none"])
    )
    from scgan.commands.train import config_from_args

    cfg = config_from_args(args)
    for key, value in ABLATIONS[flag].items():
        assert getattr(cfg, key) == value, (flag, key)
    settings = {k: v for k, v in cfg.to_dict().items() if k != "version"}
    # (The parsed --out "o" would be created in the working directory: the run folder goes to tmp_path.)
    cfg = TrainConfig(**{**settings, "stage1_epochs": 0, "stage2_epochs": 1, "batch_size": 2,
                         "out": str(tmp_path / "run")})
    trainer = Trainer(cfg, build_data=False, progress=False)
    assert (trainer.generator.saliency_branch is None) == (not cfg.attention)
    assert (trainer.generator.global_features is None) == (not cfg.global_features)
    assert (trainer.disc_c is None) == (cfg.gan == "none")
    assert (trainer.disc_a is None) == (cfg.gan == "none" or not cfg.attention)
    trainer.train_mode()
    torch.manual_seed(0)
    logs = trainer.train_step(torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64), step_random(0, 0, 2, 64, slice(0, 2)))
    assert all(v == v and abs(v) != float("inf") for v in logs.values()), logs
    assert ("gan" in logs) == (cfg.gan != "none") and ("gp_c" in logs) == (cfg.gan == "wgan-gp")
    assert ("perceptual" in logs) == (cfg.perceptual != "none") and ("attention" in logs) == cfg.attention


@pytest.mark.parametrize("option", [dict(amp="bf16"), dict(channels_last=True)])
def test_bf16_autocast_and_channels_last_step_on_cpu(option, saliency_dir, tmp_path):
    cfg = tiny(saliency_dir, tmp_path / "run", stage1_epochs=0, stage2_epochs=1, **option)
    trainer = Trainer(cfg, build_data=False, progress=False)
    trainer.train_mode()
    seen = []
    trainer.generator.register_forward_hook(lambda module, inputs, outputs: seen.append((inputs[0], outputs[0])))
    logs = trainer.train_step(torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64), step_random(0, 0, 2, 64, slice(0, 2)))
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    ((_, rgb),) = seen
    # The option really took effect: bf16 activations under autocast; channels_last weights.
    assert rgb.dtype == (torch.bfloat16 if cfg.amp == "bf16" else torch.float32)
    convs = [p for net in (trainer.generator, trainer.disc_c, trainer.disc_a) for p in net.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs) == cfg.channels_last


def test_train_command_and_resume(saliency_dir, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--data", "samples", "--saliency", str(saliency_dir), "--out", str(run), "--preset", "scgan-tiny",
            "--global-init", "none", "--global-backbone", "vgg16-gray",
            "--batch-size", "3", "--stage1-epochs", "1", "--stage2-epochs", "1",
            "--no-perceptual", "--quiet"]  # fmt: skip
    assert main(base + ["--stop-after-steps", "2"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--resume", "--stage2-epochs", "5", "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "finished after 2 epoch(s), 4 step(s)" in printed.out  # the stored schedule, not --stage2-epochs 5
    # regression: --resume silently dropped changed trainer options; it now says which ones it ignores
    assert "--resume continues with the run's stored settings; ignored: --stage2-epochs" in printed.err
    assert main(["train", "--data", "samples", "--saliency", str(saliency_dir), "--out", str(tmp_path / "x"),
                 "--preset", "scgan-tiny", "--global-backbone", "vgg16-gray", "--quiet"]) == 2  # fmt: skip
    assert "--global-init is required with --global-backbone vgg16-gray" in capsys.readouterr().err


def test_out_that_is_a_file_is_a_clear_error(saliency_dir, tmp_path, capsys):
    # regression: --out naming an existing file ended in a FileExistsError traceback
    (tmp_path / "afile").write_text("x")
    assert main(["train", "--data", "samples", "--saliency", str(saliency_dir), "--out", str(tmp_path / "afile"),
                 "--preset", "scgan-tiny", "--global-init", "none", "--global-backbone", "vgg16-gray",
                 "--quiet"]) == 2  # fmt: skip
    assert "afile: exists and is not a folder (the run folder)" in capsys.readouterr().err


def test_help_says_when_global_init_is_required(capsys):
    # regression: `scgan train --help` showed --global-init as optional although a run without it stops
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "required with --global-backbone vgg16-gray unless --resume or --no-global" in printed
    assert "[not the paper's: the paper uses vgg16-gray]" in printed
    assert "--kernels {auto,triton,reference} fused attention-loss/GP kernels" in printed  # it had no help at all


def _torchrun(args: list[str]) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "scgan.cli", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("d_steps", [1, 2])
def test_ddp_two_ranks_equal_one_process(d_steps, saliency_dir, tmp_path):
    """torchrun, gloo, 2 processes with 2 images each == 1 process with 4 images: the first stage-2 update.

    BatchNorm in eval mode (running statistics) makes the networks batch-size independent; noise and the gradient
    penalty's interpolation weights are drawn for the global batch and sliced per rank, so they agree too; with
    --d-steps 2 so are the second critic update's fresh real batch, its fake and its interpolation weights.
    """
    common = ["train", "--data", "samples", "--saliency", str(saliency_dir), "--preset", "scgan-tiny",
              "--global-init", "none", "--global-backbone", "vgg16-gray",
              "--batch-size", "4", "--stage1-epochs", "0", "--stage2-epochs", "1",
              "--stop-after-steps", "1", "--batchnorm", "eval", "--sample-count", "0", "--quiet",
              "--d-steps", str(d_steps)]  # fmt: skip
    assert main(common + ["--out", str(tmp_path / "single")]) == 0
    _torchrun(common + ["--out", str(tmp_path / "ddp")])
    single = load_checkpoint(tmp_path / "single" / "checkpoint.pt")
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ddp["step"] == single["step"] == 1
    for key in ("generator", "discriminator_c", "discriminator_a"):
        for name, value in single[key].items():
            # Adam's first step is ~lr * sign(grad): a float-rounding difference in a near-zero gradient moves a
            # weight by a fraction of lr (1e-4), so weights are compared at 1e-5 and the gradients (Adam's first
            # moment = (1 - beta1) * grad) tightly below.
            torch.testing.assert_close(ddp[key][name], value, atol=1e-5, rtol=0, msg=f"{key}.{name}")
    for opt in ("g", "d_c", "d_a"):
        for pid, state in single["optimizers"][opt]["state"].items():
            other = ddp["optimizers"][opt]["state"][pid]
            scale = float(state["exp_avg"].abs().max())
            assert float((other["exp_avg"] - state["exp_avg"]).abs().max()) <= 1e-4 * scale + 1e-12, (opt, pid)
    for opt in ("g", "d_c", "d_a"):  # a real update happened: every network got non-zero gradients
        assert any(state["exp_avg"].abs().max() > 0 for state in single["optimizers"][opt]["state"].values()), opt


def test_triton_kernels_give_the_reference_step(saliency_dir, tmp_path):
    """One full stage-2 step with the fused kernels (CPU interpreter here) and with the reference: same losses."""
    import kernels

    if not (kernels.HAS_TRITON and (kernels.INTERPRET or torch.cuda.is_available())):
        pytest.skip("Triton kernels cannot run here (no CUDA device and no TRITON_INTERPRET=1)")
    logs = {}
    for backend in ("reference", "triton"):
        cfg = tiny(saliency_dir, tmp_path / backend, stage1_epochs=0, stage2_epochs=1, kernels=backend)
        trainer = Trainer(cfg, build_data=False, progress=False)
        assert trainer.ops.name == backend
        trainer.train_mode()
        torch.manual_seed(0)
        rgb, sal = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
        logs[backend] = [trainer.train_step(rgb, sal, step_random(0, s, 2, 64, slice(0, 2))) for s in range(2)]
    for ref, fused in zip(logs["reference"], logs["triton"]):
        assert ref.keys() == fused.keys()
        for key in ref:
            assert fused[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-5), key


def test_command_modules_build_their_parsers_without_torch():
    """`scgan --help` stays fast: the four training commands' add_arguments import no torch."""
    code = (
        "import argparse, sys\n"
        "import scgan.commands.train as t, scgan.commands.pretrain_global as p, scgan.commands.saliency as s\n"
        "import baselines.commands.train_baseline as b\n"
        "for m in (t, p, s, b):\n"
        "    m.add_arguments(argparse.ArgumentParser())\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_stage2_lr_halves_on_schedule_and_existing_run_is_protected(saliency_dir, tmp_path):
    run = tmp_path / "run"
    cfg = tiny(saliency_dir, run, stage1_epochs=0, stage2_epochs=2, lr_decay_every=1, sample_count=0, gan="lsgan")
    train(cfg, progress=False)
    rows = read_losses(run)
    assert [float(r["lr_g"]) for r in rows] == [1e-4] * 3 + [5e-5] * 3
    assert [float(r["lr_d"]) for r in rows] == [1e-4] * 3 + [5e-5] * 3
    with pytest.raises(InputError, match="--resume"):
        train(cfg, progress=False)
    with pytest.raises(InputError, match="larger than the data set"):
        Trainer(tiny(saliency_dir, tmp_path / "big", batch_size=7), progress=False)


def _record_calls(module: torch.nn.Module, calls: list) -> None:
    """Make ``module`` record the (gray, rgb) inputs of every call (detached copies)."""
    forward = module.forward

    def recording(gray, rgb):
        calls.append((gray.detach().clone(), rgb.detach().clone()))
        return forward(gray, rgb)

    module.forward = recording


def test_step_wiring_is_the_paper_recipe(saliency_dir, tmp_path):
    """What each network sees, how often, and how the losses are weighted, in a stage-2 and a stage-1 step.

    Stage 2: G gets gray + 0.005 * noise; D_c judges the colour image vs G_c(x), D_a judges c * s vs G_c(x) * G_s(x),
    both with the clean gray concatenated; one critic update (real, fake, penalty point) per generator update, then one
    scoring of the prediction for G; g_total = L1 + 0.5 attention + 0.05 GAN + 5 perceptual. Stage 1: no critic,
    g_total = L1 + 0.5 attention, Adam lr 2e-4 betas (0.5, 0.999).
    """
    from metrics.color import rgb_to_gray

    # The paper's perceptual weight (its VGG-16 value; the EfficientNet default is calibrated lower).
    trainer = Trainer(tiny(saliency_dir, tmp_path / "run", stage1_epochs=1, stage2_epochs=1, w_perceptual=5.0),
                      build_data=False)
    trainer.method.perceptual = lambda pred, target: (pred - target).pow(2).mean()  # a cheap stand-in network
    seen = {"g": [], "d_c": [], "d_a": []}
    trainer.generator.register_forward_hook(
        lambda module, inputs, outputs: seen["g"].append((inputs[0].detach().clone(), *(o.detach() for o in outputs)))
    )
    _record_calls(trainer.disc_c, seen["d_c"])
    _record_calls(trainer.disc_a, seen["d_a"])
    torch.manual_seed(5)
    rgb01, sal = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    draws = step_random(0, 7, 2, 64, slice(0, 2))
    gray, rgb = rgb_to_gray(rgb01) * 2 - 1, rgb01 * 2 - 1

    trainer.stage = 2
    trainer._make_optimisers(2)
    trainer.train_mode()
    logs = trainer.train_step(rgb01, sal, draws)
    (g_input, pred, pred_sal), = seen["g"]
    torch.testing.assert_close(g_input, gray + 0.005 * draws["noise"])
    for key, real, fake, eps in (("d_c", rgb, pred, draws["eps_c"]),
                                 ("d_a", rgb * sal, pred * pred_sal, draws["eps_a"])):  # fmt: skip
        calls = seen[key]
        assert len(calls) == 4, key  # critic: real, fake, penalty point; then the generator's term
        for call_gray, _ in calls:
            torch.testing.assert_close(call_gray, gray)
        eps = eps.view(-1, 1, 1, 1)
        for (_, got), want in zip(calls, (real, fake, eps * real + (1 - eps) * fake, fake)):
            torch.testing.assert_close(got, want, msg=key)
    weighted = logs["reconstruction"] + 0.5 * logs["attention"] + 0.05 * logs["gan"] + 5 * logs["perceptual"]
    assert logs["g_total"] == pytest.approx(weighted, rel=1e-5)
    # The critics' weights were frozen only while they scored the prediction for the generator.
    assert all(p.requires_grad for net in (trainer.disc_c, trainer.disc_a) for p in net.parameters())
    for opt, lr in ((trainer.opt_g, 1e-4), (trainer.opt_d["d_c"], 1e-4), (trainer.opt_d["d_a"], 1e-4)):
        assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["betas"] == (0.5, 0.999)

    trainer.stage = 1
    trainer._make_optimisers(1)
    trainer.train_mode()
    logs = trainer.train_step(rgb01, sal, draws)
    assert len(seen["d_c"]) == len(seen["d_a"]) == 4 and "gan" not in logs and "perceptual" not in logs
    assert logs["g_total"] == pytest.approx(logs["reconstruction"] + 0.5 * logs["attention"], rel=1e-6)
    assert trainer.opt_g.param_groups[0]["lr"] == 2e-4 and not trainer.opt_d


def test_images_that_would_share_a_saliency_map_are_an_error(saliency_dir, tmp_path):
    from scgan.data import list_images

    photos = tmp_path / "photos"
    photos.mkdir()
    samples = {e.name: e.path for e in list_images("samples")}
    shutil.copy(samples["coffee.png"], photos / "a.png")
    shutil.copy(samples["rocket.jpg"], photos / "a.jpg")
    with pytest.raises(InputError, match=r"a\.jpg and a\.png -> a\.png"):
        generate_saliency_maps(list_images(photos), tmp_path / "sal", SpectralResidualDetector(), progress=False)
    assert not (tmp_path / "sal").exists()
    (tmp_path / "sal").mkdir()
    shutil.copy(saliency_dir / "coffee.png", tmp_path / "sal" / "a.png")
    with pytest.raises(InputError, match="share a saliency map"):
        Trainer(tiny(saliency_dir, tmp_path / "run", data=str(photos), saliency=str(tmp_path / "sal")), progress=False)


def test_saliency_maps_required_only_with_the_attention_loss(saliency_dir, tmp_path):
    from scgan.cli import build_parser
    from scgan.commands.train import config_from_args

    with pytest.raises(InputError, match="--saliency is required"):
        Trainer(tiny(saliency_dir, tmp_path / "a", saliency=""), progress=False)
    with pytest.raises(InputError, match="--data is required"):
        Trainer(tiny(saliency_dir, tmp_path / "a", data=""), progress=False)
    base = ["train", "--data", "samples", "--out", "o", "--global-init", "none", "--global-backbone", "vgg16-gray"]
    with pytest.raises(InputError, match="--saliency is required"):
        config_from_args(build_parser().parse_args(base))
    cfg = config_from_args(build_parser().parse_args(base + ["--no-attention", "--preset", "scgan-tiny"]))
    trainer = Trainer(dataclasses.replace(cfg, out=str(tmp_path / "run"), batch_size=2, perceptual="none"),
                      progress=False)  # fmt: skip
    rgb, sal = trainer.dataset[0]
    assert rgb.shape == (3, 64, 64) and sal.shape == (1, 64, 64) and not sal.any()
    trainer.train_mode()
    assert "attention" not in trainer.train_step(rgb[None].repeat(2, 1, 1, 1), sal[None].repeat(2, 1, 1, 1),
                                                 step_random(0, 0, 2, 64, slice(0, 2)))  # fmt: skip


def test_every_recipe_setting_is_overridable_from_the_command_line():
    """Each TrainConfig field (bar exclude_gray: gray photos are never colour ground truth) has a flag that sets it."""
    from scgan.cli import build_parser
    from scgan.commands.train import config_from_args

    flags = {  # flag(s) -> (field, value it must produce)
        "--data d": ("data", "d"), "--saliency s": ("saliency", "s"), "--out o": ("out", "o"),
        "--labels l.csv": ("labels", "l.csv"),
        "--val-data v": ("val_data", "v"), "--val-count 5": ("val_count", 5),
        "--weight-decay 0.01": ("weight_decay", 0.01),
        "--policy crop256": ("policy", "crop256"), "--skip-bad": ("skip_bad", True),
        "--preset scgan-64": ("preset", "scgan-64"), "--global-init g.pt": ("global_init", "g.pt"),
        "--stage1-epochs 3": ("stage1_epochs", 3), "--stage2-epochs 4": ("stage2_epochs", 4),
        "--batch-size 6": ("batch_size", 6), "--lr-stage1 0.1": ("lr_stage1", 0.1), "--lr-g 0.2": ("lr_g", 0.2),
        "--lr-d 0.3": ("lr_d", 0.3), "--beta1 0.1 --beta2 0.2": ("betas", (0.1, 0.2)),
        "--lr-decay-every 2": ("lr_decay_every", 2), "--lr-decay-factor 0.25": ("lr_decay_factor", 0.25),
        "--d-steps 2": ("d_steps", 2), "--w-reconstruction 2": ("w_reconstruction", 2.0),
        "--w-attention 3": ("w_attention", 3.0), "--w-gan 4": ("w_gan", 4.0), "--w-perceptual 6": ("w_perceptual", 6.0),
        "--gp-weight 7": ("gp_weight", 7.0), "--input-noise 0.1": ("input_noise", 0.1),
        "--gp-reduction mean": ("gp_reduction", "mean"),
        "--global-backbone vgg16-gray": ("global_backbone", "vgg16-gray"),
        "--no-attention": ("attention", False), "--lsgan": ("gan", "lsgan"),
        "--perceptual vgg16:v.pth": ("perceptual", "vgg16:v.pth"), "--l2": ("reconstruction", "l2"),
        "--seed 9": ("seed", 9), "--kernels reference": ("kernels", "reference"), "--device cpu": ("device", "cpu"),
        "--amp bf16": ("amp", "bf16"),
        "--channels-last": ("channels_last", True), "--batchnorm eval": ("batchnorm", "eval"),
        "--workers 2": ("workers", 2), "--checkpoint-every 5": ("checkpoint_every", 5),
        "--stop-after-steps 8": ("stop_after_steps", 8), "--sample-count 1": ("sample_count", 1),
        "--no-global": ("global_features", False),
    }  # fmt: skip
    covered = {field for field, _ in flags.values()}
    assert covered == {f.name for f in dataclasses.fields(TrainConfig)} - {"exclude_gray"}
    # --no-global contradicts --global-init CKPT, so it gets a command line of its own.
    argv = ["train"] + " ".join(flag for flag in flags if flag != "--no-global").split()
    cfg = config_from_args(build_parser().parse_args(argv))
    for field, value in flags.values():
        if field != "global_features":
            assert getattr(cfg, field) == value, field
    argv = ["train", "--data", "d", "--saliency", "s", "--out", "o", "--no-global"]
    assert config_from_args(build_parser().parse_args(argv)).global_features is False


# ------------------------------------------------------------------------------------- injected generators
class TinySaliencyNet(torch.nn.Module):
    """A stand-in for a baseline with a saliency head: gray (N, 1, S, S) in [-1, 1] -> (rgb tanh, saliency sigmoid).

    Conv + BN + ReLU + dropout (stochastic: resume must still be exact), then one conv per output. ``stride=2`` makes
    its outputs half the input size (a generator that does not fit the preset)."""

    def __init__(self, width: int = 4, stride: int = 1, saliency: bool = True):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, stride=stride, padding=1), torch.nn.BatchNorm2d(width), torch.nn.ReLU(),
            torch.nn.Dropout(0.3),
        )  # fmt: skip
        self.rgb = torch.nn.Conv2d(width, 3, 3, padding=1)
        self.sal = torch.nn.Conv2d(width, 1, 3, padding=1) if saliency else None

    def forward(self, gray):
        x = self.body(gray)
        return torch.tanh(self.rgb(x)), (torch.sigmoid(self.sal(x)) if self.sal is not None else None)


TINY_SPEC = {"kind": "test", "name": "tiny-saliency-net", "options": {"width": 4}}


def tiny_net(seed: int = 0, **options) -> TinySaliencyNet:
    torch.manual_seed(seed)
    return TinySaliencyNet(**options)


def test_injected_generator_step_uses_its_saliency_and_both_critics(saliency_dir, tmp_path):
    net = tiny_net()
    trainer = Trainer(tiny(saliency_dir, tmp_path / "run", stage1_epochs=1, stage2_epochs=1), build_data=False,
                      generator=net, generator_spec=TINY_SPEC)  # fmt: skip
    assert trainer.generator is net and trainer.disc_c is not None and trainer.disc_a is not None
    assert "not applicable" in trainer.global_init_source
    seen = []
    net.register_forward_hook(lambda module, inputs, outputs: seen.append(tuple(o.detach() for o in outputs)))
    torch.manual_seed(5)
    rgb01, sal = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    rgb = rgb01 * 2 - 1
    trainer.train_mode()
    logs = trainer.train_step(rgb01, sal, step_random(0, 0, 2, 64, slice(0, 2)))  # stage 1
    ((pred, pred_sal),) = seen
    # The attention loss is computed from the injected network's own saliency output.
    want = (pred * pred_sal - rgb * sal).abs().mean()
    assert logs["attention"] == pytest.approx(float(want), rel=1e-5)
    assert "gan" not in logs and not trainer.opt_d

    trainer.stage = 2
    trainer._make_optimisers(2)
    trainer.train_mode()
    critics = {key: {k: v.clone() for k, v in net_.state_dict().items()}
               for key, net_ in (("d_c", trainer.disc_c), ("d_a", trainer.disc_a))}  # fmt: skip
    logs = trainer.train_step(rgb01, sal, step_random(0, 1, 2, 64, slice(0, 2)))
    for key in ("gan", "d_c", "d_a", "gp_c", "gp_a", "attention", "reconstruction"):
        assert key in logs and torch.isfinite(torch.tensor(logs[key])), key
    for key, net_ in (("d_c", trainer.disc_c), ("d_a", trainer.disc_a)):  # both critics were stepped
        assert trainer.opt_d[key].state, key
        before = critics[key]
        assert any(not torch.equal(v, before[n]) for n, v in net_.state_dict().items() if v.is_floating_point()), key


def test_injected_generator_trains_records_its_spec_and_is_refused_by_load_generator(saliency_dir, tmp_path):
    run = tmp_path / "run"
    result = train(tiny(saliency_dir, run), progress=False, generator=tiny_net(), generator_spec=TINY_SPEC)
    assert result.finished and result.step == 6
    rows = read_losses(run)
    for row in rows[3:]:
        for key in ("g_total", "attention", "gan", "d_c", "d_a", "gp_c", "gp_a"):
            assert torch.isfinite(torch.tensor(float(row[key]))), key
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["generator_spec"] == TINY_SPEC
    assert ckpt["generator"].keys() == TinySaliencyNet().state_dict().keys()
    import json

    assert json.loads((run / "train_config.json").read_text())["generator_spec"] == TINY_SPEC
    with pytest.raises(InputError, match=r"not an SCGAN generator.*test:tiny-saliency-net.*generator_spec"):
        load_generator(run / "checkpoint.pt")
    # A run of SCGAN's own generator records no spec.
    own = Trainer(tiny(saliency_dir, tmp_path / "own"), build_data=False)
    assert own.state()["generator_spec"] is None


def test_injected_generator_resume_reaches_the_same_weights(saliency_dir, tmp_path):
    """Straight vs killed mid-epoch 1 and resumed (with the generator re-injected): bit-identical weights, including
    the dropout masks (the torch generator is seeded per step)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny(saliency_dir, straight), progress=False, generator=tiny_net(), generator_spec=TINY_SPEC)
    train(tiny(saliency_dir, resumed, stop_after_steps=2), progress=False, generator=tiny_net(),
          generator_spec=TINY_SPEC)  # fmt: skip
    # Re-injected with a different initialisation: the checkpoint's weights replace it.
    result = train(tiny(saliency_dir, resumed), resume=True, progress=False, generator=tiny_net(seed=9),
                   generator_spec=TINY_SPEC)  # fmt: skip
    assert result.finished and result.step == 6
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in ("generator", "discriminator_c", "discriminator_a"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert read_losses(straight) == read_losses(resumed)
    # The resume must inject the same generator (spec), and SCGAN's own resume refuses the run.
    with pytest.raises(InputError, match="tiny-saliency-net.*but this resume has SCGAN's generator"):
        train(tiny(saliency_dir, resumed), resume=True, progress=False)
    other = {**TINY_SPEC, "options": {"width": 8}}
    with pytest.raises(InputError, match="'width': 4.*'width': 8"):
        train(tiny(saliency_dir, resumed), resume=True, progress=False, generator=tiny_net(width=8),
              generator_spec=other)  # fmt: skip
    plain = tmp_path / "scgan"
    train(tiny(saliency_dir, plain, stop_after_steps=1, sample_count=0), progress=False)
    with pytest.raises(InputError, match="trained with SCGAN's own generator"):
        train(tiny(saliency_dir, plain), resume=True, progress=False, generator=tiny_net(), generator_spec=TINY_SPEC)


def test_injected_generator_errors_are_clear(saliency_dir, tmp_path):
    cfg = tiny(saliency_dir, tmp_path / "run")
    with pytest.raises(InputError, match="needs a generator_spec"):
        Trainer(cfg, build_data=False, generator=tiny_net())
    with pytest.raises(InputError, match="pass the generator as well"):
        Trainer(cfg, build_data=False, generator_spec=TINY_SPEC)
    with pytest.raises(InputError, match="together with its generator_spec"):
        train(cfg, progress=False, generator=tiny_net())
    with pytest.raises(InputError, match="plain JSON"):
        Trainer(cfg, build_data=False, generator=tiny_net(), generator_spec={**TINY_SPEC, "options": {"x": object()}})
    with pytest.raises(InputError, match=r"--global-init g\.pt.*no global feature network"):
        Trainer(dataclasses.replace(cfg, global_init="g.pt"), build_data=False, generator=tiny_net(),
                generator_spec=TINY_SPEC)  # fmt: skip
    with pytest.raises(InputError, match=r"rgb of shape \(1, 3, 32, 32\).*scgan-tiny trains at 64x64"):
        Trainer(cfg, build_data=False, generator=tiny_net(stride=2), generator_spec=TINY_SPEC)
    with pytest.raises(InputError, match="no saliency map: the attention loss needs one"):
        Trainer(cfg, build_data=False, generator=tiny_net(saliency=False), generator_spec=TINY_SPEC)
    # Without the attention loss a generator without saliency trains (no D_a).
    trainer = Trainer(dataclasses.replace(cfg, attention=False), build_data=False, generator=tiny_net(saliency=False),
                      generator_spec=TINY_SPEC)  # fmt: skip
    assert trainer.disc_a is None


# --------------------------------------------------------------------------------------------------- --d-steps
def test_each_critic_step_draws_a_fresh_real_fake_and_interpolation(saliency_dir, tmp_path):
    """--d-steps 3: critic update 0 uses the step's batch; updates 1 and 2 each a fresh real batch (the training-set
    indices of ``critic_random``), its fake and fresh interpolation weights; the generator is scored once after."""
    from metrics.color import rgb_to_gray
    from scgan.training import critic_random
    from scgan.training.data import collate

    cfg = tiny(saliency_dir, tmp_path / "run", stage1_epochs=0, stage2_epochs=1, d_steps=3, batch_size=2)
    trainer = Trainer(cfg, progress=False)
    calls = []
    _record_calls(trainer.disc_c, calls)
    trainer.train_mode()
    rgb01, sal = collate(trainer.dataset, [0, 1])
    draws = step_random(cfg.seed, 0, 2, 64, slice(0, 2))
    trainer.train_step(rgb01, sal, draws)
    assert len(calls) == 3 * 3 + 1  # (real, fake, penalty point) per critic update, then the generator's term
    updates = [calls[3 * k : 3 * k + 3] for k in range(3)]
    reals = [update[0][1] for update in updates]
    fakes = [update[1][1] for update in updates]
    torch.testing.assert_close(reals[0], rgb01 * 2 - 1)
    for k in (1, 2):
        want = critic_random(cfg.seed, 0, k, len(trainer.dataset), 2, 64, slice(0, 2))
        real_k, _ = collate(trainer.dataset, want["indices"].tolist())
        torch.testing.assert_close(reals[k], real_k * 2 - 1)
        torch.testing.assert_close(updates[k][0][0], rgb_to_gray(real_k) * 2 - 1)  # the clean gray of that batch
        eps = want["eps_c"].view(-1, 1, 1, 1)
        torch.testing.assert_close(updates[k][2][1], eps * reals[k] + (1 - eps) * fakes[k])
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not torch.equal(reals[a], reals[b]) and not torch.equal(fakes[a], fakes[b]), (a, b)
    eps0 = draws["eps_c"].view(-1, 1, 1, 1)
    torch.testing.assert_close(updates[0][2][1], eps0 * reals[0] + (1 - eps0) * fakes[0])
    assert not torch.equal(draws["eps_c"], critic_random(cfg.seed, 0, 1, 6, 2, 64, slice(0, 2))["eps_c"])
    # Seeded by (seed, step, critic update): another step draws other batches; a rank takes its slice of the same.
    assert not torch.equal(critic_random(0, 0, 1, 6, 2, 64, slice(0, 2))["indices"],
                           critic_random(0, 1, 1, 6, 2, 64, slice(0, 2))["indices"])  # fmt: skip
    whole = critic_random(0, 3, 1, 6, 4, 64, slice(0, 4))
    for rank in (0, 1):
        part = critic_random(0, 3, 1, 6, 4, 64, slice(2 * rank, 2 * rank + 2))
        for key in whole:
            assert torch.equal(part[key], whole[key][2 * rank : 2 * rank + 2]), key


def test_resume_with_several_critic_steps_reaches_the_same_weights(saliency_dir, tmp_path):
    settings = dict(stage1_epochs=0, stage2_epochs=1, d_steps=2, sample_count=0)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny(saliency_dir, straight, **settings), progress=False)
    train(tiny(saliency_dir, resumed, stop_after_steps=1, **settings), progress=False)
    train(tiny(saliency_dir, resumed, **settings), resume=True, progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for key in ("generator", "discriminator_c", "discriminator_a"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert read_losses(straight) == read_losses(resumed)


def test_generated_flags_follow_the_field_metadata():
    """A field's metadata is its flag: help text, default, and the paper's value where the default differs."""
    import argparse
    from dataclasses import dataclass, fields

    from scgan.training.config import _opt
    from scgan.training.flags import _default_text, add_config_arguments, config_from_args, given_flags

    @dataclass
    class Example:
        w_perceptual: float = _opt(0.5, "perceptual loss weight", "loss weights", paper=5.0)
        w_other: float = _opt(5.0, "other weight", "loss weights", paper=5.0)

    # Every TrainConfig field declares its flag (or cli=False): a field without metadata would get no flag silently.
    assert all("help" in f.metadata and "group" in f.metadata for f in fields(TrainConfig))
    weight, other = fields(Example)
    assert _default_text(weight, Example(), frozenset(), "") == " (default: 0.5) [not the paper's: the paper uses 5.0]"
    assert _default_text(other, Example(), frozenset(), "") == " (default: 5.0)"
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TrainConfig())
    help_text = " ".join(parser.format_help().split())
    assert "--d-steps D_STEPS critic updates per generator update, each on a fresh real batch" in help_text
    assert "--beta2 BETA2 Adam betas (beta2) (default: 0.999)" in help_text
    args = parser.parse_args(["--out", "o", "--lsgan", "--beta2", "0.9"])
    assert given_flags(args) == ["--out", "--beta2", "--lsgan"]  # what --resume reports as ignored
    cfg = config_from_args(args, TrainConfig())
    assert (cfg.gan, cfg.betas, cfg.out, cfg.batch_size) == ("lsgan", (0.5, 0.9), "o", 8)
    with pytest.raises(InputError, match="--gan and --no-gan contradict each other"):
        config_from_args(parser.parse_args(["--out", "o", "--gan", "lsgan", "--no-gan"]), TrainConfig())
