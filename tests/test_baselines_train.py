"""Every baseline trains through the shared trainer (``scgan.training`` with a ``baselines.train`` method): one run
straight vs killed after one step and resumed is bit-identical (weights, optimisers, losses.csv), with the method's
state (Zhang et al.'s ab prior) in the checkpoint; the command line starts from each method's recipe."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from baselines.train import RECIPES, SupervisedMethod, recipe_config, train_baseline
from scgan.checkpoint import load_checkpoint
from scgan.cli import main
from scgan.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Small build options (the same structure) so that one step takes about a second on a CPU.
SMALL = {"pix2pix": {"num_downs": 5, "ngf": 8}, "iizuka": {"global_size": 32, "num_classes": 3},
         "zhang-eccv16": {}, "zhang-siggraph17": {}}  # fmt: skip


@pytest.fixture(scope="module")
def labels_csv(tmp_path_factory) -> Path:
    from scgan.data import list_images

    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    names = [e.name for e in list_images("samples")]
    path.write_text("file,label\n" + "".join(f"{n},{i % 3}\n" for i, n in enumerate(names)))
    return path


def _config(name: str, run: Path, labels_path: Path, **changes):
    extra = {"labels": str(labels_path)} if name == "iizuka" else {}
    # 6 samples, batch 3: 2 steps in the one epoch; 64 px.
    settings = dict(data="samples", out=str(run), preset="scgan-tiny", batch_size=3, stage2_epochs=1, sample_count=2)
    return recipe_config(name, **{**settings, **extra, **changes})


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "losses.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", list(SMALL))
def test_each_baseline_trains_checkpoints_and_resumes_bit_identically(name, labels_csv, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train_baseline(name, _config(name, straight, labels_csv), SMALL[name], progress=False)
    assert result.finished and result.step == 2
    assert not train_baseline(name, _config(name, resumed, labels_csv, stop_after_steps=1), SMALL[name],
                              progress=False).finished  # fmt: skip
    assert train_baseline(name, _config(name, resumed, labels_csv), resume=True, progress=False).finished
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a["generator_spec"] == {"kind": "baseline", "name": name, "options": {k: v for k, v in SMALL[name].items()}}
    assert a["networks"] == b["networks"] and a["step"] == b["step"] == 2 and a["stage"] == 2
    for key in a["networks"]:
        for param, value in a[key].items():
            assert torch.equal(value, b[key][param]), (key, param)
    for key, state in a["optimizers"].items():
        for pid, moments in state["state"].items():
            assert torch.equal(moments["exp_avg"], b["optimizers"][key]["state"][pid]["exp_avg"]), (key, pid)
    rows = _rows(straight)
    assert rows == _rows(resumed) and [r["step"] for r in rows] == ["1", "2"]
    for row in rows:
        for column in RECIPES_COLUMNS[name]:
            assert torch.isfinite(torch.tensor(float(row[column]))), column
        assert float(row["lr_g"]) == RECIPES[name].settings["lr_g"]
    assert (straight / "samples" / "stage2_epoch001.png").is_file()
    # What `scgan export --baseline NAME --weights` and load_method build from the run: the trained network, at 64 px.
    from baselines.export import build_baseline
    from baselines.registry import get_architecture
    from baselines.train import trained_size

    module, source, _ = build_baseline(name, straight / "checkpoint.pt")
    assert "trained with scgan-bench" in source and trained_size(straight / "checkpoint.pt") == 64
    arch = get_architecture(name)
    net = arch.build(**SMALL[name])
    arch.load_weights(net, a["generator"], released=False)
    gray = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(module(gray), arch.colorizer(net).eval()(gray), rtol=0, atol=0)
    if name == "zhang-eccv16":  # the prior was measured on the training photos and travels with the run
        prior = a["method_state"]["ab_prior"]
        assert prior.shape == (313,) and prior.sum().item() == pytest.approx(1.0) and (prior > 0).sum() > 3
        assert torch.equal(prior, b["method_state"]["ab_prior"])


RECIPES_COLUMNS = {"pix2pix": ("g_total", "l1", "gan", "d"), "zhang-eccv16": ("g_total", "cross_entropy"),
                   "zhang-siggraph17": ("g_total", "smooth_l1"), "iizuka": ("g_total", "mse_plus_class")}  # fmt: skip


def test_zhang_prior_is_the_training_photos_and_rebalances(labels_csv, tmp_path):
    """The stored prior equals ``ab_prior`` over the training set's images, and the loss uses its weights."""
    from baselines.losses import ab_prior, rebalancing_weights
    from scgan.training import Trainer

    method = SupervisedMethod("zhang-eccv16")
    trainer = Trainer(_config("zhang-eccv16", tmp_path / "run", labels_csv), progress=False, method=method)
    method.prepare(trainer)
    images = torch.stack([trainer.dataset[i][0] for i in range(len(trainer.dataset))])
    torch.testing.assert_close(method.state()["ab_prior"], ab_prior(images), rtol=0, atol=1e-12)
    torch.testing.assert_close(method.rebalance, rebalancing_weights(ab_prior(images)).float())


