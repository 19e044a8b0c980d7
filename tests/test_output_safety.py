"""Issue 12: nothing a command reads is overwritten or read back, and every failure is one line (exit 2) naming the
path. One test per reproduction case of the issue; each checks the error and that every input file is byte-identical
afterwards."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from scgan import data, paths
from scgan.cli import main
from scgan.errors import InputError

FAST = ["--metrics", "psnr", "--protocol", "wang", "--quiet"]


def _photo(path: Path, seed: int, size=(40, 48)) -> Path:
    """A small colourful PNG (gradients and a coloured square)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    image = np.stack([(xx * 5 + 40 * seed) % 256, (yy * 6 + 17 * seed) % 256, ((xx + yy) * 3 + 90) % 256], axis=-1)
    image[8:20, 10:24] = [(200 + 13 * seed) % 256, 40, 60 + seed]
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path


def _photos(folder: Path, count: int = 2, first_seed: int = 0) -> Path:
    for i in range(count):
        _photo(folder / f"img{i}.png", first_seed + i)
    return folder


def _snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under the roots (or the root file itself) -> its bytes."""
    files = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(path)] = path.read_bytes()
    return files


def _one_line_error(capsys, *must_contain: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for text in must_contain:
        assert text in err, (text, err)
    return err


def _colorizer_onnx(path: Path, scale: float, offset: float, type_error: bool = False) -> Path:
    """A contract-shaped colorizer: rgb = concat(gray x3) * scale + offset (input 8x8); ``type_error`` adds an int64
    constant to a float tensor, which ONNX Runtime refuses when it builds the session."""
    nodes = [helper.make_node("Concat", ["gray"] * 3, ["cat"], axis=1),
             helper.make_node("Mul", ["cat", "scale"], ["scaled"]),
             helper.make_node("Add", ["scaled", "offset"], ["rgb"])]
    constants = [helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
                 helper.make_tensor("offset", TensorProto.INT64 if type_error else TensorProto.FLOAT, [],
                                    [int(offset)] if type_error else [offset])]
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("gray", TensorProto.FLOAT, ("batch", 1, 8, 8))],
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ("batch", 3, 8, 8))], constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in {"name": path.stem, "input_size": "8", "source": "test graph", "paper": "none"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


# --------------------------------------------------------------------------------------- case 1: eval --out g/a.png
def test_eval_refuses_an_output_that_is_an_input_photo(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=5)
    before = _snapshot(gt, pred)
    assert main(["eval", "--gt", "g", "--pred", "p", "--out", "g/img0.png", "--quiet"]) == 2
    _one_line_error(capsys, "--out g/img0.png", ".csv")
    # a .csv name inside the ground-truth folder: refused too, naming both paths
    assert main(["eval", "--gt", "g", "--pred", "p", "--out", "g/rows.csv", "--quiet"]) == 2
    _one_line_error(capsys, "--out g/rows.csv", "lies inside the input --gt g")
    assert _snapshot(gt, pred) == before


# ------------------------------------------------------------------------------------ case 2: colorize --out same same
def test_colorize_refuses_to_write_into_its_input_folder(tmp_path, capsys):
    from scgan.checkpoint import save_checkpoint
    from scgan.model import build_generator

    generator = build_generator("scgan-tiny")  # untrained: the refusal comes before the model is even loaded
    weights = {"config": "scgan-tiny", "generator": generator.state_dict()}
    tiny_checkpoint = save_checkpoint(tmp_path / "tiny.pt", weights)
    same = _photos(tmp_path / "same")
    before = _snapshot(same, tiny_checkpoint)
    assert main(["colorize", "--model", str(tiny_checkpoint), "--out", str(same), str(same), "--quiet"]) == 2
    _one_line_error(capsys, f"--out {same} is the input INPUT {same}")
    assert main(["colorize", "--model", str(tiny_checkpoint), "--out", str(tmp_path), str(same), "--quiet"]) == 2
    _one_line_error(capsys, f"--out {tmp_path} contains the input")
    assert _snapshot(same, tiny_checkpoint) == before


# ---------------------------------------------------------------------- case 3: saliency --data d --out d; train maps
@pytest.mark.parametrize("overwrite", [False, True])
def test_saliency_refuses_its_data_folder_as_output(tmp_path, capsys, overwrite):
    folder = _photos(tmp_path / "d")
    before = _snapshot(folder)
    args = ["saliency", "--data", str(folder), "--out", str(folder), "--quiet"] + (["--overwrite"] if overwrite else [])
    assert main(args) == 2
    _one_line_error(capsys, f"--out {folder} is the input --data {folder}")
    assert _snapshot(folder) == before


def test_saliency_refuses_a_folder_of_maps_it_did_not_make(tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    foreign = _photos(tmp_path / "maps")  # colour photos with the map names, no manifest
    before = _snapshot(photos, foreign)
    assert main(["saliency", "--data", str(photos), "--out", str(foreign), "--quiet"]) == 2
    _one_line_error(capsys, str(foreign / "img0.png"), "_saliency.json")
    assert _snapshot(photos, foreign) == before


def test_trainer_check_refuses_maps_that_do_not_match(tmp_path):
    from scgan.saliency import MANIFEST_NAME, check_saliency_maps, generate_saliency_maps
    from scgan.saliency_detectors import SpectralResidualDetector

    photos = _photos(tmp_path / "photos")
    entries = data.list_images(photos)
    # RGB photos of another size offered as maps (no manifest): refused, naming the folder's missing manifest
    rgb_maps = _photos(tmp_path / "rgb_maps")
    with pytest.raises(InputError, match=rf"{MANIFEST_NAME}: missing"):
        check_saliency_maps(rgb_maps, entries, "squash256")
    maps = tmp_path / "maps"
    generate_saliency_maps(entries, maps, SpectralResidualDetector(), size=32, progress=False)
    assert len(check_saliency_maps(maps, entries, "squash256")) == 2
    with pytest.raises(InputError, match="'squash256' crop, this run uses --policy 'crop256'"):
        check_saliency_maps(maps, entries, "crop256")
    before = _snapshot(photos)
    Image.open(photos / "img1.png").convert("RGB").save(maps / "img1.png")  # a map replaced by a colour image
    with pytest.raises(InputError, match=r"img1\.png: a saliency map must be a single-channel"):
        check_saliency_maps(maps, entries, "squash256")
    _photo(photos / "img0.png", 9, size=(50, 60))  # the photo changed since its map was made
    with pytest.raises(InputError, match=r"img0\.png: made from a \d+-byte file"):
        check_saliency_maps(maps, data.list_images(photos), "squash256")
    assert _snapshot(photos)[str(photos / "img1.png")] == before[str(photos / "img1.png")]


def test_saliency_resume_recomputes_maps_of_changed_photos(tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    maps = tmp_path / "maps"
    assert main(["saliency", "--data", str(photos), "--out", str(maps), "--quiet"]) == 0
    _photo(photos / "img0.png", 7, size=(30, 30))
    assert main(["saliency", "--data", str(photos), "--out", str(maps), "--quiet"]) == 0
    assert "1 written, 1 kept" in capsys.readouterr().out
    # other settings than the folder's maps: refused without --overwrite
    assert main(["saliency", "--data", str(photos), "--out", str(maps), "--size", "64", "--quiet"]) == 2
    _one_line_error(capsys, "_saliency.json", "--overwrite")


# --------------------------------------------------------------------- case 4: leaderboard --out inside --data, twice
def test_leaderboard_refuses_an_output_inside_its_data(tmp_path, capsys):
    folder = _photos(tmp_path / "d", count=4)
    before = _snapshot(folder)
    for _ in range(2):
        assert main(["leaderboard", "--data", str(folder), "--out", str(folder / "lb"), "--methods", "gt,gray",
                     *FAST]) == 2
        _one_line_error(capsys, f"--out {folder / 'lb'} lies inside the input --data {folder}")
    assert _snapshot(folder) == before


def test_output_folders_are_never_listed_as_inputs(tmp_path):
    folder = _photos(tmp_path / "d", count=2)
    out = tmp_path / "lb"
    assert main(["leaderboard", "--data", str(folder), "--out", str(out), "--methods", "gt,gray", *FAST]) == 0
    assert (out / paths.OUTPUT_MARKER).is_file() and (out / "samples.png").is_file()
    # the finished output folder moved under the data (or an older run's output there): its images are not inputs
    out.rename(folder / "lb")
    assert [e.name for e in data.list_images(folder)] == ["img0.png", "img1.png"]


# --------------------------------------------------------------------------------- case 5: read-only output folder
@pytest.fixture()
def read_only(monkeypatch):
    """Make a folder refuse new files, as a read-only folder does (root ignores chmod, so mkstemp is patched)."""
    folders: list[Path] = []
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and any(Path(dir).resolve() == f.resolve() for f in folders):
            raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / "x"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return folders


@pytest.fixture()
def no_image_read(monkeypatch):
    """Fail the test if an image is decoded: the refusal must come before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("an image was read before the output was checked")

    # every module of the data layer that decodes through its own binding of load_image
    for module in (data, data.listing, data.resize, data.dataset):
        monkeypatch.setattr(module, "load_image", refuse)


