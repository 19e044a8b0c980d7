"""GPU timing of the fused kernels against eager and ``torch.compile``-d PyTorch: one command on a CUDA machine.

    python -m bench.gpu_kernels                      # (8,3,256,256) and (64,3,256,256), fp32 and bf16
    python -m bench.gpu_kernels --out bench/results --shapes 8x3x256x256 --dtypes float32

For each op, shape, dtype and mode (``forward``, ``forward+backward``) it times three implementations with
``triton.testing.do_bench`` (median of its repetitions, CUDA events, L2 cache flushed between calls):

- ``triton``: the fused kernels (``kernels.get_ops("triton")``),
- ``eager``: ``kernels.reference`` run eagerly,
- ``compiled``: ``torch.compile(kernels.reference.<op>)`` (inductor, default mode),

and reports achieved GB/s against the bytes the op must move (:data:`BYTE_FORMULAS`), the speed ratios of the kernels
over ``eager`` and over ``compiled``, and a measured device-to-device copy bandwidth (``dst.copy_(src)`` of 1 GiB:
2 bytes moved per byte copied), against which the issue's targets are judged:

- ``attention_l1`` forward+backward: >= 2x eager and >= 80% of the copy bandwidth;
- ``gradient_penalty`` forward+backward: >= 1.5x eager.

Results: tidy rows (CSV), rows + metadata (JSON) and Markdown tables under ``--out`` (default ``bench/results``),
written atomically. Without CUDA (or Triton) the script exits with status 2 and says so: nothing is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from bench.provenance import git_commit

DEFAULT_SHAPES = ((8, 3, 256, 256), (64, 3, 256, 256))
DEFAULT_DTYPES = ("float32", "bfloat16")
MODES = ("forward", "forward+backward")
IMPLEMENTATIONS = ("triton", "eager", "compiled")
COPY_BYTES = 1 << 30
TARGETS = {  # (op, mode) -> (minimum speed-up over eager, minimum fraction of the copy bandwidth or None)
    ("attention_l1", "forward+backward"): (2.0, 0.8),
    ("gradient_penalty", "forward+backward"): (1.5, None),
}

# Bytes each op must move at the least, with E = N*C*H*W image elements, P = N*H*W saliency elements, s = bytes per
# element, as (multiple of E, multiple of P). Forward and backward are separate passes (the backward re-reads what it
# needs); partial sums, per-sample scalars and the 0-d loss are negligible and left out. Gradients are asked for the
# inputs listed in OpCase.grads. One table: the byte counts and the formulas printed in the report come from it.
BYTE_COUNTS: dict[str, dict[str, tuple[int, int]]] = {
    # fwd: read rgb E + sal P, write E. bwd: read grad E, rgb E, sal P; write d rgb E, d sal P.
    "weighted_image": {"forward": (2, 1), "forward+backward": (5, 3)},
    # fwd: read rgb_pred, rgb_true (2E) and both saliencies (2P). bwd: the same reads, write d rgb_pred E, d sal_pred P.
    "attention_l1": {"forward": (2, 2), "forward+backward": (5, 5)},
    # fwd: read real, fake, write out. bwd: read grad, write d real, d fake.
    "interpolate": {"forward": (3, 0), "forward+backward": (6, 0)},
    # fwd: read grad once. bwd: read it again, write its gradient.
    "gradient_penalty": {"forward": (1, 0), "forward+backward": (3, 0)},
}


def _formula(e_count: int, p_count: int) -> str:
    """(5, 3) -> "(5E + 3P) s"; (1, 0) -> "E s"."""
    terms = [f"{count if count != 1 else ''}{name}" for count, name in ((e_count, "E"), (p_count, "P")) if count]
    return f"({' + '.join(terms)}) s" if len(terms) > 1 else f"{terms[0]} s"


#: The byte counts of :data:`BYTE_COUNTS` as text, e.g. ``"(5E + 5P) s"`` (for the report).
BYTE_FORMULAS = {op: {mode: _formula(*counts) for mode, counts in modes.items()} for op, modes in BYTE_COUNTS.items()}


def op_bytes(op: str, mode: str, shape: tuple[int, int, int, int], element_size: int) -> int:
    """The bytes of :data:`BYTE_COUNTS` for one (op, mode) at ``shape`` (N,C,H,W)."""
    n, c, h, w = shape
    e_count, p_count = BYTE_COUNTS[op][mode]
    return (e_count * n * c * h * w + p_count * n * h * w) * element_size


@dataclasses.dataclass(frozen=True)
class OpCase:
    """How to call one op: its input tensors for a shape/dtype, and which of them get gradients."""

    op: str
    make_inputs: Callable[[tuple[int, int, int, int], torch.dtype, torch.device, torch.Generator], list[torch.Tensor]]
    grads: tuple[int, ...]  # indices of the inputs that require grad (what SCGAN's training asks for)


def _attention_inputs(shape, dtype, device, gen):
    n, _, h, w = shape
    rgb_pred = torch.rand(shape, generator=gen) * 2 - 1
    sal_pred = torch.rand((n, 1, h, w), generator=gen)
    rgb_true = torch.rand(shape, generator=gen) * 2 - 1
    sal_true = torch.rand((n, 1, h, w), generator=gen)
    return [t.to(device=device, dtype=dtype) for t in (rgb_pred, sal_pred, rgb_true, sal_true)]


def _weighted_inputs(shape, dtype, device, gen):
    return _attention_inputs(shape, dtype, device, gen)[:2]


def _interpolate_inputs(shape, dtype, device, gen):
    real = torch.rand(shape, generator=gen) * 2 - 1
    fake = torch.rand(shape, generator=gen) * 2 - 1
    eps = torch.rand(shape[0], generator=gen)
    return [t.to(device=device, dtype=dtype) for t in (real, fake, eps)]


def _penalty_inputs(shape, dtype, device, gen):
    return [(torch.randn(shape, generator=gen) * 0.1).to(device=device, dtype=dtype)]


CASES = (
    OpCase("weighted_image", _weighted_inputs, grads=(0, 1)),
    OpCase("attention_l1", _attention_inputs, grads=(0, 1)),  # the targets are data: no gradient
    OpCase("interpolate", _interpolate_inputs, grads=(0, 1)),
    OpCase("gradient_penalty", _penalty_inputs, grads=(0,)),
)


def make_call(fn: Callable, inputs: list[torch.Tensor], grads: tuple[int, ...], mode: str) -> Callable[[], object]:
    """A no-argument closure running ``fn`` once (``forward``) or forward and backward (``forward+backward``).

    The backward uses ``torch.autograd.grad`` with a fixed, seeded upstream gradient, so nothing accumulates between
    calls. Returns the output (``forward``) or the tuple of gradients of the inputs in ``grads``.
    """
    leaves = [t.detach().requires_grad_(i in grads and mode != "forward") for i, t in enumerate(inputs)]
    wanted = [leaves[i] for i in grads]
    if mode == "forward":

        def forward():
            with torch.no_grad():
                return fn(*leaves)

        return forward
    probe = fn(*leaves)
    # a seeded upstream gradient: the same values for every implementation and dtype (tests compare them)
    upstream = torch.randn(probe.shape, generator=torch.Generator().manual_seed(1)).to(probe)

    def forward_backward():
        return torch.autograd.grad(fn(*leaves), wanted, upstream)

    return forward_backward


def collect_rows(
    timer: Callable[[Callable[[], object], dict], float],
    shapes=DEFAULT_SHAPES,
    dtypes=DEFAULT_DTYPES,
    device: str = "cuda",
    cases=CASES,
    implementations: dict[str, Callable[[str], Callable]] | None = None,
) -> pd.DataFrame:
    """One tidy row per (op, shape, dtype, mode, implementation) with the median time (ms) that
    ``timer(call, key)`` returns for the no-argument ``call``; ``key`` holds op, shape, dtype, mode and impl."""
    import kernels
    from kernels import reference

    if implementations is None:
        triton_ops = kernels.get_ops("triton")
        compiled = {case.op: torch.compile(getattr(reference, case.op)) for case in cases}
        implementations = {
            "triton": lambda op: getattr(triton_ops, op),
            "eager": lambda op: getattr(reference, op),
            "compiled": lambda op: compiled[op],
        }
    records = []
    for case in cases:
        for shape in shapes:
            for dtype_name in dtypes:
                dtype = getattr(torch, dtype_name)
                # fresh dynamo caches per (op, shape, dtype): otherwise the variants of one op could exceed dynamo's
                # recompile limit and the "compiled" rows would silently time eager code
                torch._dynamo.reset()
                gen = torch.Generator().manual_seed(0)
                inputs = case.make_inputs(tuple(shape), dtype, torch.device(device), gen)
                for mode in MODES:
                    nbytes = op_bytes(case.op, mode, tuple(shape), inputs[0].element_size())
                    for impl, get_fn in implementations.items():
                        key = {
                            "op": case.op,
                            "shape": "x".join(str(s) for s in shape),
                            "dtype": dtype_name,
                            "mode": mode,
                            "impl": impl,
                        }
                        median_ms = float(timer(make_call(get_fn(case.op), inputs, case.grads, mode), key))
                        gbps = nbytes / (median_ms * 1e-3) / 1e9
                        records.append({**key, "median_ms": median_ms, "bytes": nbytes, "gbps": gbps})
    return pd.DataFrame.from_records(records)


def summarize(rows: pd.DataFrame, copy_gbps: float | None) -> pd.DataFrame:
    """One row per (op, shape, dtype, mode): times per implementation, the kernels' GB/s and fraction of the copy
    bandwidth, speed-ups over eager and compiled, and whether the issue's target (if any) is met."""
    keys = ["op", "shape", "dtype", "mode"]
    times = rows.pivot_table(index=keys, columns="impl", values="median_ms", aggfunc="first")
    gbps = rows[rows["impl"] == "triton"].set_index(keys)["gbps"]
    table = pd.DataFrame(index=times.index)
    for impl in IMPLEMENTATIONS:
        if impl in times.columns:
            table[f"{impl}_ms"] = times[impl]
    table["triton_gbps"] = gbps
    table["copy_fraction"] = gbps / copy_gbps if copy_gbps else float("nan")
    table["speedup_vs_eager"] = times["eager"] / times["triton"]
    if "compiled" in times.columns:
        table["speedup_vs_compiled"] = times["compiled"] / times["triton"]
    targets, met = [], []
    for (op, _, _, mode), speedup, fraction in zip(table.index, table["speedup_vs_eager"], table["copy_fraction"]):
        target = TARGETS.get((op, mode))
        if target is None:
            targets.append("")
            met.append("")
            continue
        min_speedup, min_fraction = target
        ok = speedup >= min_speedup and (min_fraction is None or fraction >= min_fraction)
        targets.append(_target_text(target))
        met.append("yes" if ok else "NO")
    table["target"] = targets
    table["target_met"] = met
    return table.reset_index()


