"""End-to-end leaderboard: CLI on the embedded samples, protocol recording, cache reuse, skip-bad accounting,
torchrun equivalence, HTML self-containment."""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench import evaluation, leaderboard, methods, report
from bench.leaderboard import LeaderboardConfig, run_leaderboard
from bench.protocols import PROTOCOLS, get_protocol
from scgan.cli import main as cli_main
from scgan.errors import InputError

FAST_METRICS = "psnr,ssim,cci,cf_abs,delta_e00,auc_ab"


def _write_images(folder: Path, count: int = 4, size=(40, 48), bad: bool = False) -> Path:
    """Small colourful PNGs (smooth gradients + a coloured square), optionally one truncated file."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    for i in range(count):
        image = np.stack([(xx * 5 + 40 * i) % 256, (yy * 6 + 17 * i) % 256, ((xx + yy) * 3 + 90) % 256], axis=-1)
        image[8:20, 10:24] = [(200 + 13 * i) % 256, 40, 60 + i]
        Image.fromarray(image.astype(np.uint8)).save(folder / f"img{i}.png")
    if bad:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    return folder


class TintMethod:
    """A deterministic test colorizer: gray input plus a fixed tint; counts the images it colorizes."""

    input_size = None

    def __init__(self, name: str, tint=(0.06, 0.0, -0.05), fail_on_red: bool = False):
        self.name = name
        self.sha256 = f"sha-of-{name}"
        self.tint = torch.tensor(tint).view(1, 3, 1, 1)
        self.fail_on_red = fail_on_red
        self.images_colorized = 0

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        if self.fail_on_red and bool((images[:, 0, 10, 12] * 255 > 210).any()):
            raise RuntimeError("synthetic failure on a very red square")
        self.images_colorized += images.shape[0]
        gray = 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]
        return torch.clamp(gray + self.tint, 0.0, 1.0)


def test_protocols_are_frozen_and_hashed():
    paper, wang = get_protocol("scgan-paper"), get_protocol("wang")
    assert paper.resize_policy == "squash256" and paper.raw and "ssim_scgan" in paper.metrics
    assert wang.resize_policy == "native" and not wang.raw and "ssim_scgan" not in wang.metrics
    assert paper.hash != wang.hash and re.fullmatch(r"[0-9a-f]{16}", paper.hash)
    assert paper.hash == get_protocol("scgan-paper").hash  # stable
    import dataclasses

    changed = dataclasses.replace(paper, bleeding_band_px=paper.bleeding_band_px + 1)
    assert changed.hash != paper.hash  # every parameter is part of the hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.raw = False
    with pytest.raises(ValueError, match="known: scgan-paper, wang"):
        get_protocol("nope")
    assert set(PROTOCOLS) == {"scgan-paper", "wang"}


def test_cli_on_embedded_samples(tmp_path, monkeypatch, capsys):
    # The README's main command: no arguments at all (embedded samples, default methods, protocol wang,
    # ./leaderboard-out): the anchors and every shipped colorizer.
    from scgan.shipped import read_registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path / "model-cache"))
    shipped_names = list(read_registry())
    expected = ["gt", "gray", "tint", *shipped_names]
    assert methods.default_methods() == expected
    assert cli_main(["leaderboard"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Protocol `wang` (luminance-keeping")
    assert "| gt | any | 6 |" in printed and "leaderboard-out" in printed
    out = tmp_path / "leaderboard-out"
    for name in ("rows.csv", "leaderboard.csv", "leaderboard.md", "cci_boxplot.png", "samples.png", "report.html",
                 "run.json", "diagnostics.csv"):
        assert (out / name).is_file(), name
    rows = pd.read_csv(out / "rows.csv")
    protocol = get_protocol("wang")
    assert list(rows.columns[:4]) == ["method", "file", "protocol", "protocol_hash"]
    assert set(rows["protocol"]) == {"wang"} and set(rows["protocol_hash"]) == {protocol.hash}
    assert list(rows["method"].unique()) == expected and len(rows) == len(expected) * 6
    gt, gray = rows[rows.method == "gt"], rows[rows.method == "gray"]
    assert np.isinf(gt["psnr"]).all() and (gt["ssim"] == 1.0).all() and (gt["delta_e00"] == 0.0).all()
    assert (gray["cci"].abs() < 1e-9).all() and (gray["near_gray"] == 1).all()
    assert (gt["top1_agree"] == 1).all() and "top1" not in rows.columns  # no labels: no Top-1, but agreement
    run = json.loads((out / "run.json").read_text())
    assert run["protocol"]["hash"] == protocol.hash and run["protocol"]["params"]["resize_policy"] == "native"
    assert [m["name"] for m in run["methods"]] == expected and not run["methods_failed"]
    # The shipped colorizers colorize (mean CCI above 8) and keep the structure (PSNR at most 1 dB below gray's).
    means = rows.groupby("method")[["psnr", "cci"]].mean()
    for name in shipped_names:
        assert means.loc[name, "cci"] > 8, (name, means.loc[name, "cci"])
        assert means.loc[name, "psnr"] >= means.loc["gray", "psnr"] - 1.0, (name, means.loc[name, "psnr"])
    assert {"torch", "numpy"} <= set(run["versions"]) and "timings_s" in run and "host" in run
    assert run["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run["git_commit"])
    table = (out / "leaderboard.md").read_text()
    assert "Protocol `wang` (luminance-keeping" in table and "| gt | any |" in table and "| gray | any |" in table
    assert "SSIM (SCGAN protocol)" not in table and "[" in table
    lb = pd.read_csv(out / "leaderboard.csv")
    assert list(lb["method"]) == expected and {"psnr_low", "ssim_p_vs_best", "cci_ratio"} <= set(lb.columns)
    sizes = {m["name"]: m["input_size"] for m in run["methods"]}
    assert [None if pd.isna(v) else int(v) for v in lb["input_size"]] == [sizes[m] for m in expected]
    for png in ("cci_boxplot.png", "samples.png"):
        with Image.open(out / png) as image:
            image.verify()
    _check_self_contained(out / "report.html")

    # The report rebuilt from the rows alone gives the same tables.
    rebuilt = tmp_path / "rebuilt"
    assert cli_main(["report", "--rows", str(out / "rows.csv"), "--out", str(rebuilt), "--quiet"]) == 0
    assert (rebuilt / "leaderboard.md").read_text() == table
    pd.testing.assert_frame_equal(pd.read_csv(rebuilt / "leaderboard.csv"), lb)
    assert (rebuilt / "samples.png").is_file() and (rebuilt / "cci_boxplot.png").is_file()
    _check_self_contained(rebuilt / "report.html")
    # Truly the rows alone (no run.json, no figures beside them): the same numbers.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "rows.csv", alone / "rows.csv")
    assert cli_main(["report", "--rows", str(alone / "rows.csv"), "--out", str(alone / "out"), "--quiet"]) == 0
    # (the input sizes come from run.json: the rows alone do not know them)
    pd.testing.assert_frame_equal(pd.read_csv(alone / "out" / "leaderboard.csv"), lb.drop(columns="input_size"))
    # A run.json of another protocol beside the rows is refused, not silently used.
    run["protocol"]["hash"] = get_protocol("scgan-paper").hash
    (alone / "run.json").write_text(json.dumps(run))
    assert cli_main(["report", "--rows", str(alone / "rows.csv"), "--out", str(alone / "out2"), "--quiet"]) == 2


def _check_self_contained(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text, flags=re.IGNORECASE)
    assert references, "the report embeds its images"
    assert all(ref.startswith("data:image/png;base64,") for ref in references), references
    assert "url(" not in text and "@import" not in text and "<link" not in text.lower()
    assert "<script" not in text.lower()


# Appended to a copy of the report (the report itself has no script): once the page has loaded, record what the
# browser really rendered: every <img> decoded, the tables, and every resource it fetched (Resource Timing lists any
# http(s)/file request; data: URIs are not fetched, so a self-contained page lists none).
_RENDER_PROBE = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.setAttribute("data-render-check", JSON.stringify({
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).map(i => i.alt),
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("tbody tr").length,
    resources: performance.getEntriesByType("resource").map(e => e.name),
  }));
});</script>"""