def test_pix2pix_critic_draws_differ_per_step(tmp_path, labels_csv):
    """--d-steps 3 for pix2pix: each discriminator update sees another real batch (fresh draws)."""
    from baselines.train import Pix2PixMethod
    from scgan.training import Trainer, step_random

    method = Pix2PixMethod("pix2pix", SMALL["pix2pix"])
    trainer = Trainer(_config("pix2pix", tmp_path / "run", labels_csv, d_steps=3), progress=False, method=method)
    seen = []
    trainer.networks["discriminator"].register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].detach()))
    trainer.train_mode()
    rgb = torch.stack([trainer.dataset[i][0] for i in range(3)])
    trainer.train_step(rgb, torch.zeros(3, 1, 64, 64), step_random(0, 0, 3, 64, slice(0, 3)))
    reals = [seen[i][:, 1:] for i in (0, 2, 4)]  # (real, fake) per update, then the generator's scoring
    assert len(seen) == 7
    assert not torch.equal(reals[0], reals[1]) and not torch.equal(reals[1], reals[2])


def test_command_uses_the_recipe_and_refuses_foreign_flags(tmp_path, capsys, labels_csv):
    run = tmp_path / "run"
    args = ["train-baseline", "iizuka", "--data", "samples", "--labels", str(labels_csv), "--out", str(run),
            "--preset", "scgan-tiny", "--batch-size", "3", "--stage2-epochs", "1", "--option", "global_size=32",
            "--option", "num_classes=3", "--stop-after-steps", "1", "--sample-count", "0", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "stopped" in capsys.readouterr().out
    stored = load_checkpoint(run / "checkpoint.pt")["train_config"]
    want = {**RECIPES["iizuka"].settings, "batch_size": 3, "stage2_epochs": 1}
    for key, value in want.items():
        assert stored[key] == (list(value) if isinstance(value, tuple) else value), key
    assert main(["train-baseline", "iizuka", "--out", str(run), "--resume", "--quiet"]) == 0
    assert "finished after 1 epoch(s), 2 step(s)" in capsys.readouterr().out
    for flag, value in (("--w-attention", "1"), ("--lsgan", None), ("--saliency", "s")):
        argv = ["train-baseline", "pix2pix", "--data", "samples", "--out", str(tmp_path / "x"), flag]
        assert main(argv + ([value] if value else [])) == 2
        assert f"{flag}: not an option of pix2pix" in capsys.readouterr().err
    with pytest.raises(InputError, match="--stage1-epochs 2: pix2pix has no stage 1"):
        train_baseline("pix2pix", _config("pix2pix", tmp_path / "y", labels_csv, stage1_epochs=2), SMALL["pix2pix"])
    with pytest.raises(InputError, match="--labels .*: pix2pix has no classification loss"):
        train_baseline("pix2pix", _config("pix2pix", tmp_path / "z", labels_csv, labels=str(labels_csv)),
                       SMALL["pix2pix"])  # fmt: skip
    with pytest.raises(InputError, match="iizuka needs at least 2 images per process"):
        train_baseline("iizuka", _config("iizuka", tmp_path / "w", labels_csv, batch_size=1), SMALL["iizuka"])


@pytest.mark.parametrize("name", ["pix2pix", "iizuka"])
def test_bf16_autocast_and_channels_last_apply_to_the_baselines(name, labels_csv, tmp_path):
    from baselines.train import build_method
    from scgan.training import Trainer, step_random

    cfg = _config(name, tmp_path / "run", labels_csv, amp="bf16", channels_last=True)
    trainer = Trainer(cfg, progress=False, method=build_method(name, SMALL[name], cfg.seed))
    outputs = []
    trainer.generator.register_forward_hook(lambda module, inputs, output: outputs.append(output))
    trainer.train_mode()
    rgb01, sal, *labels = (torch.stack(parts) for parts in zip(*(trainer.dataset[i] for i in range(3))))
    logs = trainer.train_step(rgb01, sal, step_random(0, 0, 3, 64, slice(0, 3)), *labels)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    first = outputs[0][0] if isinstance(outputs[0], tuple) else outputs[0]
    assert first.dtype == torch.bfloat16  # the networks really ran under autocast
    convs = [p for net in trainer.networks.values() for p in net.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