def _target_text(target: tuple[float, float | None]) -> str:
    min_speedup, min_fraction = target
    text = f">= {min_speedup:g}x eager"
    if min_fraction is not None:
        text += f", >= {min_fraction:.0%} of copy bandwidth"
    return text


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render_markdown(summary: pd.DataFrame, metadata: dict) -> str:
    """The report: metadata, copy bandwidth, the byte formulas, then one table per op."""
    lines = ["# Fused kernel timings (bench/gpu_kernels.py)", ""]
    for key in ("date", "git_commit", "device", "torch", "triton", "cuda"):
        lines.append(f"- {key}: `{metadata.get(key)}`")
    copy = metadata.get("copy_gbps")
    lines.append(f"- device-to-device copy bandwidth: {copy:.1f} GB/s" if copy else "- copy bandwidth: not measured")
    lines += ["", "Times: median ms of `triton.testing.do_bench`. GB/s: bytes the op must move / kernel time.", ""]
    for op, frame in summary.groupby("op", sort=False):
        formulas = BYTE_FORMULAS[op]
        lines += [
            f"## {op}",
            "",
            f"Bytes (E = N*C*H*W, P = N*H*W, s = bytes/element): forward {formulas['forward']}, "
            f"forward+backward {formulas['forward+backward']}.",
            "",
            _markdown_table(frame.drop(columns=["op"])),
            "",
        ]
    return "\n".join(lines)


