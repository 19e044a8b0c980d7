"""`scgan eval` end to end on small image folders (tmp_path) and on the embedded samples (--demo)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from metrics import functional as MF
from metrics import registry
from scgan.cli import main


def save_png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def nchw(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


@pytest.fixture()
def folders(tmp_path):
    """gt/ and pred/ with three photo crops (one in a subfolder) and noisy predictions saved as PNG."""
    rng = np.random.default_rng(0)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    images = {}
    for name, photo in (("a.png", "astronaut"), ("b.png", "coffee"), ("sub/c.png", "chelsea")):
        img = np.ascontiguousarray(getattr(skimage.data, photo)()[:48, :64])
        pred = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        save_png(gt_dir / name, img)
        save_png(pred_dir / name, pred)
        images[name] = (img, pred)
    return gt_dir, pred_dir, images


def test_rows_and_summary_match_the_functional_metrics(folders, tmp_path, capsys):
    gt_dir, pred_dir, images = folders
    out = tmp_path / "out" / "rows.csv"
    code = main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet"])
    assert code == 0
    rows = read_rows(out)
    assert [r["file"] for r in rows] == ["a.png", "b.png", "sub/c.png"]
    expected_columns = ["file", "pred_file", "resize", "psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "delta_e00",
                        "auc_ab", "cni", "cci_ratio", "delta_cf"]  # cni: the registry's metric added by issue 13
    assert list(rows[0].keys()) == expected_columns
    for row in rows:
        gt, pred = images[row["file"]]
        for name in ("psnr", "ssim", "ssim_scgan", "delta_e00", "auc_ab"):
            assert float(row[name]) == float(getattr(MF, name)(nchw(pred), nchw(gt))[0]), name
        assert float(row["cci"]) == float(MF.cci(nchw(pred))[0])
        assert float(row["cni"]) == float(MF.cni(nchw(pred))[0])
    summary = json.loads((tmp_path / "out" / "rows.summary.json").read_text())
    assert summary["images"] == 3 and summary["resize"]["name"] == "native"
    assert summary["metrics"]["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]), abs=1e-12)
    cf_pred = [float(MF.cf_abs(nchw(images[n][1]))[0]) for n in images]
    cf_gt = [float(MF.cf_abs(nchw(images[n][0]))[0]) for n in images]
    assert summary["metrics"]["delta_cf"] == pytest.approx(abs(np.mean(cf_pred) - np.mean(cf_gt)), abs=1e-12)
    printed = capsys.readouterr().out
    assert "psnr" in printed and "cci_ratio" in printed and "resize native" in printed


def test_json_output_and_metric_choice(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    out = tmp_path / "rows.csv"
    code = main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet", "--json",
                 "--metrics", "psnr,cci_ratio", "--resize", "squash256"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["metrics"]) == ["psnr", "cci_ratio"]
    assert summary["resize"]["name"] == "squash256"
    rows = read_rows(out)
    assert list(rows[0]) == ["file", "pred_file", "resize", "psnr", "cci_ratio"]
    assert {r["resize"] for r in rows} == {"squash256"}


def test_identical_images_give_inf_in_rows_and_json(folders, tmp_path, capsys):
    gt_dir, _, _ = folders
    out = tmp_path / "rows.csv"
    assert main(["eval", "--gt", str(gt_dir), "--pred", str(gt_dir), "--out", str(out), "--quiet", "--json",
                 "--metrics", "psnr"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metrics"]["psnr"] == "inf"
    assert {r["psnr"] for r in read_rows(out)} == {"inf"}


def test_missing_pair_is_an_error_naming_the_file_and_nothing_is_written(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    (pred_dir / "b.png").unlink()
    out = tmp_path / "rows.csv"
    code = main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet"])
    assert code == 2
    assert "b.png" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.glob("*rows*")) == []


def test_extra_prediction_is_an_error(folders, tmp_path, capsys):
    gt_dir, pred_dir, images = folders
    save_png(pred_dir / "zzz.png", images["a.png"][1])
    code = main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(tmp_path / "r.csv"), "--quiet"])
    assert code == 2 and "zzz.png" in capsys.readouterr().err


def test_failing_run_leaves_no_rows_and_skip_bad_records_it(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    (pred_dir / "sub" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "rows.csv"
    args = ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet", "--metrics", "psnr"]
    assert main(args) == 2
    assert "c.png" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--skip-bad", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 2 and [b["file"] for b in summary["bad"]] == ["sub/c.png"]
    assert [r["file"] for r in read_rows(out)] == ["a.png", "b.png"]


def test_gray_ground_truth_is_excluded_and_listed(folders, tmp_path, capsys):
    gt_dir, pred_dir, images = folders
    gray = np.repeat(images["b.png"][0].mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    save_png(gt_dir / "b.png", gray)
    out = tmp_path / "rows.csv"
    assert main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet", "--json",
                 "--metrics", "cci"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["gray_excluded"] == ["b.png"] and summary["images"] == 2


def test_size_mismatch_needs_a_resize_policy(folders, tmp_path, capsys):
    gt_dir, pred_dir, images = folders
    save_png(pred_dir / "a.png", np.ascontiguousarray(images["a.png"][1][:40]))
    args = ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(tmp_path / "r.csv"), "--quiet",
            "--metrics", "psnr"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "a.png" in err and "--resize" in err
    assert main([*args, "--resize", "squash256"]) == 0


def test_argument_errors(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    base = ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(tmp_path / "r.csv"), "--quiet"]
    assert main([*base, "--metrics", "psnr,nope"]) == 2
    assert "unknown metric(s) nope" in capsys.readouterr().err
    assert main([*base, "--metrics", "top1"]) == 2
    assert "--labels" in capsys.readouterr().err
    assert main([*base, "--resize", "big"]) == 2
    assert "unknown resize policy" in capsys.readouterr().err
    assert main(["eval", "--gt", str(gt_dir), "--out", str(tmp_path / "r.csv")]) == 2
    assert "--pred is required" in capsys.readouterr().err
    assert main(["eval", "--gt", str(tmp_path / "nowhere"), "--pred", str(pred_dir), "--out", "x.csv"]) == 2
    assert "nowhere" in capsys.readouterr().err
    # regression: --help listed --out as optional, yet a run without it stops with "--out is required"
    assert main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir)]) == 2
    assert "--out is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "rows CSV to write (required;" in " ".join(capsys.readouterr().out.split())


def test_list_metrics(capsys):
    assert main(["eval", "--list-metrics"]) == 0
    out = capsys.readouterr().out
    for name in registry.list_metrics():
        assert name in out


class StubClassifier:
    """A tiny stand-in classifier (deterministic logits from the mean colour), to test the CLI's label plumbing."""

    name = "stub"
    backend = "stub"
    sha256 = "0" * 64

    def logits(self, images):
        x = images.float() / (255.0 if images.dtype == torch.uint8 else 1.0)
        means = x.mean(dim=(2, 3))  # (N, 3)
        logits = torch.zeros(x.shape[0], 1000)
        logits[:, :3] = means
        return logits