@pytest.mark.parametrize("command", ["eval", "leaderboard", "cci-report"])
def test_read_only_output_folder_is_one_line_before_any_work(tmp_path, capsys, read_only, no_image_read, command):
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=3)
    out = tmp_path / "ro"
    out.mkdir()
    read_only.append(out)
    before = _snapshot(gt, pred)
    args = {
        "eval": ["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out / "rows.csv"), "--quiet"],
        "leaderboard": ["leaderboard", "--data", str(gt), "--out", str(out), "--methods", "gt", *FAST],
        "cci-report": ["cci-report", "--pred", str(pred), "--out", str(out), "--quiet"],
    }[command]
    assert main(args) == 2
    _one_line_error(capsys, "not writable", "Permission denied", str(out))
    assert _snapshot(gt, pred) == before and list(out.iterdir()) == []


def test_cli_names_the_path_of_any_os_error(tmp_path, capsys, monkeypatch):
    # an OSError raised late (disk full while the rows are written) is one line naming the file, exit 2
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=3)
    import scgan.atomic

    def disk_full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(scgan.atomic, "write_bytes", disk_full)
    out = tmp_path / "o" / "rows.csv"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, f"{out}: No space left on device")


# ----------------------------------------------------------------------------- case 6: an output's parent is a file
def test_output_whose_parent_is_a_file(tmp_path, capsys):
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=3)
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    before = _snapshot(gt, pred, blocker)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(blocker / "rows.csv"), "--quiet"]) == 2
    _one_line_error(capsys, f"--out {blocker / 'rows.csv'}: {blocker} exists and is not a folder")
    assert main(["export", "--preset", "scgan-tiny", "--out", str(blocker / "m.onnx"), "--quiet"]) == 2
    _one_line_error(capsys, f"--out {blocker / 'm.onnx'}: {blocker} exists and is not a folder")
    assert _snapshot(gt, pred, blocker) == before