def test_report_renders_in_headless_chromium(tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    if browser is None:
        pytest.skip("no headless Chromium installed (chromium / chromium-browser / google-chrome not on PATH)")
    folder = _write_images(tmp_path / "imgs", count=3)
    out = tmp_path / "lb"
    run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt", "gray"], out=out, protocol="wang",
                                      metrics=FAST_METRICS.split(","), quiet=True))
    page = (out / "report.html").read_text(encoding="utf-8")
    _check_self_contained(out / "report.html")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _RENDER_PROBE + "</body>"), encoding="utf-8")
    # No network for the browser at all (an external reference would fail to load, and still be listed as a resource).
    dumped = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                             "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND",
                             f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probed.as_uri()],
                            capture_output=True, text=True, timeout=60)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'data-render-check="([^"]*)"', dumped.stdout)
    assert found, "the page did not finish loading in Chromium: " + dumped.stdout[:500]
    check = json.loads(html.unescape(found.group(1)))
    assert check["resources"] == []  # nothing fetched: every image is an embedded data: URI
    assert check["images"] == 2 and sorted(check["decoded"]) == ["cci_boxplot.png", "samples.png"]
    # Leaderboard, coverage, colour cast: 2 methods each, so at least 6 body rows.
    assert check["tables"] >= 3 and check["rows"] >= 6
    assert "<h1>Colorization leaderboard</h1>" in dumped.stdout
    assert "<td>gt</td>" in dumped.stdout and "<td>gray</td>" in dumped.stdout


