"""`scgan colorize`: colorize photos (files, folders, list files or the embedded samples) with an SCGAN checkpoint."""

from __future__ import annotations

import argparse

NAME = "colorize"
HELP = "colorize images with SCGAN (shipped scgan:mini or a checkpoint; PNG outputs with the same relative names)"
DESCRIPTION = """\
Colorize images with a trained SCGAN: the shipped model scgan:mini by default, another shipped name (`scgan
baselines` lists them), or a checkpoint of `scgan train`. Each INPUT is an image file, a folder (searched
recursively), a list file (.txt/.lst, one path per line) or "samples" (the embedded sample photos). Colour inputs
are converted to BT.601 gray first. Outputs are PNGs under --out with the input's relative name and a .png ending (a
folder's "sub/a.jpg" -> OUT/sub/a.png; a file INPUT -> OUT/<its name>.png), at the input's size. By default the
predicted colour (Lab a*, b*) is put onto the full-resolution input luminance; --raw writes the network's RGB
resized back (what the paper evaluates). --saliency also writes the predicted saliency maps as gray PNGs with the
same names under --saliency-dir (default: OUT_saliency beside OUT, so that OUT holds only colorizations for `scgan
eval`). A run report (colorize_report.json) is written to OUT. Unreadable files stop the run unless --skip-bad,
which lists them in the report."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, list files, or 'samples'")
    parser.add_argument("--model", default="scgan:mini", metavar="NAME|CKPT",
                        help="a shipped SCGAN (default scgan:mini) or an SCGAN checkpoint (scgan train output)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder for the colorized PNGs")
    parser.add_argument("--raw", action="store_true", help="write the network's RGB (resized back) instead of Lab "
                        "recombination with the input luminance")
    parser.add_argument("--saliency", action="store_true", help="also write the predicted saliency maps")
    parser.add_argument("--saliency-dir", metavar="DIR", help="where --saliency writes (default: OUT_saliency)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    parser.add_argument("--bn-mode", choices=("eval", "train"), default="eval",
                        help="BatchNorm at inference: eval = running statistics (default); train = batch statistics, "
                        "as the released code ran (use --batch-size 1 to reproduce it)")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images and list them in the report")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def collect_entries(inputs: list[str]):
    """INPUT arguments -> image entries with output names; a name produced twice is an error."""
    from pathlib import Path

    from scgan.data import IMAGE_EXTENSIONS, ImageEntry, list_images
    from scgan.errors import InputError

    entries = []
    for item in inputs:
        path = Path(item)
        if item == "samples" and not path.exists():
            entries.extend(list_images("samples"))
        elif path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            entries.append(ImageEntry(path.name, path))
        elif path.is_file() or path.is_dir():
            entries.extend(list_images(path))
        else:
            raise FileNotFoundError(f"INPUT not found: {path}")
    seen: dict[str, str] = {}
    for entry in entries:
        out_name = output_name(entry.name)
        if out_name in seen:
            raise InputError(
                f"two inputs map to the same output {out_name}: {seen[out_name]} and {entry.path}; "
                "colorize them in separate runs or folders"
            )
        seen[out_name] = str(entry.path)
    return entries


def output_name(name: str) -> str:
    """``"sub/a.jpg"`` -> ``"sub/a.png"``."""
    from scgan.data import name_stem

    return name_stem(name) + ".png"


def run(args: argparse.Namespace) -> int:
    import json
    import platform
    from pathlib import Path

    import torch
    from tqdm import tqdm

    from scgan import __version__, paths
    from scgan.atomic import write_text
    from scgan.colorize import ScganColorizer, colorize_images, colorize_with_saliency
    from scgan.data import load_image, save_image, to_tensor
    from scgan.devices import resolve_device
    from scgan.errors import ImageReadError, InputError

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    entries = collect_entries(args.inputs)
    out_dir = Path(args.out)
    saliency_dir = Path(args.saliency_dir) if args.saliency_dir else out_dir.with_name(out_dir.name + "_saliency")
    for flag, folder in (("--out", out_dir), ("--saliency-dir", saliency_dir if args.saliency else None)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise InputError(f"{flag} {folder}: exists and is not a folder")
    outputs = {"--out": out_dir, "--saliency-dir": saliency_dir if args.saliency else None}
    from scgan import shipped

    is_shipped = shipped.looks_like_name(args.model)
    model_files = None if is_shipped else args.model
    paths.check_outputs_apart(outputs, {"INPUT": [*args.inputs, *(e.path for e in entries)], "--model": model_files})
    if is_shipped:
        generator, _, sha = shipped.load_scgan(args.model, device)
        colorizer = ScganColorizer(generator, name=args.model, bn_mode=args.bn_mode, sha256=sha)
    else:
        colorizer = ScganColorizer.from_checkpoint(args.model, device, bn_mode=args.bn_mode)
    if args.saliency and colorizer.generator.saliency_branch is None:
        raise InputError(f"--saliency: {args.model} has no saliency branch (config saliency=False)")
    for flag, folder in outputs.items():
        if folder is not None:
            paths.prepare_output_dir(flag, folder)

    bad: list[dict[str, str]] = []
    written: list[str] = []
    progress = tqdm(total=len(entries), desc="colorizing", unit="img", disable=args.quiet)
    # Autograd is left on: ScganColorizer.predict already runs the model under no_grad, and a process-wide
    # torch.set_grad_enabled(False) would outlive this call when `run` is used in-process (tests, notebooks).
    for start in range(0, len(entries), args.batch_size):
        batch_entries, images = [], []
        for entry in entries[start : start + args.batch_size]:
            try:
                images.append(to_tensor(load_image(entry.path)))
            except ImageReadError as exc:
                if not args.skip_bad:
                    raise
                bad.append({"file": str(entry.path), "reason": exc.reason})
                progress.update(1)
                continue
            batch_entries.append(entry)
        if not images:
            continue
        if args.saliency:
            outputs, saliency_maps = colorize_with_saliency(colorizer, images, raw=args.raw)
        else:
            outputs, saliency_maps = colorize_images(colorizer, images, raw=args.raw), None
        for i, entry in enumerate(batch_entries):
            name = output_name(entry.name)
            save_image(outputs[i], out_dir / name)
            if args.saliency:
                save_image(saliency_maps[i], saliency_dir / name)
            written.append(name)
        progress.update(len(batch_entries))
    progress.close()

    report = {
        "command": "colorize",
        "version": __version__,
        "model": str(args.model),
        "model_sha256": colorizer.sha256,
        "config": colorizer.config.to_dict(),
        "mode": "raw" if args.raw else "lab-recombined",
        "model_input": f"BT.601 gray resized to {colorizer.input_size}x{colorizer.input_size} "
        "(bilinear, antialiased when shrinking)",
        "bn_mode": args.bn_mode,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "inputs": [str(i) for i in args.inputs],
        "outputs": written,
        "saliency_dir": str(saliency_dir) if args.saliency else None,
        "bad": bad,
    }
    write_text(out_dir / "colorize_report.json", json.dumps(report, indent=2) + "\n")
    skipped = f", {len(bad)} unreadable file(s) skipped (see colorize_report.json)" if bad else ""
    print(f"colorized {len(written)} image(s) -> {out_dir}{skipped}")
    return 0
