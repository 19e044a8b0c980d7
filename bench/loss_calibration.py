"""Stage-2 loss-weight calibration: a measured sweep that chose the trainer's default loss weights.

Why: with the EfficientNet-Lite0 perceptual network (the paper's VGG-16 weights cannot be downloaded here) the paper's
weight 5 makes the perceptual term about 99% of the generator loss, so the L1, attention and GAN terms barely steer.
This script measures each term's share of the generator loss at the start and end of stage 2 for several weight
settings and scores each setting on held-out photos; ``docs/training.md`` records the result and the rule that chose
the default.

Procedure (all runs share the data, seed, preset and budget):

1. stage 1 (L1 + attention) once, ``--stage1-epochs`` epochs, to ``OUT/stage1``;
2. for every setting ``w_perceptual:w_gan`` of ``--settings``, stage 2 for ``--stage2-epochs`` epochs from the
   stage-1 generator (fresh critics and optimisers, as the trainer's stage change does) to ``OUT/<setting>``;
3. loss shares: the weighted terms ``w * loss`` of ``losses.csv`` averaged over the first and the last
   ``--share-steps`` steps; a term's share is ``|w * loss| / sum |w_t * loss_t|`` (the WGAN generator term can be
   negative, so magnitudes are compared);
4. held-out score on ``--val`` photos (never trained on): ``val_l1`` = mean |prediction - ground truth| at the
   network's size in [-1, 1] (what the reconstruction term measures), and with the predicted chroma recombined
   with the ground truth's luminance at 256x256 (squash256; the ``wang`` protocol's recombination) PSNR and
   Hasler-Suesstrunk colourfulness (CCI, signed);
5. the rule: among the settings whose held-out PSNR is within ``--psnr-slack`` dB of the best setting's, the one with
   the highest mean CCI (colour without losing fidelity); ties go to the earlier setting.

Writes ``OUT/sweep.csv`` (one row per setting and phase), ``OUT/sweep.md`` (the tables) and ``OUT/sweep.json``.
Resumable: a finished run (its checkpoint at the last epoch) is not trained again; a killed one resumes.

    python -m bench.loss_calibration --train TRAIN_DIR --saliency SAL_DIR --val VAL_DIR --out runs/calibration
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

TERMS = ("reconstruction", "attention", "gan", "perceptual")
DEFAULT_SETTINGS = "5:0.05,1:0.05,0.2:0.05,0.05:0.05,0.2:0.05:mean"


def parse_settings(text: str) -> list[tuple[float, float, str]]:
    """``"5:0.05,0.2:0.05:mean"`` -> ``[(5.0, 0.05, "sum"), (0.2, 0.05, "mean")]`` (w_perceptual, w_gan,
    gp_reduction; the reduction defaults to the released code's "sum")."""
    settings = []
    for item in text.split(","):
        parts = item.split(":")
        try:
            perceptual, gan = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise SystemExit(f"--settings: {item!r} is not W_PERCEPTUAL:W_GAN[:sum|mean]") from None
        reduction = parts[2] if len(parts) > 2 else "sum"
        if perceptual < 0 or gan < 0 or reduction not in ("sum", "mean") or len(parts) > 3:
            raise SystemExit(f"--settings: {item!r}: weights must be >= 0, the reduction sum or mean")
        settings.append((perceptual, gan, reduction))
    return settings


def setting_name(perceptual: float, gan: float, reduction: str) -> str:
    return f"p{perceptual:g}_g{gan:g}_gp{reduction}"


def _finished(run_dir: Path) -> bool:
    import torch

    path = run_dir / "checkpoint.pt"
    if not path.exists():
        return False
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = ckpt["train_config"]
    return int(ckpt["epoch"]) >= int(config["stage1_epochs"]) + int(config["stage2_epochs"])


def run_training(config, init_generator: Path | None, progress: bool) -> None:
    """Train ``config`` (resuming a killed run); stage 2 starts from ``init_generator``'s weights when given."""
    import torch

    from scgan.state_dict import load_state_dict_strict
    from scgan.training import Trainer, train

    run_dir = Path(config.out)
    if _finished(run_dir):
        return
    if (run_dir / "checkpoint.pt").exists():  # killed earlier: the trainer's own resume (bit-identical)
        train(config, resume=True, progress=progress)
        return
    trainer = Trainer(config, progress=progress)
    if init_generator is not None:
        state = torch.load(init_generator, map_location=trainer.device, weights_only=True)["generator"]
        load_state_dict_strict(trainer.generator, state, init_generator)
    trainer.method.prepare(trainer)  # what train() does before a fresh run's first step
    trainer.loss_log.reset()
    trainer.run()


def loss_shares(losses_csv: Path, weights: dict[str, float], steps: int) -> dict[str, dict[str, float]]:
    """{"start"|"end": {term: share, term + "_weighted": mean w*loss, "g_total": mean}} from a run's losses.csv."""
    with open(losses_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["stage"] == "2"]
    if not rows:
        raise SystemExit(f"{losses_csv}: no stage-2 rows")
    out = {}
    for phase, part in (("start", rows[:steps]), ("end", rows[-steps:])):
        weighted = {}
        for term in TERMS:
            values = [float(r[term]) for r in part if r.get(term)]
            weighted[term] = weights[term] * sum(values) / len(values) if values else 0.0
        magnitude = sum(abs(v) for v in weighted.values())
        result = {term: abs(v) / magnitude for term, v in weighted.items()}
        result.update({f"{term}_weighted": v for term, v in weighted.items()})
        result["g_total"] = sum(float(r["g_total"]) for r in part) / len(part)
        for critic in ("d_c", "d_a", "gp_c", "gp_a"):
            values = [float(r[critic]) for r in part if r.get(critic)]
            result[critic] = sum(values) / len(values) if values else float("nan")
        out[phase] = result
    return out


def held_out_score(checkpoint: Path, images) -> dict[str, float]:
    """val_l1 / psnr / cci of a checkpoint's generator on the held-out ``images`` (``scgan.validation``)."""
    from scgan.checkpoint import load_generator
    from scgan.validation import validate_generator

    generator, _ = load_generator(checkpoint, "cpu")
    return validate_generator(generator, images)


def choose(rows: list[dict], slack: float) -> dict:
    best_psnr = max(r["psnr"] for r in rows)
    eligible = [r for r in rows if r["psnr"] >= best_psnr - slack]
    return max(eligible, key=lambda r: (r["cci"], -rows.index(r)))


def write_tables(out: Path, stage1: dict, rows: list[dict], chosen: dict, args) -> None:
    from scgan.atomic import write_text

    fields = ["setting", "w_perceptual", "w_gan", "gp_reduction", "phase", *TERMS, *(f"{t}_weighted" for t in TERMS),
              "g_total", "d_c", "d_a", "gp_c", "gp_a", "val_l1", "psnr", "cci", "val_images"]
    lines = [",".join(fields)]
    for r in rows:
        for phase in ("start", "end"):
            values = {**r, **r["shares"][phase], "phase": phase}
            lines.append(",".join(_fmt(values.get(f, "")) for f in fields))
    write_text(out / "sweep.csv", "\n".join(lines) + "\n")

    md = [
        "| w_perceptual | w_gan | GP of | phase | L1 share | attention share | GAN share | perceptual share | "
        "g_total | D_c loss | D_a loss | GP_c | GP_a |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for phase in ("start", "end"):
            s = r["shares"][phase]
            md.append(
                f"| {r['w_perceptual']:g} | {r['w_gan']:g} | patch {r['gp_reduction']} | {phase} | "
                f"{s['reconstruction']:.1%} | {s['attention']:.1%} | {s['gan']:.1%} | {s['perceptual']:.1%} | "
                f"{s['g_total']:.3f} | {s['d_c']:.3f} | {s['d_a']:.3f} | {s['gp_c']:.3f} | {s['gp_a']:.3f} |"
            )
    md += [
        "",
        f"Held-out ({rows[0]['val_images']} photos of `{Path(args.val).name}`):",
        "",
        "| setting | val L1 (64 px, [-1, 1]) | PSNR (dB, luminance kept) | CCI | chosen |",
        "|---|---|---|---|---|",
        f"| after stage 1 only | {stage1['val_l1']:.4f} | {stage1['psnr']:.2f} | {stage1['cci']:.2f} | |",
    ]
    for r in rows:
        mark = "**yes**" if r is chosen else ""
        md.append(
            f"| w_perceptual {r['w_perceptual']:g}, w_gan {r['w_gan']:g}, GP of patch {r['gp_reduction']} | "
            f"{r['val_l1']:.4f} | {r['psnr']:.2f} | "
            f"{r['cci']:.2f} | {mark} |"
        )
    write_text(out / "sweep.md", "\n".join(md) + "\n")
    write_text(out / "sweep.json", json.dumps({
        "args": vars(args), "stage1": stage1,
        "chosen": {k: chosen[k] for k in ("w_perceptual", "w_gan", "gp_reduction")},
        "rows": rows,
    }, indent=2, default=str) + "\n")  # fmt: skip


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="training photos (folder or list file)")
    parser.add_argument("--saliency", required=True, help="saliency maps of the training photos (scgan saliency)")
    parser.add_argument("--val", required=True, help="held-out photos, never trained on")
    parser.add_argument("--val-count", type=int, default=256)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="scgan-64")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--stage1-epochs", type=int, default=3)
    parser.add_argument("--stage2-epochs", type=int, default=2)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="W_PERCEPTUAL:W_GAN,... (stage-2 weights)")
    parser.add_argument("--share-steps", type=int, default=20, help="steps averaged for the start/end shares")
    parser.add_argument("--psnr-slack", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from scgan.training import TrainConfig

    torch.set_num_threads(1)
    out = Path(args.out)
    for source in (args.train, args.saliency, args.val):
        if Path(source).resolve() == out.resolve() or out.resolve() in Path(source).resolve().parents:
            raise SystemExit(f"--out {out} lies inside the input {source}")
    base = dict(data=args.train, saliency=args.saliency, preset=args.preset, batch_size=args.batch_size,
                seed=args.seed, device="cpu", sample_count=4, checkpoint_every=50)
    stage1_dir = out / "stage1"
    run_training(TrainConfig(**base, out=str(stage1_dir), stage1_epochs=args.stage1_epochs, stage2_epochs=0),
                 None, not args.quiet)
    from scgan.validation import load_validation_images

    val_images = load_validation_images(args.val, args.val_count)
    stage1 = held_out_score(stage1_dir / "checkpoint.pt", val_images)
    print(f"stage 1: {stage1}", file=sys.stderr)
    rows = []
    for perceptual, gan, reduction in parse_settings(args.settings):
        name = setting_name(perceptual, gan, reduction)
        config = TrainConfig(**base, out=str(out / name), stage1_epochs=0, stage2_epochs=args.stage2_epochs,
                             w_perceptual=perceptual, w_gan=gan, gp_reduction=reduction)
        run_training(config, stage1_dir / "checkpoint.pt", not args.quiet)
        weights = {"reconstruction": config.w_reconstruction, "attention": config.w_attention, "gan": gan,
                   "perceptual": perceptual}
        row = {"setting": name, "w_perceptual": perceptual, "w_gan": gan, "gp_reduction": reduction,
               "shares": loss_shares(out / name / "losses.csv", weights, args.share_steps),
               **held_out_score(out / name / "checkpoint.pt", val_images)}
        print(f"{name}: val_l1 {row['val_l1']:.4f} psnr {row['psnr']:.2f} cci {row['cci']:.2f}", file=sys.stderr)
        rows.append(row)
    chosen = choose(rows, args.psnr_slack)
    write_tables(out, stage1, rows, chosen, args)
    print((out / "sweep.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