def test_cache_reuse_recomputes_only_the_added_method(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=3)
    out = tmp_path / "lb"
    first = TintMethod("tinted")
    config = dict(data=str(folder), out=out, protocol="wang", metrics=FAST_METRICS.split(","), quiet=True)
    result = run_leaderboard(LeaderboardConfig(methods=["gt", first], **config))
    assert first.images_colorized == 3
    cached = sorted((out / "cache").rglob("*.png"))
    assert len(cached) == 3
    again, added = TintMethod("tinted"), TintMethod("tinted2", tint=(-0.04, 0.05, 0.0))
    second = run_leaderboard(LeaderboardConfig(methods=["gt", again, added], **config))
    assert again.images_colorized == 0  # read back from OUT/cache
    assert added.images_colorized == 3
    assert second["run"]["colorize_calls"] == {"gt": 3, "tinted2": 3}
    recorded = {m["name"]: (m["sha256"], m["cached"]) for m in second["run"]["methods"]}
    assert recorded == {"gt": (None, False), "tinted": ("sha-of-tinted", True), "tinted2": ("sha-of-tinted2", True)}
    # Worst-k galleries of the non-anchor methods, embedded in the page.
    for name in ("worst_tinted.png", "worst_tinted2.png"):
        with Image.open(out / name) as image:
            image.verify()
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 4  # boxplot, samples, 2 galleries
    # Cached and fresh colorizations give identical rows.
    before = result["rows"].set_index(["method", "file"])
    after = second["rows"].set_index(["method", "file"]).loc[before.index, before.columns]
    pd.testing.assert_frame_equal(before, after)


def test_skip_bad_accounting(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=4, bad=True)
    out = tmp_path / "lb"
    flaky = TintMethod("flaky", fail_on_red=True)  # img0 (red 200) and img1 (red 213) have a very red square
    config = dict(data=str(folder), out=out, protocol="wang", metrics=FAST_METRICS.split(","), quiet=True)
    from scgan.errors import ImageReadError

    with pytest.raises(ImageReadError, match="broken.png"):
        run_leaderboard(LeaderboardConfig(methods=["gt", TintMethod("ok")], **config))
    clean = dict(config, data=str(_write_images(tmp_path / "clean", count=4)))
    with pytest.raises(InputError, match=r"method 'flaky' failed on img1\.png"):
        run_leaderboard(LeaderboardConfig(methods=["gt", flaky], **clean))
    with_fid = dict(config, metrics=FAST_METRICS.split(",") + ["fid_effl0"])
    result = run_leaderboard(LeaderboardConfig(methods=["gt", TintMethod("ok"), flaky], skip_bad=True, **with_fid))
    rows = result["rows"]
    assert rows[rows.method == "flaky"]["error"].astype(bool).sum() == 3  # img1, img2, img3 (red > 210)
    summary = result["summary"]
    assert summary.common_files == ["img0.png"]
    coverage = summary.coverage.set_index("method")
    assert coverage.loc["flaky", "images_ok"] == 1 and coverage.loc["flaky", "images_failed"] == 3
    assert coverage.loc["ok", "images_ok"] == 4
    assert result["run"]["bad"][0]["file"] == "broken.png"
    table = (out / "leaderboard.md").read_text()
    assert "computed on the 1 images that all 3 methods" in table and "broken.png" in table
    assert "| flaky | 1 | 3 | 4 |" in table  # coverage per method
    # FID too is computed only on the image every method covers (the ground truth's features of all 4 are not used).
    assert (pd.read_csv(out / "dataset_metrics.csv")["fid_images"] == 1).all()


