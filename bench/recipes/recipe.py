"""The training recipe of the shipped models (issue 11): one subcommand per step, each an `scgan` command with its
exact flags, printed before it runs. Every step can be rerun: a finished step does nothing more (the trainer's
--resume, `scgan saliency` keeping existing maps, `scgan ship-weights --replace`).

    python -m bench.recipes.recipe plan                   # print every command, run nothing
    python -m bench.recipes.recipe all                    # every step in order
    python -m bench.recipes.recipe scgan-stage1           # one step (names: `plan`)

Paths are options (defaults relative to the repository root: ../shared/data, ../shared/models/u2netp.onnx,
runs/recipe; --weights-dir: where `ship` writes, default the package's scgan/weights).
Loss weights are not repeated here: every run uses the trainer's defaults (`scgan train --help`). README.md beside this
file gives the budget and the measured speeds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The budget of every run of one comparison: the same photos, input size (64-pixel preset), batch and epochs, so the
#: same number of images seen. SCGAN's epochs are split over its two stages; a one-stage baseline runs them all.
PRESET = "scgan-64"
BATCH = 4
STAGE1_EPOCHS = 5
STAGE2_EPOCHS = 15
EPOCHS = STAGE1_EPOCHS + STAGE2_EPOCHS
TRAIN_FOLDERS = ("imagenet-train-sample", "bsds-trainval")
EVAL_FOLDER = "imagenet-val-sample"
#: SCGAN runs: (shipped name, run folder, ablation flags).
SCGAN_RUNS = (
    ("scgan:mini", "scgan", []),
    ("scgan:mini-no-attention", "scgan-no-attention", ["--no-attention"]),
    ("scgan:mini-no-global", "scgan-no-global", ["--no-global"]),
)
#: Baseline runs: (shipped name, run folder = registry name, build options). At 64 px pix2pix's U-Net needs 6 downs
#: (unet_256's 8 would go below 1 pixel); the widths are cut so that every file fits the package (12 MiB each, 25 in
#: all: SCGAN-64 1.91 M values without its frozen backbone, pix2pix 1.83 M, Zhang et al. 2.03 M instead of 32 M).
BASELINE_RUNS = (
    ("pix2pix:mini", "pix2pix", ["num_downs=6", "ngf=16"]),
    ("zhang-eccv16:mini", "zhang-eccv16", ["width=0.25"]),
)


@dataclass(frozen=True)
class Paths:
    data: Path
    u2netp: Path
    runs: Path
    weights_dir: Path | None = None

    @property
    def train_list(self) -> Path:
        return self.runs / "train.txt"

    @property
    def saliency(self) -> Path:
        return self.runs / "saliency-u2netp"


def scgan_command() -> list[str]:
    """The `scgan` console script of the Python running this file."""
    return [str(Path(sys.executable).with_name("scgan"))]


def write_train_list(paths: Paths) -> None:
    """RUNS/train.txt: every photo of the training folders (absolute paths, sorted), the one --data of every run."""
    from scgan.data import list_images

    lines = [str(entry.path.resolve()) for folder in TRAIN_FOLDERS for entry in list_images(paths.data / folder)]
    paths.runs.mkdir(parents=True, exist_ok=True)
    text = "# training photos of bench/recipes: " + " + ".join(TRAIN_FOLDERS) + "\n" + "\n".join(lines) + "\n"
    if not paths.train_list.is_file() or paths.train_list.read_text() != text:
        paths.train_list.write_text(text)
    print(f"{paths.train_list}: {len(lines)} photos")


def stage1_steps(paths: Paths) -> int:
    """Global steps of stage 1: the trainer's steps per epoch (colour photos // batch) times its epochs."""
    from scgan.data import list_images

    return STAGE1_EPOCHS * (len(list_images(paths.train_list)) // BATCH)


def _common(paths: Paths, run: str) -> list[str]:
    return ["--data", str(paths.train_list), "--preset", PRESET, "--batch-size", str(BATCH), "--out",
            str(paths.runs / run)]


def _train(paths: Paths, head: list[str], run: str, fresh: list[str], plan: bool) -> list[str]:
    """``head`` (``train`` or ``train-baseline NAME``) with the ``fresh`` flags of a new run, or ``--out RUN
    --resume`` (the run's stored settings) once the run folder has its checkpoint."""
    if not plan and (paths.runs / run / "checkpoint.pt").is_file():
        return [*head, "--out", str(paths.runs / run), "--resume"]
    return [*head, *fresh]


def steps(paths: Paths, plan: bool = False) -> dict[str, list[list[str]]]:
    """Step name -> the commands it runs (argument lists after `scgan`). ``plan``: as a fresh run would (no
    checkpoint looked at; stage 1's step count shown as S1)."""
    result: dict[str, list[list[str]]] = {
        "saliency": [["saliency", "--data", str(paths.train_list), "--out", str(paths.saliency), "--model",
                      str(paths.u2netp), "--size", "64", "--policy", "squash256"]],
    }
    stage1 = "S1" if plan else str(stage1_steps(paths))
    for _, run, flags in SCGAN_RUNS:
        saliency = [] if "--no-attention" in flags else ["--saliency", str(paths.saliency)]
        fresh = [*_common(paths, run), *saliency, "--stage1-epochs", str(STAGE1_EPOCHS), "--stage2-epochs",
                 str(STAGE2_EPOCHS), *flags]
        # Stage 1 stops (resumably) at its last step; stage 2 resumes the run to its end.
        result[f"{run}-stage1"] = [[*_train(paths, ["train"], run, fresh, plan), "--stop-after-steps", stage1]]
        result[f"{run}-stage2"] = [["train", "--out", str(paths.runs / run), "--resume"]]
    for _, run, options in BASELINE_RUNS:
        fresh = [*_common(paths, run), "--stage2-epochs", str(EPOCHS)]
        fresh += [argument for option in options for argument in ("--option", option)]
        result[run] = [_train(paths, ["train-baseline", run], run, fresh, plan)]
    where = ["--weights-dir", str(paths.weights_dir)] if paths.weights_dir else []
    result["ship"] = [
        ["ship-weights", str(paths.runs / run / "checkpoint.pt"), "--name", name, "--replace", *where, "--recipe",
         f"python -m bench.recipes.recipe ({run})", "--budget", budget_text()]
        for name, run, *_ in (*SCGAN_RUNS, *BASELINE_RUNS)
    ]
    methods = ",".join(["gt", "gray", "tint"] + [name for name, *_ in (*SCGAN_RUNS, *BASELINE_RUNS)])
    evaluation = ["--data", str(paths.data / EVAL_FOLDER), "--labels", str(paths.data / EVAL_FOLDER / "labels.csv"),
                  "--methods", methods]
    result["leaderboard"] = [
        ["leaderboard", *evaluation, "--protocol", protocol, "--out", str(paths.runs / f"leaderboard-{protocol}")]
        for protocol in ("wang", "scgan-paper")
    ]
    return result


def budget_text() -> str:
    return (f"{EPOCHS} epochs of {' + '.join(TRAIN_FOLDERS)} at batch {BATCH}, {PRESET} "
            f"(SCGAN: {STAGE1_EPOCHS} stage-1 + {STAGE2_EPOCHS} stage-2 epochs)")


def run_step(name: str, commands: list[list[str]], dry_run: bool, weights_dir: Path | None = None) -> None:
    """Run (or print) a step's commands; with ``weights_dir`` every command loads shipped names from there (the
    leaderboard finds what `ship` wrote)."""
    env = {**os.environ, "SCGAN_WEIGHTS_DIR": str(weights_dir)} if weights_dir else None
    prefix = f"SCGAN_WEIGHTS_DIR={shlex.quote(str(weights_dir))} " if weights_dir else ""
    for arguments in commands:
        command = [*scgan_command(), *arguments]
        print(f"[{name}] {prefix}{shlex.join(command)}", flush=True)
        if not dry_run:
            subprocess.run(command, check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", help="a step name, 'all', or 'plan' (print every command)")
    parser.add_argument("--data", default="../shared/data", help="folder holding the data sets (default %(default)s)")
    parser.add_argument("--u2netp", default="../shared/models/u2netp.onnx", help="U2-Net-p ONNX (default %(default)s)")
    parser.add_argument("--runs", default="runs/recipe", help="where runs, maps and leaderboards go (%(default)s)")
    parser.add_argument("--weights-dir", default=None, help="where `ship` writes (default: the package's weights)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    paths = Paths(Path(args.data), Path(args.u2netp), Path(args.runs),
                  Path(args.weights_dir) if args.weights_dir else None)
    if args.step == "plan":
        for name, commands in steps(paths, plan=True).items():
            run_step(name, commands, dry_run=True, weights_dir=paths.weights_dir)
        return 0
    write_train_list(paths)
    names = list(steps(paths, plan=True))
    if args.step != "all" and args.step not in names:
        parser.error(f"unknown step {args.step!r}; steps: {', '.join(names)}, all, plan")
    for name in names if args.step == "all" else [args.step]:
        # recomputed for each step: a training step sees the checkpoints the steps before it wrote
        run_step(name, steps(paths)[name], args.dry_run, paths.weights_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