def test_labels_enable_classifier_metrics(folders, tmp_path, capsys, monkeypatch):
    gt_dir, pred_dir, images = folders
    monkeypatch.setitem(registry._CLASSIFIERS, ("stub", "onnxruntime", "cpu"), StubClassifier())
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("file,label\na.png,0\nb.png,1\nsub/c.png,2\n")
    out = tmp_path / "rows.csv"
    assert main(["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--quiet", "--json",
                 "--labels", str(labels_csv), "--classifier", "stub"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = read_rows(out)
    expected_top1 = []
    for row in rows:
        _, pred = images[row["file"]]
        predicted = int(np.argmax(pred.reshape(-1, 3).mean(axis=0)))
        expected_top1.append(float(predicted == int(row["label"])))
    assert [float(r["top1"]) for r in rows] == expected_top1
    assert summary["metrics"]["top1"] == pytest.approx(np.mean(expected_top1))
    assert summary["metrics"]["top5"] == 1.0  # labels 0..2 are always among the top 5 of the stub
    assert summary["classifier"]["name"] == "stub"


def test_demo_on_the_embedded_samples(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["eval", "--demo", "--out", str(out), "--quiet", "--json", "--metrics", "psnr,ssim,cci,delta_cf"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 6 and "JPEG quality 30" in summary["demo"]
    assert sorted(p.name for p in (out / "pred").iterdir()) == [
        "astronaut.jpg", "chelsea.jpg", "coffee.jpg", "grace_hopper.jpg", "rocket.jpg", "stereo_motorcycle.jpg"]
    rows = read_rows(out / "rows.csv")
    assert len(rows) == 6 and (out / "summary.json").is_file()
    # Halving the chroma roughly halves the colourfulness: the predictions are less colourful than the photos.
    assert all(float(r["delta_cf"]) < 0 for r in rows)
    assert 15 < summary["metrics"]["psnr"] < 40


def test_empty_prediction_folder_is_an_error(folders, tmp_path, capsys):
    gt_dir, _, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "rows.csv"
    assert main(["eval", "--gt", str(gt_dir), "--pred", str(empty), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no image files" in err and str(empty) in err
    assert not out.exists()