def metadata(device_name: str, copy_gbps: float | None, shapes, dtypes) -> dict:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
        "device": device_name,
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "shapes": ["x".join(str(s) for s in shape) for shape in shapes],
        "dtypes": list(dtypes),
        "copy_gbps": copy_gbps,
        "timer": "triton.testing.do_bench median",
        "byte_formulas": BYTE_FORMULAS,
    }


def save_results(out_dir: Path, stem: str, rows: pd.DataFrame, summary: pd.DataFrame, meta: dict) -> list[Path]:
    """Write ``<stem>.csv`` (tidy rows), ``<stem>.json`` (rows, summary, metadata), ``<stem>.md`` atomically."""
    from scgan.atomic import write_text

    out_dir = Path(out_dir)
    payload = {
        "metadata": meta,
        "rows": rows.to_dict(orient="records"),
        "summary": json.loads(summary.to_json(orient="records")),
    }
    return [
        write_text(out_dir / f"{stem}.csv", rows.to_csv(index=False)),
        write_text(out_dir / f"{stem}.json", json.dumps(payload, indent=2, default=str) + "\n"),
        write_text(out_dir / f"{stem}.md", render_markdown(summary, meta) + "\n"),
    ]


def device_stem(device_name: str) -> str:
    slug = "".join(ch.lower() if ch.isalnum() else "-" for ch in device_name).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"gpu_kernels_{slug or 'device'}"


