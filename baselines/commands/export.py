"""`scgan export`: write a colorizer as one ONNX file following the contract of docs/baselines.md, checked against
PyTorch with ONNX Runtime (max abs difference printed; the export fails above 1e-4)."""

from __future__ import annotations

import argparse

from baselines.commands._options import add_option_argument, check_build_options

NAME = "export"
HELP = "export SCGAN (checkpoint or preset) or a published baseline to an ONNX colorizer"
DESCRIPTION = (
    "Export a colorizer to the ONNX contract (input 'gray' (N,1,H,W) in [0,1], output 'rgb' (N,3,H,W) in [0,1], "
    "dynamic batch, metadata name/input_size/source/paper), then check ONNX Runtime against PyTorch on random input. "
    "Exactly one of --model, --preset, --baseline."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="NAME|CKPT",
                        help="a shipped model (scgan:mini, pix2pix:mini, ...; `scgan baselines`) or a SCGAN checkpoint")
    source.add_argument("--preset", metavar="NAME", help="a SCGAN preset, randomly initialised (contract/speed checks)")
    source.add_argument("--baseline", metavar="NAME", help="a published baseline (see `scgan baselines`)")
    parser.add_argument("--weights", metavar="PATH", help="with --baseline: weights in the authors' layout")
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        metavar="S",
        help="with --baseline: export at S x S instead of the paper's size",
    )
    add_option_argument(
        parser,
        "with --baseline: build option of the architecture (e.g. ngf=16; zhang-eccv16: temperature=0.38); repeatable",
    )
    parser.add_argument("--out", required=True, metavar="FILE.onnx", help="output ONNX file (written atomically)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text)


def _export_shipped(args, out) -> int:
    """--model NAME: a shipped model (sha256 and probe checked) to ONNX."""
    from scgan import paths, shipped

    entry = shipped.get_entry(args.model)
    paths.check_outputs_apart({"--out": out}, {"--model": shipped.weights_dir() / entry["file"]})
    paths.prepare_output_file("--out", out)
    source = f"shipped weights {args.model} sha256={entry['sha256']}"
    if entry["kind"] == "scgan":
        import scgan.export

        generator, _, _ = shipped.load_scgan(args.model)
        difference = scgan.export.export_generator(generator, out, name=args.model, source=source)
    else:
        from baselines.export import export_module
        from baselines.registry import get_architecture
        from baselines.shipped import load_baseline

        module, entry, _ = load_baseline(args.model)
        arch = get_architecture(entry["method"])
        metadata = {"name": args.model, "source": source, "paper": arch.paper,
                    "build_options": repr(dict(sorted(entry["build_options"].items())))}
        difference = export_module(module, out, entry["input_size"], metadata, has_saliency=arch.has_saliency)
        difference = difference.max_abs_diff
    _say(args, f"exported the shipped {args.model} to {out} (input {entry['input_size']}x{entry['input_size']})")
    _say(args, f"ONNX Runtime vs PyTorch: max abs difference {float(difference):.3g}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"--out {out}: the file name must end in .onnx")
    if args.weights and not args.baseline:
        raise ValueError("--weights goes with --baseline (a SCGAN checkpoint is given with --model)")
    if (args.input_size is not None or args.option) and not args.baseline:
        raise ValueError("--input-size and --option go with --baseline")
    from scgan import paths, shipped

    if args.model and shipped.looks_like_name(args.model):
        return _export_shipped(args, out)
    paths.check_outputs_apart({"--out": out}, {"--model": args.model, "--weights": args.weights})
    paths.prepare_output_file("--out", out)
    if args.baseline:
        from baselines.export import export_baseline
        from baselines.registry import get_architecture

        # clear errors for an unknown name or build option before any work
        check_build_options(get_architecture(args.baseline), dict(args.option))
        if args.weights is None:
            _say(
                args,
                f"note: no --weights given: exporting the randomly initialised {args.baseline} architecture "
                "(useful for contract and speed checks, not for colorizing)",
            )
        result = export_baseline(
            args.baseline, weights=args.weights, out_path=out, input_size=args.input_size, **dict(args.option)
        )
        _say(
            args,
            f"exported {args.baseline} to {result.path} (input {result.info.input_size}x{result.info.input_size}; "
            f"source: {result.info.source})",
        )
        _say(args, f"ONNX Runtime vs PyTorch: max abs difference {result.max_abs_diff:.3g}")
        return 0

    import scgan.export

    if args.model:
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"--model: checkpoint not found: {args.model}")
        difference = scgan.export.export_generator(args.model, out)
        what = f"the generator of {args.model}"
    else:
        import scgan

        if args.preset not in scgan.PRESETS:
            raise ValueError(f"--preset {args.preset!r}: unknown; presets: {', '.join(scgan.PRESETS)}")
        _say(
            args,
            f"note: --preset exports the randomly initialised {args.preset} generator "
            "(useful for contract and speed checks, not for colorizing)",
        )
        difference = scgan.export.export_generator(args.preset, out)
        what = f"a randomly initialised {args.preset} generator"
    _say(args, f"exported {what} to {out}")
    if difference is not None:
        _say(args, f"ONNX Runtime vs PyTorch: max abs difference {float(difference):.3g}")
    return 0