class NanOnRed(TintMethod):
    """A broken model: NaN in its output for images with a very red square (img1, img2 of ``_write_images``)."""

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        out = super().colorize(images, raw)
        out[images[:, 0, 10, 12] * 255 > 210, 0, 0, 0] = math.nan
        return out


def test_invalid_outputs_are_errors_naming_the_image(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=3)
    config = dict(data=str(folder), out=tmp_path / "lb", protocol="wang", metrics=["psnr"], quiet=True, cache=False)
    with pytest.raises(InputError, match=r"method 'nan' failed on img1\.png: .*NaN or infinite values on img1\.png"):
        run_leaderboard(LeaderboardConfig(methods=["gt", NanOnRed("nan")], **config))
    rows = run_leaderboard(LeaderboardConfig(methods=["gt", NanOnRed("nan")], skip_bad=True, **config))["rows"]
    failed = rows[rows["error"] != ""]
    assert list(failed["method"]) == ["nan", "nan"] and list(failed["file"]) == ["img1.png", "img2.png"]
    assert failed["psnr"].isna().all() and rows.loc[rows["error"] == "", "psnr"].notna().all()


def test_bad_arguments_are_clear(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=2)
    with pytest.raises(InputError, match="duplicate method name"):
        run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt", "gt"], out=tmp_path / "o", quiet=True))
    with pytest.raises(InputError, match="ssim_scgan"):
        run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt"], protocol="wang", metrics=["ssim_scgan"],
                                          out=tmp_path / "o", quiet=True))
    with pytest.raises(InputError, match="labels"):
        run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt"], metrics=["top1"], out=tmp_path / "o",
                                          quiet=True))
    assert leaderboard.select_metrics(get_protocol("wang"), ["cci_ratio", "delta_cf", "psnr"], False) == (
        "psnr", "cci", "cf_abs")
    assert methods.split_display_name("onnx:a=b/c.onnx=mine") == ("onnx:a=b/c.onnx", "mine")
    assert methods.split_display_name("onnx:dir=x/model.onnx") == ("onnx:dir=x/model.onnx", None)
    assert cli_main(["leaderboard", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_cli_names_the_images_it_left_out(tmp_path, capsys):
    # regression: the terminal summary did not say that gray or unreadable images were left out of the table
    folder = _write_images(tmp_path / "imgs", count=2, bad=True)
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(folder / "flat_gray.png")
    args = ["leaderboard", "--data", str(folder), "--methods", "gt", "--metrics", "psnr", "--skip-bad", "--no-cache",
            "--out", str(tmp_path / "o")]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "gray ground truth excluded (1): flat_gray.png" in printed
    assert "unreadable files skipped (1): broken.png" in printed
    assert cli_main([*args, "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_saliency_aware_metrics(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=2)
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(2):
        saliency = np.zeros((40, 48), np.uint8)
        saliency[8:20, 10:24] = 255  # the coloured square is the salient object
        Image.fromarray(saliency).save(maps / f"img{i}.png")
    out = tmp_path / "lb"
    result = run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt", TintMethod("tint")], out=out,
                                               protocol="wang", metrics=["psnr", "cci"], saliency=str(maps),
                                               quiet=True))
    rows = result["rows"].set_index(["method", "file"])
    assert np.isinf(rows.loc[("gt", "img0.png"), "psnr_salient"]) and rows.loc[("gt", "img0.png"), "bleeding"] == 0
    tint = rows.loc[("tint", "img0.png")]
    assert np.isfinite(tint["psnr_salient"]) and np.isfinite(tint["psnr_background"]) and tint["bleeding"] > 0
    assert "Saliency-aware evaluation" in (out / "leaderboard.md").read_text()
    # Maps computed on the fly by scgan.saliency (spectral residual) instead of a folder.
    computed = run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gray"], out=tmp_path / "computed",
                                                 protocol="wang", metrics=["psnr"], saliency_model="spectral",
                                                 quiet=True))
    assert {"psnr_salient", "psnr_background", "bleeding"} <= set(computed["rows"].columns)
    assert computed["run"]["saliency"]["model"] == "spectral"