def _do_bench_timer(fn: Callable[[], object], key: dict | None = None) -> float:
    """Median ms of ``triton.testing.do_bench`` (CUDA only); prints the key as progress."""
    import triton.testing

    median_ms = float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    if key is not None:
        print(" ".join(str(v) for v in key.values()) + f": {median_ms:.4f} ms", flush=True)
    return median_ms


def measure_copy_gbps(nbytes: int = COPY_BYTES) -> float:
    """Device-to-device copy bandwidth: ``dst.copy_(src)`` reads and writes ``nbytes`` each."""
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    median_ms = _do_bench_timer(lambda: dst.copy_(src))
    return 2 * nbytes / (median_ms * 1e-3) / 1e9


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"shape must be NxCxHxW, got {text!r}")
    return tuple(int(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results", help="output folder")
    parser.add_argument("--shapes", type=_parse_shape, nargs="+", default=list(DEFAULT_SHAPES), help="NxCxHxW ...")
    parser.add_argument("--dtypes", nargs="+", default=list(DEFAULT_DTYPES), choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("bench/gpu_kernels.py needs a CUDA GPU: none is visible (torch.cuda.is_available() is False); "
              "nothing was measured.", file=sys.stderr)  # fmt: skip
        return 2
    import kernels

    if not kernels.HAS_TRITON:
        print("bench/gpu_kernels.py needs triton, which is not importable; nothing was measured.", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name()
    print(f"device: {device_name}; measuring copy bandwidth ...", flush=True)
    copy_gbps = measure_copy_gbps()
    print(f"device-to-device copy: {copy_gbps:.1f} GB/s", flush=True)
    rows = collect_rows(_do_bench_timer, shapes=args.shapes, dtypes=args.dtypes, device="cuda")
    summary = summarize(rows, copy_gbps)
    meta = metadata(device_name, copy_gbps, args.shapes, args.dtypes)
    paths = save_results(args.out, device_stem(device_name), rows, summary, meta)
    print(render_markdown(summary, meta))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