# ------------------------------------------------------------------ case 7: non-UTF-8 file name; rows/summary as a unit
@pytest.mark.skipif(os.name == "nt", reason="file names are bytes only on POSIX")
def test_non_utf8_file_name_is_named_and_the_previous_pair_survives(tmp_path, capsys):
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=3)
    out = tmp_path / "o" / "rows.csv"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 0
    summary = out.with_name("rows.summary.json")
    previous = _snapshot(out, summary)
    odd = os.fsdecode(b"caf\xe9.png")
    _photo(gt / odd, 8)
    _photo(pred / odd, 9)
    before = _snapshot(gt, pred)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, "caf\\xe9.png", "not valid UTF-8")
    assert _snapshot(out, summary) == previous and _snapshot(gt, pred) == before


def test_eval_writes_rows_before_summary_so_a_failed_write_keeps_the_pair(tmp_path, capsys, monkeypatch):
    gt, pred = _photos(tmp_path / "g"), _photos(tmp_path / "p", first_seed=3)
    out = tmp_path / "o" / "rows.csv"
    summary = out.with_name("rows.summary.json")
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 0
    previous = _snapshot(out, summary)
    _photo(pred / "img0.png", 11)  # different predictions: a successful run would change both files
    import scgan.atomic

    real = scgan.atomic.write_bytes

    def rows_fail(path, payload):
        if Path(path).suffix == ".csv":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real(path, payload)

    monkeypatch.setattr(scgan.atomic, "write_bytes", rows_fail)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, str(out))
    assert _snapshot(out, summary) == previous


# ------------------------------------------------------------- case 8: ONNX colorizer outputs outside [0, 1]
def test_out_of_range_method_is_a_failed_method_not_clamped(tmp_path, capsys):
    folder = _photos(tmp_path / "d", count=2)
    model = _colorizer_onnx(tmp_path / "wide.onnx", scale=7.0, offset=-2.5)  # values in [-2.5, 4.5]
    before = _snapshot(folder, model)
    methods = f"gt,onnx:{model}=wide"
    out = tmp_path / "lb"
    assert main(["leaderboard", "--data", str(folder), "--out", str(out), "--methods", methods, "--no-cache",
                 *FAST]) == 2
    _one_line_error(capsys, "method 'wide' failed on img0.png", "outside [0, 1]")
    assert main(["leaderboard", "--data", str(folder), "--out", str(out), "--methods", methods, "--no-cache",
                 "--skip-bad", *FAST]) == 0
    run = json.loads((out / "run.json").read_text())
    (failed,) = run["methods_failed"]
    assert failed["name"] == "wide" and failed["images_failed"] == 2 and "outside [0, 1]" in failed["reason"]
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["method"]) == ["gt"]  # the failed method is not scored, let alone shown as best
    assert "Dropped (no image produced): wide" in (out / "leaderboard.md").read_text()
    assert _snapshot(folder, model) == before