def test_masked_metrics_match_numpy():
    from metrics import saliency as masked  # the leaderboard's saliency metrics, registered in metrics/

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    target = rng.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    mask = np.zeros((2, 16, 20), bool)
    mask[:, 4:10, 5:15] = True
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    psnr = masked.masked_psnr(to_t(pred), to_t(target), torch.from_numpy(mask)[:, None]).numpy()
    cci = masked.masked_cci(to_t(pred), torch.from_numpy(mask)[:, None]).numpy()
    for i in range(2):
        diff = pred[i][mask[i]].astype(float) - target[i][mask[i]].astype(float)
        assert psnr[i] == pytest.approx(10 * np.log10(255**2 / np.mean(diff**2)), rel=1e-12)
        px = pred[i][mask[i]].astype(float)
        rg, yb = px[:, 0] - px[:, 1], 0.5 * (px[:, 0] + px[:, 1]) - px[:, 2]
        expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        assert cci[i] == pytest.approx(expected, rel=1e-12)
    band = masked.boundary_band(torch.from_numpy(mask)[:, None], 2)[0, 0].numpy()
    # mask rows 4..9, cols 5..14; k=2: the band is the dilation minus the erosion (rows 6..7, cols 7..12)
    assert band[4, 5] and band[2, 5] and band[5, 7] and band[11, 5] and band[2, 3]
    assert not band[6, 7] and not band[7, 10] and not band[12, 5] and not band[0, 0] and not band[4, 2]


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun gloo test runs on POSIX")
def test_torchrun_two_gloo_processes_give_the_rows_of_one(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=5)
    args = ["leaderboard", "--data", str(folder), "--methods", "gt,gray", "--protocol", "wang", "--metrics",
            "psnr,cci,delta_e00", "--batch-size", "2", "--quiet", "--no-cache"]
    assert cli_main(args + ["--out", str(tmp_path / "one")]) == 0
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--module", "scgan.cli", *args, "--out", str(tmp_path / "two")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[:4000]
    one = (tmp_path / "one" / "rows.csv").read_bytes()
    two = (tmp_path / "two" / "rows.csv").read_bytes()
    assert one == two
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2


