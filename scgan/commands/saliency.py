"""`scgan saliency`: saliency ground truth for training, one 8-bit PNG per image (see `scgan.saliency`)."""

from __future__ import annotations

NAME = "saliency"
HELP = "compute saliency ground-truth maps (ONNX SOD model or spectral residual) for a folder of photos"
DESCRIPTION = (
    "Write one single-channel 8-bit PNG per image under OUT (same relative name, .png suffix), computed on the "
    "trainer's crop (--policy, squash256 as in the paper) and stored at --size x --size. Existing maps are kept "
    "(resumable) unless --overwrite. OUT/_saliency.json records how the maps were made (detector, policy, size, "
    "source file sizes); maps that do not match it are recomputed, and a folder of maps made another way is refused. "
    "A contact sheet (image | saliency) is written to OUT/_contact_sheet.png."
)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="image folder, list file, or 'samples' (the embedded photos)")
    parser.add_argument("--out", required=True, help="output folder of saliency PNGs")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", help="salient-object-detection ONNX model (RGB in, one-channel [0,1] map out)")
    group.add_argument("--method", choices=["spectral"], help="weight-free detector (default when --model is absent)")
    parser.add_argument("--size", type=int, default=256, help="side of the stored square maps (default 256)")
    parser.add_argument(
        "--policy", default="squash256", help="resize policy of the training crop (the trainer's; default squash256)"
    )
    parser.add_argument("--overwrite", action="store_true", help="recompute maps that already exist")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed at the end)")
    parser.add_argument(
        "--contact-sheet", default=None, help="path of the contact sheet PNG (default OUT/_contact_sheet.png)"
    )
    parser.add_argument("--contact-sheet-count", type=int, default=6, help="images on the contact sheet (default 6)")
    parser.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders of --data")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys
    from pathlib import Path

    from scgan import paths
    from scgan.data import list_images
    from scgan.errors import InputError
    from scgan.saliency import CONTACT_SHEET_NAME, check_maps_folder, generate_saliency_maps, map_names
    from scgan.saliency_detectors import build_detector

    if Path(args.out).exists() and not Path(args.out).is_dir():  # else a FileExistsError traceback from mkdir
        raise InputError(f"--out {args.out}: exists and is not a folder")

    entries = list_images(args.data, recursive=not args.no_recursive)
    out_dir = Path(args.out)
    sheet = Path(args.contact_sheet) if args.contact_sheet else out_dir / CONTACT_SHEET_NAME
    outputs = {"--out": out_dir, "--contact-sheet": sheet if args.contact_sheet_count > 0 else None}
    paths.check_outputs_apart(outputs, {"--data": [args.data, *(e.path for e in entries)], "--model": args.model})
    detector = build_detector(model=args.model, method=args.method)
    check_maps_folder(out_dir, map_names(e.name for e in entries), detector.name, args.policy, args.size,
                      args.overwrite)
    if args.contact_sheet_count > 0:
        paths.check_suffix("--contact-sheet", sheet, (".png",), "a PNG")
        paths.prepare_output_file("--contact-sheet", sheet)
    paths.prepare_output_dir("--out", out_dir)
    result = generate_saliency_maps(
        entries,
        out_dir,
        detector,
        size=args.size,
        policy=args.policy,
        overwrite=args.overwrite,
        skip_bad=args.skip_bad,
        progress=not args.quiet,
        contact_sheet=sheet if args.contact_sheet_count > 0 else None,
        contact_sheet_count=args.contact_sheet_count,
    )
    print(
        f"saliency ({detector.name}): {len(result.written)} written, {len(result.kept)} kept, "
        f"{len(result.bad)} bad -> {out_dir}"
    )
    for name, reason in result.bad:
        print(f"  skipped {name}: {reason}", file=sys.stderr)
    if result.contact_sheet is not None:
        print(f"contact sheet: {result.contact_sheet}")
    return 0