def test_non_float_output_is_a_per_method_error(tmp_path):
    from bench.leaderboard import LeaderboardConfig, run_leaderboard

    class IntegerMethod:
        name, sha256, input_size = "ints", None, None

        def colorize(self, images, raw=False):
            return (images * 255).to(torch.uint8)

    folder = _photos(tmp_path / "d", count=1)
    config = LeaderboardConfig(data=str(folder), methods=["gt", IntegerMethod()], out=tmp_path / "lb",
                               protocol="wang", metrics=["psnr"], quiet=True, cache=False)
    with pytest.raises(InputError, match=r"method 'ints' failed on img0\.png: .*dtype uint8"):
        run_leaderboard(config)


# ----------------------------------------------------------------- case 9: ONNX graph that ONNX Runtime rejects
def test_onnx_runtime_failure_is_a_per_method_error(tmp_path, capsys):
    folder = _photos(tmp_path / "d", count=2)
    model = _colorizer_onnx(tmp_path / "typed.onnx", scale=0.5, offset=0, type_error=True)
    before = _snapshot(folder, model)
    methods = f"gt,onnx:{model}=typed"
    out = tmp_path / "lb"
    assert main(["leaderboard", "--data", str(folder), "--out", str(out), "--methods", methods, *FAST]) == 2
    _one_line_error(capsys, "method 'typed' cannot be loaded from", str(model), "--skip-bad")
    assert main(["leaderboard", "--data", str(folder), "--out", str(out), "--methods", methods, "--skip-bad",
                 *FAST]) == 0
    run = json.loads((out / "run.json").read_text())
    assert [m["name"] for m in run["methods_failed"]] == ["typed"]
    assert str(model) in run["methods_failed"][0]["reason"]
    assert list(pd.read_csv(out / "leaderboard.csv")["method"]) == ["gt"]
    assert _snapshot(folder, model) == before


# -------------------------------------------------------------------------- case 10: cache entry of the wrong size
def test_cache_entry_of_the_wrong_size_is_recomputed_and_counted(tmp_path):
    from bench.leaderboard import LeaderboardConfig, run_leaderboard

    class Tint:
        name, sha256, input_size = "tint", "sha-of-tint", None

        def colorize(self, images, raw=False):
            gray = 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]
            return torch.clamp(gray + torch.tensor([0.06, 0.0, -0.05]).view(1, 3, 1, 1), 0.0, 1.0)

    folder = _photos(tmp_path / "d", count=2)
    out = tmp_path / "lb"

    def run(skip_bad=False):
        config = LeaderboardConfig(data=str(folder), methods=["gt", Tint()], out=out, protocol="wang",
                                   metrics=["psnr"], quiet=True, skip_bad=skip_bad)
        return run_leaderboard(config)

    first = run()["rows"]
    entries = sorted((out / "cache").rglob("*.png"))
    assert len(entries) == 2
    Image.new("RGB", (5, 7), (1, 2, 3)).save(entries[0])  # wrong size
    Image.new("L", (256, 256), 9).save(entries[1])  # right size, wrong pixel format
    for skip_bad in (False, True):
        result = run(skip_bad)
        pd.testing.assert_frame_equal(result["rows"], first)
    assert result["run"]["cache"]["invalid_recomputed"] == 0  # the second run found the repaired entries
    Image.new("RGB", (5, 7), (1, 2, 3)).save(entries[0])
    assert run()["run"]["cache"]["invalid_recomputed"] == 1


# ------------------------------------------------------------------------------- case 11: Markdown escaping
def test_markdown_outputs_escape_file_names(tmp_path):
    folder = _photos(tmp_path / "d", count=2)
    html_name = "<img src=x onerror=alert(1)>.png"
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(folder / html_name)  # gray: listed as excluded
    _photo(folder / "x<b>y.png", 4)
    assert main(["leaderboard", "--data", str(folder), "--out", str(tmp_path / "lb"), "--methods", "gt,gray",
                 *FAST]) == 0
    assert main(["cci-report", "--pred", str(folder), "--out", str(tmp_path / "cci"), "--quiet"]) == 0
    for page in (tmp_path / "lb" / "leaderboard.md", tmp_path / "cci" / "cci_report.md"):
        text = page.read_text()
        assert "<img" not in text and "<b>" not in text, page
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in (tmp_path / "lb" / "leaderboard.md").read_text()