def test_read_rows_rejects_garbage(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        report.build_report(report.read_rows(path), None, tmp_path / "o")
    with pytest.raises(FileNotFoundError):
        report.read_rows(tmp_path / "none.csv")


def test_report_cli_names_the_rows_file(tmp_path, capsys):
    # regression: `scgan report` said "rows: missing column(s)" without the file, and "file not found" for a folder
    path = tmp_path / "summary.csv"
    path.write_text("a,b\n1,2\n")
    assert cli_main(["report", "--rows", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--rows {path}: missing column(s) ['method', 'file']" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["report", "--rows", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "a folder; give the rows.csv file in it" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # regression: --out naming an existing file ended in a FileExistsError traceback (report and leaderboard)
    (tmp_path / "afile").write_text("x")
    good_rows = tmp_path / "rows.csv"
    good_rows.write_text("method,file,psnr\ngt,a.png,30\n")
    assert cli_main(["report", "--rows", str(good_rows), "--out", str(tmp_path / "afile"), "--quiet"]) == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err
    assert cli_main(["leaderboard", "--methods", "gt", "--out", str(tmp_path / "afile"), "--quiet"]) == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err


def test_classifier_metrics_labels_and_per_class(tmp_path):
    folder = _write_images(tmp_path / "imgs", count=4)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nimg0.png,1\nimg1.png,1\nimg2.png,7\nimg3.png,7\n")
    out = tmp_path / "lb"
    result = run_leaderboard(LeaderboardConfig(data=str(folder), labels=str(labels), methods=["gt", "gray"], out=out,
                                               protocol="wang", metrics=["psnr", "top1", "top5", "top1_agree",
                                                                         "fid_effl0"], quiet=True))
    rows = result["rows"]
    assert set(rows["label"]) == {1, 7}
    assert rows["top1"].isin([0.0, 1.0]).all() and rows["top5"].isin([0.0, 1.0]).all()
    assert (rows["top5"] >= rows["top1"]).all()
    assert (rows.loc[rows.method == "gt", "top1_agree"] == 1.0).all()  # the ground truth agrees with itself
    dataset = pd.read_csv(out / "dataset_metrics.csv").set_index("method")
    # 4 images for 1280 feature dimensions: FID is not computed, and the report says why
    assert dataset["fid_effl0"].isna().all() and dataset.loc["gray", "fid_images"] == 4
    assert (out / "per_class.csv").is_file()
    per_class = pd.read_csv(out / "per_class.csv")
    assert set(per_class["label"]) == {1, 7} and (per_class["images"] == 2).all()
    # Every CSV says which protocol it measured.
    for frame in (dataset, per_class, pd.read_csv(out / "diagnostics.csv")):
        assert set(frame["protocol_hash"]) == {get_protocol("wang").hash}
    table = (out / "leaderboard.md").read_text()
    assert "Top-1 (%)" in table and "FID not computed: 4 images for 1280" in table and "Per-class breakdown" in table
    run = json.loads((out / "run.json").read_text())
    assert run["classifier"]["name"] == "efficientnet-lite0" and len(run["classifier"]["sha256"]) == 64


def test_fid_from_features_against_the_metrics_package(tmp_path):
    from metrics.dataset import frechet_distance

    rng = np.random.default_rng(5)
    gt = rng.normal(size=(40, 6))
    shifted = rng.normal(loc=0.5, size=(40, 6))
    first, second = np.arange(20), np.arange(20, 40)
    # Two ranks' results, each in its own order: merged, the features are put back in image order.
    rank0 = {"__gt__": [(first, gt[:20])], "a": [(first, shifted[:20])], "b": [(np.arange(40), gt)]}
    rank1 = {"__gt__": [(second, gt[20:])], "a": [(second, shifted[20:])]}
    merged = evaluation.merge_results([evaluation.EvalResult([], rank1, [], [], {}),
                                        evaluation.EvalResult([], rank0, [], [], {})])
    frame = evaluation.dataset_metrics_frame(merged.features, ["a", "b"], set(range(40))).set_index("method")
    assert frame.loc["a", "fid_effl0"] == pytest.approx(frechet_distance(shifted, gt), rel=1e-12)
    assert abs(frame.loc["b", "fid_effl0"]) < 1e-9
    # --skip-bad: a method failed on images 30..39, so every FID is computed on the 30 images all methods cover.
    keep = set(range(30))
    features = {"__gt__": [(np.arange(40), gt)], "a": [(np.arange(30), shifted[:30])], "b": [(np.arange(40), gt)]}
    frame = evaluation.dataset_metrics_frame(features, ["a", "b"], keep).set_index("method")
    assert frame.loc["a", "fid_effl0"] == pytest.approx(frechet_distance(shifted[:30], gt[:30]), rel=1e-12)
    assert (frame["fid_images"] == 30).all()
    summary = report.build_report(
        pd.DataFrame({"method": ["a", "b"], "file": ["x", "x"], "psnr": [20.0, 30.0]}), frame.reset_index(), tmp_path
    )
    assert summary.cells[("b", "fid_effl0")].best


class _FixedClassifier:
    """Stand-in for another ImageNet classifier: logits from the mean colour (deterministic, 1000 classes)."""

    name = "vgg16"
    sha256 = "0" * 64

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((images.mean(dim=(1, 2, 3)) * 999).long(), 1000).to(torch.float32)


def test_classifier_override_changes_the_protocol_hash(tmp_path, monkeypatch):
    import metrics.classifier

    monkeypatch.setattr(metrics.classifier, "load_classifier", lambda spec, **kw: _FixedClassifier())
    folder = _write_images(tmp_path / "imgs", count=2)
    result = run_leaderboard(LeaderboardConfig(data=str(folder), methods=["gt", "gray"], out=tmp_path / "o",
                                               protocol="wang", metrics=["psnr", "top1_agree"],
                                               classifier="vgg16:weights.pth", quiet=True))
    rows, run = result["rows"], result["run"]
    default_hash = get_protocol("wang").hash
    assert set(rows["protocol_hash"]) == {run["protocol"]["hash"]} and run["protocol"]["hash"] != default_hash
    assert run["protocol"]["params"]["classifier"] == "vgg16"
    assert run["protocol"]["params"]["extra"] == {"classifier_sha256": "0" * 64}
    assert (rows.loc[rows.method == "gt", "top1_agree"] == 1.0).all()
