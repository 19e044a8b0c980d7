"""The ONNX colorizer contract (docs/baselines.md) as code: validate a model file, read and write its metadata.

A colorizer ONNX file has

- one input named ``gray``: float32, rank 4, ``(N, 1, H, W)``, BT.601 luma in [0, 1]; the batch dimension ``N`` is
  dynamic (a symbolic name or unknown), ``H`` and ``W`` are fixed to the model's input size or dynamic;
- an output named ``rgb``: float32, ``(N, 3, H, W)``, sRGB in [0, 1]; optionally a second output ``saliency``
  float32 ``(N, 1, H, W)`` in [0, 1]; no other outputs;
- metadata properties ``name``, ``input_size`` (an integer in pixels, or ``"any"`` for a fully convolutional model),
  ``source`` (where the weights came from, e.g. a file's sha256, or "random initialisation") and ``paper``.

The model's own normalisation (Lab L for Zhang et al., [-1, 1] for SCGAN, ...) lives inside the graph.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

INPUT_NAME = "gray"
OUTPUT_NAME = "rgb"
SALIENCY_NAME = "saliency"
REQUIRED_METADATA = ("name", "input_size", "source", "paper")


class ContractError(ValueError):
    """An ONNX file that does not follow the colorizer contract; the message names the file and every violation."""

    def __init__(self, path, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        joined = "; ".join(self.problems)
        super().__init__(f"{path}: not a colorizer ONNX model (docs/baselines.md): {joined}")


@dataclass(frozen=True)
class ColorizerInfo:
    """What the contract tells about a valid colorizer file.

    ``input_size`` is the side length in pixels the model takes (square), or None when the graph accepts any size.
    ``has_saliency`` says whether the optional ``saliency`` output is there.
    """

    path: Path
    name: str
    input_size: int | None
    source: str
    paper: str
    has_saliency: bool
    metadata: dict[str, str] = field(default_factory=dict)


def _dim_text(dim) -> str:
    if dim.HasField("dim_value"):
        return str(dim.dim_value)
    if dim.HasField("dim_param"):
        return dim.dim_param or "?"
    return "?"


def _tensor_type_problems(value_info, role: str, channels: int) -> list[str]:
    """Check one graph input/output: float32, rank 4, channel count, dynamic batch. Returns the problems found."""
    import onnx

    problems = []
    name = value_info.name
    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        return [f"{role} {name!r} is not a tensor"]
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        problems.append(f"{role} {name!r} has element type {dtype}, expected FLOAT (float32)")
    if not tensor_type.HasField("shape"):
        problems.append(f"{role} {name!r} has no shape, expected rank 4 (N, {channels}, H, W)")
        return problems
    dims = list(tensor_type.shape.dim)
    shape_text = "(" + ", ".join(_dim_text(d) for d in dims) + ")"
    if len(dims) != 4:
        problems.append(f"{role} {name!r} has rank {len(dims)} {shape_text}, expected rank 4 (N, {channels}, H, W)")
        return problems
    if dims[0].HasField("dim_value"):
        problems.append(
            f"{role} {name!r} has a static batch dimension {dims[0].dim_value} {shape_text}, "
            "expected a dynamic batch (export with dynamic_axes / a symbolic first dimension)"
        )
    if dims[1].HasField("dim_value") and dims[1].dim_value != channels:
        problems.append(f"{role} {name!r} has {dims[1].dim_value} channels {shape_text}, expected {channels}")
    return problems


def _spatial_size(value_info) -> int | None:
    """The fixed square side of a rank-4 input, or None when H or W is dynamic."""
    dims = list(value_info.type.tensor_type.shape.dim)
    if len(dims) == 4 and dims[2].HasField("dim_value") and dims[3].HasField("dim_value"):
        if dims[2].dim_value == dims[3].dim_value:
            return int(dims[2].dim_value)
    return None


def parse_input_size(text: str) -> int | None:
    """Metadata ``input_size``: a positive integer, or ``any`` (fully convolutional). Raises ValueError otherwise."""
    if text.strip().lower() in ("any", "none", ""):
        return None
    size = int(text)
    if size <= 0:
        raise ValueError(f"input_size must be positive, got {size}")
    return size


def read_metadata(model) -> dict[str, str]:
    """The ``metadata_props`` of an ``onnx.ModelProto`` as a dict."""
    return {prop.key: prop.value for prop in model.metadata_props}


def set_metadata(model, **values) -> None:
    """Write metadata properties into an ``onnx.ModelProto`` in place (replacing existing keys).

    Values are converted with ``str``; ``input_size=None`` is written as ``any``.
    """
    for key, value in values.items():
        text = "any" if (key == "input_size" and value is None) else str(value)
        for prop in model.metadata_props:
            if prop.key == key:
                prop.value = text
                break
        else:
            entry = model.metadata_props.add()
            entry.key = key
            entry.value = text


def write_metadata(path: str | os.PathLike, **values) -> None:
    """Set metadata properties of the ONNX file at ``path`` (rewritten atomically)."""
    import onnx

    from scgan.atomic import atomic_path

    model = onnx.load(str(path))
    set_metadata(model, **values)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def check_model(model, path="<model>") -> ColorizerInfo:
    """Validate an in-memory ``onnx.ModelProto`` against the contract; raise ContractError listing every violation."""
    problems: list[str] = []
    graph = model.graph
    initializer_names = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializer_names]
    input_names = [i.name for i in inputs]
    gray = next((i for i in inputs if i.name == INPUT_NAME), None)
    if gray is None:
        problems.append(f"input must be named {INPUT_NAME!r}, found {input_names}")
    elif len(inputs) != 1:
        problems.append(f"exactly one input {INPUT_NAME!r} expected, found {input_names}")
    if gray is not None:
        problems += _tensor_type_problems(gray, "input", 1)

    outputs = {o.name: o for o in graph.output}
    if OUTPUT_NAME not in outputs:
        problems.append(f"output must be named {OUTPUT_NAME!r}, found {list(outputs)}")
    else:
        problems += _tensor_type_problems(outputs[OUTPUT_NAME], "output", 3)
    extra = [name for name in outputs if name not in (OUTPUT_NAME, SALIENCY_NAME)]
    if extra:
        problems.append(f"unexpected outputs {extra} (allowed: {OUTPUT_NAME!r} and optionally {SALIENCY_NAME!r})")
    if SALIENCY_NAME in outputs:
        problems += _tensor_type_problems(outputs[SALIENCY_NAME], "output", 1)

    metadata = read_metadata(model)
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key, "").strip()]
    if missing:
        problems.append(f"missing metadata {missing} (required: {list(REQUIRED_METADATA)})")
    input_size = None
    if "input_size" in metadata and "input_size" not in missing:
        try:
            input_size = parse_input_size(metadata["input_size"])
        except ValueError:
            problems.append(f"metadata input_size={metadata['input_size']!r} is not a positive integer or 'any'")
        else:
            fixed = _spatial_size(gray) if gray is not None else None
            if fixed is not None and input_size is not None and fixed != input_size:
                problems.append(f"metadata input_size={input_size} but the input {INPUT_NAME!r} is fixed at {fixed}")
            if input_size is None and fixed is not None:
                input_size = fixed
    if problems:
        raise ContractError(path, problems)
    return ColorizerInfo(
        path=Path(str(path)),
        name=metadata["name"],
        input_size=input_size,
        source=metadata["source"],
        paper=metadata["paper"],
        has_saliency=SALIENCY_NAME in outputs,
        metadata=metadata,
    )


def validate_colorizer(path: str | os.PathLike, full_check: bool = True) -> ColorizerInfo:
    """Load the ONNX file at ``path`` and validate it against the colorizer contract.

    Raises FileNotFoundError for a missing file, ContractError (a ValueError) naming the file and every violation for
    a file that is not ONNX or does not follow the contract. ``full_check`` also runs ``onnx.checker`` on it.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"colorizer ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError; anything here means "not an ONNX file"
        raise ContractError(path, [f"cannot be read as ONNX ({type(exc).__name__}: {exc})"]) from exc
    if full_check:
        try:
            onnx.checker.check_model(str(path))
        except onnx.checker.ValidationError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ContractError(path, [f"onnx.checker failed: {first_line}"]) from exc
    return check_model(model, path)