# ------------------------------------------------------------------------------- case 12: a huge image
def _huge_png(path: Path, side: int) -> Path:
    """A side x side colour PNG that compresses well (a few hundred KB), like the issue's 258 KB file."""
    row = np.arange(side, dtype=np.uint16)
    image = np.empty((side, side, 3), np.uint8)
    image[..., 0] = (row % 256)[None, :]
    image[..., 1] = (row % 256)[:, None]
    image[..., 2] = 90
    Image.fromarray(image).save(path, compress_level=1)
    return path


def test_eval_refuses_a_huge_image_at_native_size_and_measures_it_at_protocol_size(tmp_path, capsys):
    side = 4100  # just over data.MAX_NATIVE_PIXELS (4096 x 4096)
    gt, pred = tmp_path / "g", tmp_path / "p"
    gt.mkdir()
    pred.mkdir()
    _huge_png(gt / "big.png", side)
    _huge_png(pred / "big.png", side)
    before = _snapshot(gt, pred)
    out = tmp_path / "rows.csv"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, str(gt / "big.png"), f"{side}x{side}", "--resize squash256")
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet", "--resize",
                 "squash256", "--metrics", "psnr"]) == 0
    assert _snapshot(gt, pred) == before


def test_protocol_decode_holds_no_full_size_float_or_wide_copy(tmp_path):
    import tracemalloc

    side = 3000
    path = _huge_png(tmp_path / "big.png", side)
    decoded_bytes = side * side * 3
    tracemalloc.start()
    try:
        image, gray = data.load_for_protocol(path, "squash256")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == (256, 256, 3) and not gray
    # the decoded uint8 image (plus Pillow's bytes of it while converting): no int16/float64 full-size copies
    assert peak < 2.3 * decoded_bytes, peak / decoded_bytes


def test_chroma_p99_by_bands_equals_numpy_percentile(monkeypatch):
    rng = np.random.default_rng(0)
    monkeypatch.setattr(data.imageio, "_CHROMA_CHUNK_PIXELS", 64)  # many bands even on small images
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        spread = int(rng.integers(1, 256))
        image = rng.integers(0, spread, (height, width, 3)).astype(np.uint8)
        rgb = image.astype(np.int16)
        chroma = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
        assert data.chroma_p99(image) == float(np.percentile(chroma, 99))


@pytest.mark.parametrize("command", ["train", "train-baseline"])
def test_training_refuses_a_run_folder_inside_its_data(tmp_path, capsys, command):
    photos = _photos(tmp_path / "d", 2)
    before = _snapshot(photos)
    argv = [command] + (["pix2pix"] if command == "train-baseline" else ["--no-attention"])
    argv += ["--data", str(photos), "--out", str(photos / "run"), "--preset", "scgan-tiny", "--quiet"]
    assert main(argv) == 2
    _one_line_error(capsys, f"--out {photos / 'run'} lies inside the input --data {photos}")
    assert _snapshot(photos) == before and not (photos / "run").exists()


def test_training_refuses_a_run_folder_holding_a_listed_photo(tmp_path, capsys):
    photos = _photos(tmp_path / "run" / "photos", 2)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(photos.iterdir())))
    assert main(["train", "--no-attention", "--data", str(listing), "--out", str(tmp_path / "run"), "--preset",
                 "scgan-tiny", "--quiet"]) == 2  # fmt: skip
    _one_line_error(capsys, f"--out {tmp_path / 'run'} contains the input training photo")


def test_resume_removes_what_a_killed_checkpoint_write_left(tmp_path, capsys):
    from scgan.atomic import leftover_temporaries

    run = tmp_path / "run"
    base = ["train", "--data", "samples", "--no-attention", "--out", str(run), "--preset", "scgan-tiny",
            "--global-backbone", "vgg16-gray", "--global-init", "none", "--no-perceptual", "--batch-size", "3",
            "--stage1-epochs", "1", "--stage2-epochs", "1", "--sample-count", "0", "--quiet"]  # fmt: skip
    assert main(base + ["--stop-after-steps", "1"]) == 0
    leftover = run / ".checkpoint.pt.killed.tmp.pt"
    leftover.write_bytes(b"half a checkpoint")
    assert leftover_temporaries(run / "checkpoint.pt") == [leftover]
    assert main(["train", "--out", str(run), "--resume", "--stop-after-steps", "1", "--quiet"]) == 0
    assert not leftover.exists()
