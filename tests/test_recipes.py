"""bench/recipes: every planned command parses with the real `scgan` parser (no misspelt or retired flag), every run
of the comparison sees the same images, and a rerun of a started run resumes it."""

from __future__ import annotations

from pathlib import Path

from bench.recipes import recipe
from scgan.cli import build_parser
from scgan.training.flags import given_fields


def _photos(folder: Path, count: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        # distinct names across folders, as in ../shared/data: the list file names its photos by file name
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200)).save(folder / f"{folder.name}-{i}.png")


def test_every_step_is_a_valid_scgan_command_with_one_budget(tmp_path):
    for folder, count in zip(recipe.TRAIN_FOLDERS, (6, 5)):
        _photos(tmp_path / "data" / folder, count)
    paths = recipe.Paths(tmp_path / "data", tmp_path / "u2netp.onnx", tmp_path / "runs", tmp_path / "weights")
    recipe.write_train_list(paths)
    assert len(paths.train_list.read_text().splitlines()) == 1 + 11
    assert recipe.stage1_steps(paths) == recipe.STAGE1_EPOCHS * (11 // recipe.BATCH)
    plan = recipe.steps(paths)
    parser = build_parser()
    trained = {}
    for name, commands in plan.items():
        for arguments in commands:
            args = parser.parse_args(arguments)  # SystemExit on any unknown flag
            if arguments[0] in ("train", "train-baseline") and not args.resume:
                trained[name] = args
    epochs = {name: args.stage1_epochs + args.stage2_epochs if args.command == "train" else args.stage2_epochs
              for name, args in trained.items()}
    assert set(epochs.values()) == {recipe.EPOCHS} and len(epochs) == 5  # 3 SCGAN runs + 2 baselines
    assert {(args.batch_size, args.preset, args.data) for args in trained.values()} == {
        (recipe.BATCH, recipe.PRESET, str(paths.train_list))}
    given = {field for args in trained.values() for _, field in given_fields(args)}
    assert not [f for f in given if f.startswith("w_") or f.startswith("gp_")]  # the trainer's loss weights
    assert [a for a in plan["ship"][0] if a.startswith("--")][:2] == ["--name", "--replace"]
    assert plan["scgan-stage1"][0][-2:] == ["--stop-after-steps", str(recipe.stage1_steps(paths))]

    (paths.runs / "scgan").mkdir(parents=True)
    (paths.runs / "scgan" / "checkpoint.pt").write_bytes(b"")
    resumed = recipe.steps(paths)["scgan-stage1"][0]
    assert resumed[:4] == ["train", "--out", str(paths.runs / "scgan"), "--resume"]


def test_the_shipped_models_fit_the_package_limits():
    # fp16 weights: 2 bytes per parameter (SCGAN without its frozen backbone), against 12 MiB per file, 25 in all.
    import dataclasses

    from baselines.registry import get_architecture
    from scgan import shipped
    from scgan.config import get_config
    from scgan.model import build_generator
    from scgan.training import TrainConfig

    config = dataclasses.replace(get_config(recipe.PRESET), global_backbone=TrainConfig().global_backbone)
    state = build_generator(config).state_dict()
    assert any(k.startswith(shipped.FROZEN_PREFIX) for k in state)  # the trainer's default: a frozen backbone
    scgan_params = sum(v.numel() for k, v in state.items() if not k.startswith(shipped.FROZEN_PREFIX))
    sizes = [2 * scgan_params] * len(recipe.SCGAN_RUNS)
    for _, name, options in recipe.BASELINE_RUNS:
        build = {k: float(v) if "." in v else int(v) for k, v in (option.split("=") for option in options)}
        sizes.append(2 * sum(v.numel() for v in get_architecture(name).build(**build).state_dict().values()))
    assert max(sizes) < shipped.MAX_FILE_BYTES and sum(sizes) < 0.8 * shipped.MAX_TOTAL_BYTES  # ~18.3 MiB
