"""Tests of the image data layer (scgan.data): reading every pixel format, the gray rule, listing, labels, samples,
resize policies, tensors, atomic saving, scanning, the dataset and pairing. Small images made in tmp_path.

Longer than 500 lines for one reason: every section makes its images with the helpers below (``random_rgb``,
``touch_image``, ``write_png16``), and ``tests/`` is not a package, so test modules cannot share a helper module.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from scgan import data
from scgan.data import (
    RESIZE_POLICIES,
    ImageDataset,
    ImageEntry,
    chroma_p99,
    is_gray,
    list_images,
    load_image,
    load_labels,
    pair_by_name,
    resize_bilinear_opencv,
    resize_image,
    save_image,
    scan_images,
    to_tensor,
    to_uint8,
)
from scgan.errors import ImageReadError, InputError

# ----------------------------------------------------------------------------------------------------------------------
# helpers


def random_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_png16(path: Path, arr: np.ndarray) -> None:
    """Write a 16-bit PNG (gray (H, W), gray+alpha (H, W, 2), RGB or RGBA) by hand: Pillow cannot write 16-bit RGB."""
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def touch_image(path: Path, seed: int = 0, size=(8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(random_rgb(size[1], size[0], seed)).save(path)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# reading


def test_rgb_png_round_trip(tmp_path):
    img = random_rgb(5, 7)
    Image.fromarray(img).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert out.flags.writeable and out.flags.c_contiguous
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(load_image(ImageEntry("a.png", tmp_path / "a.png")), img)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], gray)
    assert is_gray(out)


def test_one_bit(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "1"
    out = load_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out[..., 0], np.where(bits, 255, 0))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_palette_without_transparency(tmp_path):
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    img.putdata([0, 1, 2, 0, 2, 2, 1, 0])
    img.save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(out, colors[np.array([[0, 1, 2, 0], [2, 2, 1, 0]])])


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_with_transparency_is_composited_on_white(tmp_path, fmt):
    img = Image.new("P", (3, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * (254 * 3))
    img.putdata([0, 1, 0])
    path = tmp_path / f"pt.{fmt}"
    img.save(path, transparency=0)
    assert "transparency" in Image.open(path).info
    out = load_image(path)
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [200, 100, 50], [255, 255, 255]])


def test_colour_key_transparency_is_composited_on_white(tmp_path):
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 1] = [10, 20, 30]
    Image.fromarray(rgb).save(tmp_path / "key.png", transparency=(0, 0, 0))
    np.testing.assert_array_equal(load_image(tmp_path / "key.png")[0], [[255] * 3, [10, 20, 30], [255] * 3])
    Image.fromarray(np.array([[0, 50]], dtype=np.uint8)).save(tmp_path / "keyl.png", transparency=0)
    np.testing.assert_array_equal(load_image(tmp_path / "keyl.png")[0], [[255] * 3, [50] * 3])


def test_cmyk_jpeg(tmp_path):
    # pure cyan, magenta, yellow blocks of 16x16 (JPEG blocks), quality 100
    cmyk = np.zeros((16, 48, 4), dtype=np.uint8)
    cmyk[:, :16, 0] = 255
    cmyk[:, 16:32, 1] = 255
    cmyk[:, 32:, 2] = 255
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg", quality=100)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = load_image(tmp_path / "c.jpg").astype(int)
    assert out.shape == (16, 48, 3)
    expected = np.array([[0, 255, 255], [255, 0, 255], [255, 255, 0]])
    for block in range(3):
        centre = out[4:12, block * 16 + 4 : block * 16 + 12]
        assert np.abs(centre - expected[block]).max() <= 3


def test_rgba_composited_on_white(tmp_path):
    rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 128], [0, 0, 0, 51]]], dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png").astype(int)
    a = rgba[0, :, 3:].astype(float) / 255
    expected = np.floor(rgba[0, :, :3] * a + 255 * (1 - a) + 0.5)
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[0, 0], [200, 100, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])


def test_la_composited_on_white(tmp_path):
    la = np.array([[[40, 255], [40, 0], [40, 102]]], dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png").astype(int)
    np.testing.assert_array_equal(out[0, :, 0], [40, 255, round(40 * 0.4 + 255 * 0.6)])
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_16bit_gray_png_scaled_with_rounding(tmp_path):
    values = np.array([[0, 128, 129, 257, 32896, 65406, 65407, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    expected = np.floor(values.astype(float) * 255 / 65535 + 0.5)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[0, :, 1], [0, 0, 1, 1, 128, 254, 255, 255])


def test_16bit_gray_png_by_hand_writer(tmp_path):
    values = np.array([[0, 1000, 40000, 65535]], dtype=np.uint16)
    write_png16(tmp_path / "h16.png", values)
    out = load_image(tmp_path / "h16.png")
    np.testing.assert_array_equal(out[0, :, 0], np.floor(values[0] / 257 + 0.5))


def test_16bit_rgb_and_rgba_png(tmp_path):
    rng = np.random.default_rng(3)
    rgb16 = rng.integers(0, 65536, (4, 5, 3)).astype(np.uint16)
    write_png16(tmp_path / "rgb16.png", rgb16)
    out = load_image(tmp_path / "rgb16.png")
    assert out.shape == (4, 5, 3)
    # Pillow keeps the high byte; within one level of the rounded scale
    np.testing.assert_array_equal(out, rgb16 >> 8)
    assert np.abs(out.astype(int) - np.floor(rgb16 / 257 + 0.5)).max() <= 1
    rgba16 = np.concatenate([rgb16, np.full((4, 5, 1), 65535, np.uint16)], axis=2)
    write_png16(tmp_path / "rgba16.png", rgba16)
    np.testing.assert_array_equal(load_image(tmp_path / "rgba16.png"), rgb16 >> 8)


def test_16bit_tiff_gray_and_rgb(tmp_path):
    tifffile = pytest.importorskip("tifffile")  # installed with scikit-image
    rng = np.random.default_rng(4)
    rgb16 = rng.integers(0, 65536, (4, 5, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb16.tif"), rgb16 >> 8)
    gray16 = rng.integers(0, 65536, (4, 5)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "gray16.tif", gray16)
    np.testing.assert_array_equal(load_image(tmp_path / "gray16.tif")[..., 1], np.floor(gray16 / 257 + 0.5))


def test_16bit_gray_alpha_png(tmp_path):
    la16 = np.array([[[1000, 65535], [50000, 0]]], dtype=np.uint16)
    write_png16(tmp_path / "la16.png", la16)
    np.testing.assert_array_equal(load_image(tmp_path / "la16.png")[0], [[3, 3, 3], [255, 255, 255]])


def test_decompression_bomb_is_a_read_error(tmp_path, monkeypatch):
    Image.fromarray(random_rgb(8, 8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels > 2 x 10: Pillow refuses
    with pytest.raises(ImageReadError, match="big.png"):
        load_image(tmp_path / "big.png")


def _jpeg_with_orientation(path: Path, orientation: int) -> np.ndarray:
    """A 40 wide, 16 high JPEG: left half red, right half blue; EXIF Orientation tag set."""
    stored = np.zeros((16, 40, 3), dtype=np.uint8)
    stored[:, :20] = [255, 0, 0]
    stored[:, 20:] = [0, 0, 255]
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, exif=exif.tobytes(), quality=95)
    return stored


def test_exif_orientation_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    _jpeg_with_orientation(path, 6)  # 6: rotate 90 degrees clockwise to display
    assert Image.open(path).getexif()[0x0112] == 6
    out = load_image(path).astype(int)
    assert out.shape == (40, 16, 3)  # height and width swapped
    # the stored left half (red) is on top after a clockwise rotation
    assert np.abs(out[5, 8] - [255, 0, 0]).max() < 40
    assert np.abs(out[35, 8] - [0, 0, 255]).max() < 40


def test_exif_orientation_180(tmp_path):
    path = tmp_path / "r180.jpg"
    _jpeg_with_orientation(path, 3)
    out = load_image(path).astype(int)
    assert out.shape == (16, 40, 3)
    assert np.abs(out[8, 5] - [0, 0, 255]).max() < 40  # stored right (blue) is now on the left


def test_multi_frame_gif_reads_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = load_image(tmp_path / "anim.gif")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def _jpeg_bytes(h=64, w=64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(h, w)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_truncated_jpeg_is_an_error(tmp_path):
    full = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert info.value.path == path
    assert "truncated" in info.value.reason
    assert str(path) in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png_is_an_error(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(32, 32)).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:-200])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(path)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert "not a recognised image format" in info.value.reason


def test_empty_missing_and_folder(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="file not found") as info:
        load_image(tmp_path / "nope.png")
    assert info.value.path == tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path)


def test_float_tiff_is_rejected_with_reason(tmp_path):
    Image.fromarray(np.ones((3, 3), dtype=np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match="float"):
        load_image(tmp_path / "f.tif")


# ----------------------------------------------------------------------------------------------------------------------
# gray rule


def _pixels_with_chroma(chromas) -> np.ndarray:
    """One row of pixels (R = c, G = B = 0) whose |R-G| + |G-B| equals the given values."""
    img = np.zeros((1, len(chromas), 3), dtype=np.uint8)
    img[0, :, 0] = np.asarray(chromas, dtype=np.uint8)
    return img


def test_gray_rule_at_the_threshold():
    exactly_two = _pixels_with_chroma([2] * 100)
    assert chroma_p99(exactly_two) == 2.0
    assert is_gray(exactly_two)
    # 100 pixels: numpy's linear p99 sits at rank 98.01, so one pixel of chroma 3 lifts it to 2.01
    just_above = _pixels_with_chroma([2] * 99 + [3])
    assert chroma_p99(just_above) == pytest.approx(2.01)
    assert not is_gray(just_above)
    # one strong outlier in 100 is enough (linear interpolation), one in 1000 is not
    assert not is_gray(_pixels_with_chroma([0] * 99 + [255]))
    assert is_gray(_pixels_with_chroma([0] * 999 + [255]))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), spread=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_property_gray_rule_matches_numpy(h, w, spread, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(10, 240, (h, w, 1))
    img = (base + rng.integers(-spread, spread + 1, (h, w, 3))).astype(np.uint8)
    f = img.astype(np.float64)
    p99 = np.percentile(np.abs(f[..., 0] - f[..., 1]) + np.abs(f[..., 1] - f[..., 2]), 99)
    assert chroma_p99(img) == p99
    assert is_gray(img) == (p99 <= 2)


def test_chroma_uses_both_differences():
    img = np.array([[[11, 10, 11]]], dtype=np.uint8)  # |R-G| = 1, |G-B| = 1
    assert chroma_p99(img) == 2.0
    img = np.array([[[0, 255, 0]]], dtype=np.uint8)
    assert chroma_p99(img) == 510.0


def test_chroma_matches_numpy_formula_and_accepts_tensors():
    img = random_rgb(30, 20, seed=5)
    f = img.astype(float)
    expected = np.percentile(np.abs(f[..., 0] - f[..., 1]) + np.abs(f[..., 1] - f[..., 2]), 99)
    assert chroma_p99(img) == expected
    assert chroma_p99(to_tensor(img)) == expected
    with pytest.raises(InputError):
        chroma_p99(np.zeros((4, 4), dtype=np.uint8))


# ----------------------------------------------------------------------------------------------------------------------
# listing


def _make_tree(root: Path) -> None:
    touch_image(root / "b.jpg")
    touch_image(root / "A.PNG")
    touch_image(root / "c.JPEG")
    touch_image(root / "sub" / "d.png")
    touch_image(root / "sub" / "deeper" / "e.TIFF")
    touch_image(root / ".hidden.jpg")
    touch_image(root / ".cache" / "f.png")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "x.npy").write_bytes(b"\x00")


def test_list_folder_recursive_and_flat(tmp_path):
    _make_tree(tmp_path)
    names = [e.name for e in list_images(tmp_path)]
    assert names == ["A.PNG", "b.jpg", "c.JPEG", "sub/d.png", "sub/deeper/e.TIFF"]
    flat = list_images(tmp_path, recursive=False)
    assert [e.name for e in flat] == ["A.PNG", "b.jpg", "c.JPEG"]
    entry = list_images(tmp_path)[3]
    assert entry == ImageEntry("sub/d.png", tmp_path / "sub" / "d.png", -1)
    assert not entry.has_label
    with pytest.raises(AttributeError):
        entry.name = "other"  # frozen


def test_list_sort_order_is_code_point_order_of_relative_names(tmp_path):
    for name in ["a_b.jpg", "a/b.jpg", "B.jpg", "a.jpg", "a0.png"]:
        touch_image(tmp_path / name)
    assert [e.name for e in list_images(tmp_path)] == sorted(["a_b.jpg", "a/b.jpg", "B.jpg", "a.jpg", "a0.png"])
    assert [e.name for e in list_images(tmp_path)] == ["B.jpg", "a.jpg", "a/b.jpg", "a0.png", "a_b.jpg"]


def test_list_all_extensions(tmp_path):
    img = random_rgb(4, 4)
    formats = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF",
               "webp": "WEBP", "ppm": "PPM", "gif": "GIF"}
    for ext, fmt in formats.items():
        Image.fromarray(img).save(tmp_path / f"x_{ext}.{ext.upper()}", format=fmt)
    Image.fromarray(img[..., 0]).save(tmp_path / "x_pgm.pgm", format="PPM")
    entries = list_images(tmp_path)
    assert len(entries) == 10
    for entry in entries:
        assert load_image(entry.path).shape == (4, 4, 3)


def test_empty_folder_and_missing_source(tmp_path):
    with pytest.raises(InputError, match="no image files"):
        list_images(tmp_path)
    (tmp_path / "readme.md").write_text("x")
    touch_image(tmp_path / "sub" / "a.png")
    with pytest.raises(InputError, match="not recursive"):
        list_images(tmp_path, recursive=False)
    with pytest.raises(FileNotFoundError, match="nope"):
        list_images(tmp_path / "nope")
    with pytest.raises(InputError, match="not a folder, a list file"):
        list_images(tmp_path / "readme.md")
    for empty in ("", "  "):  # Path("") would be the current folder
        with pytest.raises(InputError, match="image source is empty"):
            list_images(empty)


def test_single_image_file_is_a_set_of_one(tmp_path):
    path = touch_image(tmp_path / "sub" / "photo.JPG")
    assert list_images(path) == [ImageEntry("photo.JPG", path)]


def test_list_file(tmp_path):
    touch_image(tmp_path / "imgs" / "a.jpg")
    touch_image(tmp_path / "imgs" / "sub" / "b.png")
    touch_image(tmp_path / "outside" / "c.png")
    lists = tmp_path / "imgs"
    absolute = (tmp_path / "imgs" / "sub" / "b.png").resolve()
    (lists / "set.txt").write_text(
        f"# evaluation subset\n\n./a.jpg\n{absolute}\n  ../outside/c.png  \n# end\n", encoding="utf-8"
    )
    entries = list_images(lists / "set.txt")
    assert [e.name for e in entries] == ["a.jpg", "c.png", "sub/b.png"]
    assert entries[1].path == lists / "../outside/c.png"
    # .lst works the same
    (lists / "set.lst").write_text("a.jpg\n")
    assert [e.name for e in list_images(lists / "set.lst")] == ["a.jpg"]


def test_list_file_errors(tmp_path):
    touch_image(tmp_path / "a.jpg")
    (tmp_path / "missing.txt").write_text("a.jpg\nnope1.jpg\nnope2.png\n")
    with pytest.raises(FileNotFoundError, match=r"2 listed file\(s\) not found: line 2: nope1.jpg, line 3: nope2.png"):
        list_images(tmp_path / "missing.txt")
    (tmp_path / "dup.txt").write_text("a.jpg\n./a.jpg\n")
    with pytest.raises(InputError, match="line 2"):
        list_images(tmp_path / "dup.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(InputError, match="names no images"):
        list_images(tmp_path / "empty.txt")


# ----------------------------------------------------------------------------------------------------------------------
# labels


def test_labels(tmp_path):
    touch_image(tmp_path / "a.JPEG")
    touch_image(tmp_path / "b.JPEG")
    (tmp_path / "labels.csv").write_text("file,label,wnid\na.JPEG,7,n01\nb.JPEG,999,n02\nc.JPEG,3,n03\n")
    labels = load_labels(tmp_path / "labels.csv")
    assert labels == {"a.JPEG": 7, "b.JPEG": 999, "c.JPEG": 3}
    entries = list_images(tmp_path, labels=tmp_path / "labels.csv")
    assert [(e.name, e.label) for e in entries] == [("a.JPEG", 7), ("b.JPEG", 999)]
    assert all(e.has_label for e in entries)


def test_labels_missing_an_image(tmp_path):
    touch_image(tmp_path / "a.jpg")
    touch_image(tmp_path / "z.jpg")
    (tmp_path / "labels.csv").write_text("file,label\na.jpg,1\n")
    with pytest.raises(InputError, match=r"1 image\(s\) have no label: z.jpg"):
        list_images(tmp_path, labels=tmp_path / "labels.csv")


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,label\na.jpg,1\n", "columns 'file' and 'label'"),
        ("file,label\na.jpg,cat\n", "line 2: label 'cat'"),
        ("file,label\na.jpg,-2\n", "negative"),
        ("file,label\na.jpg,1\na.jpg,2\n", "listed twice"),
        ("file,label\n", "no labels"),
    ],
)
def test_bad_label_files(tmp_path, text, message):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        load_labels(tmp_path / "labels.csv")


def test_non_utf8_list_and_labels_files(tmp_path):
    (tmp_path / "set.txt").write_bytes(b"caf\xe9.jpg\n")
    with pytest.raises(InputError, match="set.txt: list file is not UTF-8"):
        list_images(tmp_path / "set.txt")
    (tmp_path / "labels.csv").write_bytes(b"file,label\ncaf\xe9.jpg,1\n")
    with pytest.raises(InputError, match="labels.csv: labels file is not UTF-8"):
        load_labels(tmp_path / "labels.csv")


def test_symlink_loop_is_listed_once(tmp_path):
    touch_image(tmp_path / "sub" / "a.png")
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)
    assert [e.name for e in list_images(tmp_path)] == ["sub/a.png"]


def test_labels_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        load_labels(tmp_path / "labels.csv")


# ----------------------------------------------------------------------------------------------------------------------
# embedded samples


SAMPLE_NAMES = ["astronaut.png", "chelsea.png", "coffee.png", "grace_hopper.jpg", "rocket.jpg", "stereo_motorcycle.png"]


def test_samples_load_offline_and_are_colour(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted while loading the embedded samples")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    entries = list_images("samples")
    assert [e.name for e in entries] == SAMPLE_NAMES == list(data.SAMPLE_NAMES)
    for entry in entries:
        assert entry.path.is_file()
        img = load_image(entry.path)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert min(img.shape[:2]) >= 256
        assert not is_gray(img), entry.name
    result = scan_images(entries)
    assert len(result.kept) == 6 and not result.gray_excluded and not result.bad


def test_samples_match_the_library_loaders():
    import skimage.data
    from matplotlib import cbook

    by_name = {e.name: load_image(e.path) for e in list_images("samples")}
    np.testing.assert_array_equal(by_name["astronaut.png"], skimage.data.astronaut())
    np.testing.assert_array_equal(by_name["chelsea.png"], skimage.data.chelsea())
    np.testing.assert_array_equal(by_name["coffee.png"], skimage.data.coffee())
    np.testing.assert_array_equal(by_name["rocket.jpg"], skimage.data.rocket())
    np.testing.assert_array_equal(by_name["stereo_motorcycle.png"], skimage.data.stereo_motorcycle()[0])
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        np.testing.assert_array_equal(by_name["grace_hopper.jpg"], np.asarray(img.convert("RGB")))


def test_samples_name_versus_folder(tmp_path, monkeypatch):
    touch_image(tmp_path / "samples" / "mine.png")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="./samples"):
        assert len(list_images("samples")) == 6
    assert [e.name for e in list_images("./samples")] == ["mine.png"]
    assert [e.name for e in list_images(Path("samples"))] == ["mine.png"]


# ----------------------------------------------------------------------------------------------------------------------
# resizing


def numpy_half_pixel_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Float reference of OpenCV's INTER_LINEAR geometry: half-pixel centres, edge-clamped taps, no antialias."""

    def taps(src, dst):
        f = (np.arange(dst) + 0.5) * src / dst - 0.5
        f = np.clip(f, 0, src - 1)
        i0 = np.floor(f).astype(int)
        i1 = np.minimum(i0 + 1, src - 1)
        return i0, i1, f - i0

    y0, y1, fy = taps(img.shape[0], out_h)
    x0, x1, fx = taps(img.shape[1], out_w)
    x = img.astype(np.float64)
    rows = x[y0] * (1 - fy)[:, None, None] + x[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def opencv_fixed_point_scalar(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Pixel-by-pixel restatement of OpenCV's 8-bit INTER_LINEAR (independent of the vectorised code under test)."""
    src_h, src_w, channels = img.shape
    if (src_h, src_w) == (2 * out_h, 2 * out_w):  # OpenCV's area shortcut for an exact 2x shrink
        out = np.zeros((out_h, out_w, channels), dtype=np.uint8)
        for y in range(out_h):
            for x in range(out_w):
                for c in range(channels):
                    s = sum(int(img[2 * y + dy, 2 * x + dx, c]) for dy in (0, 1) for dx in (0, 1))
                    out[y, x, c] = (s + 2) // 4
        return out

    def coefficient(d, src, dst, clamp):
        f = np.float32((d + 0.5) * (1.0 / (dst / src)) - 0.5)
        i = int(np.floor(f))
        frac = np.float32(f - np.float32(i))
        if clamp and i < 0:
            i, frac = 0, np.float32(0)
        if clamp and i >= src - 1:
            i, frac = src - 1, np.float32(0)
        w0 = int(np.rint((np.float32(1) - frac) * np.float32(2048)))
        w1 = int(np.rint(frac * np.float32(2048)))
        return i, w0, w1

    out = np.zeros((out_h, out_w, channels), dtype=np.uint8)
    for y in range(out_h):
        sy, b0, b1 = coefficient(y, src_h, out_h, clamp=False)
        r0, r1 = min(max(sy, 0), src_h - 1), min(max(sy + 1, 0), src_h - 1)
        for x in range(out_w):
            sx, a0, a1 = coefficient(x, src_w, out_w, clamp=True)
            sx1 = min(sx + 1, src_w - 1)
            for c in range(channels):
                h0 = int(img[r0, sx, c]) * a0 + int(img[r0, sx1, c]) * a1
                h1 = int(img[r1, sx, c]) * a0 + int(img[r1, sx1, c]) * a1
                v = (((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16)
                out[y, x, c] = min(255, max(0, (v + 2) >> 2))
    return out


@pytest.mark.parametrize("shape, out", [((7, 11), (5, 13)), ((9, 4), (16, 3)), ((8, 10), (4, 5)), ((3, 3), (8, 8))])
def test_opencv_bilinear_matches_pixel_by_pixel_restatement(shape, out):
    img = random_rgb(*shape, seed=sum(shape))
    np.testing.assert_array_equal(resize_bilinear_opencv(img, *out), opencv_fixed_point_scalar(img, *out))


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), out_h=st.integers(1, 16), out_w=st.integers(1, 16),
    channels=st.sampled_from([1, 3]), seed=st.integers(0, 2**16),
)
def test_property_bilinear_matches_restatement(h, w, out_h, out_w, channels, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    expected = opencv_fixed_point_scalar(img, out_h, out_w)
    np.testing.assert_array_equal(resize_bilinear_opencv(img, out_h, out_w), expected)


def test_squash256_against_float_half_pixel_formula():
    for seed, shape in enumerate([(300, 451), (40, 70), (512, 512), (97, 256)]):
        img = random_rgb(*shape, seed=seed)
        out = resize_image(img, "squash256").astype(float)
        assert out.shape == (256, 256, 3)
        reference = numpy_half_pixel_bilinear(img, 256, 256)
        # fixed-point weights with 11 bits and truncating shifts: at most one level from the exact value, rounded
        assert np.abs(out - reference).max() <= 1.0
        assert np.abs(out - np.floor(reference + 0.5)).mean() < 0.5


def test_squash256_on_a_photo():
    photo = load_image(dict((e.name, e.path) for e in list_images("samples"))["chelsea.png"])
    out = resize_image(photo, "squash256").astype(float)
    assert np.abs(out - numpy_half_pixel_bilinear(photo, 256, 256)).max() <= 1.0


def test_bilinear_is_exact_on_cv2_when_available():
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not a dependency; this check runs where it is installed")
    rng = np.random.default_rng(11)
    for _ in range(50):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 90, 4))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(resize_bilinear_opencv(img, oh, ow), cv2.resize(img, (ow, oh)))


def test_resize_edge_properties():
    const = np.full((37, 53, 3), 77, dtype=np.uint8)
    assert (resize_image(const, "squash256") == 77).all()
    img = random_rgb(256, 256)
    np.testing.assert_array_equal(resize_image(img, "squash256"), img)
    img = random_rgb(512, 512, seed=2)
    blocks = img.astype(int).reshape(256, 2, 256, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(resize_image(img, "squash256"), (blocks + 2) // 4)
    gray2d = random_rgb(10, 12)[..., 0]
    assert resize_bilinear_opencv(gray2d, 4, 5).shape == (4, 5)
    with pytest.raises(InputError):
        resize_image(img.astype(np.float32), "squash256")


def test_crop256_geometry():
    wide = random_rgb(256, 400, seed=4)  # short side already 256: only the crop happens
    np.testing.assert_array_equal(resize_image(wide, "crop256"), wide[:, 72:328])
    tall = random_rgb(401, 256, seed=5)  # offset round(145 / 2) = 72 (round half to even: 72.5 -> 72)
    np.testing.assert_array_equal(resize_image(tall, "crop256"), tall[72:328])
    small = random_rgb(100, 150, seed=6)
    out = resize_image(small, "crop256")
    assert out.shape == (256, 256, 3)
    np.testing.assert_array_equal(out, resize_bilinear_opencv(small, 256, 384)[:, 64:320])


def test_native_and_registry():
    img = random_rgb(13, 17)
    assert resize_image(img, "native") is img
    assert set(RESIZE_POLICIES) == {"squash256", "crop256", "native"}
    for name, policy in RESIZE_POLICIES.items():
        info = data.resize_policy_info(name)
        assert info["name"] == name and info["description"]
        json.dumps(info)
        assert resize_image(img, policy).shape[:2] == policy.output_size(13, 17)
    with pytest.raises(InputError, match="squash256, crop256, native"):
        resize_image(img, "bicubic512")


# ----------------------------------------------------------------------------------------------------------------------
# tensors and saving


def test_to_tensor_and_back_is_exact():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None].repeat(3, axis=2)
    t = to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 16, 16)
    assert float(t.min()) == 0.0 and float(t.max()) == 1.0
    np.testing.assert_array_equal(to_uint8(t), img)
    batch = torch.stack([t, t])
    assert to_uint8(batch).shape == (2, 16, 16, 3)


def test_to_uint8_rounds_half_up_and_clips():
    t = torch.tensor([0.5 / 255, 1.5 / 255, 2.5 / 255, -0.3, 1.7], dtype=torch.float64).reshape(1, 1, 5)
    np.testing.assert_array_equal(to_uint8(t)[0, :, 0], [1, 2, 3, 0, 255])
    with pytest.raises(InputError, match="NaN"):
        to_uint8(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(InputError):
        to_uint8(torch.zeros(2, 2))


@pytest.mark.parametrize("kind", ["uint8_hwc", "float_chw", "gray_chw", "gray_hw"])
def test_save_image_round_trip(tmp_path, kind):
    img = random_rgb(6, 9, seed=8)
    source = {
        "uint8_hwc": img,
        "float_chw": to_tensor(img),
        "gray_chw": to_tensor(img[..., :1]),
        "gray_hw": img[..., 0],
    }[kind]
    path = save_image(source, tmp_path / "out" / "x.png")
    back = load_image(path)
    expected = img if kind in ("uint8_hwc", "float_chw") else np.repeat(img[..., :1], 3, axis=2)
    np.testing.assert_array_equal(back, expected)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temporary file left


def test_save_image_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_image(random_rgb(4, 4), tmp_path / "x.png")
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(random_rgb(4, 4, seed=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_save_image_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match=r"\.png"):
        save_image(random_rgb(4, 4), tmp_path / "x.jpg")
    with pytest.raises(InputError):
        save_image(torch.zeros(4, 3, 3), tmp_path / "x.png")
    with pytest.raises(InputError):
        save_image(np.zeros((4, 4, 3), dtype=np.int32), tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------------------------
# scanning and dataset


def _mixed_folder(root: Path) -> None:
    touch_image(root / "colour1.png", seed=1)
    touch_image(root / "colour2.jpg", seed=2)
    Image.fromarray(np.full((6, 8), 90, dtype=np.uint8)).save(root / "gray.png")
    (root / "broken.jpg").write_bytes(_jpeg_bytes()[:300])


def test_scan_strict_and_skip_bad(tmp_path):
    _mixed_folder(tmp_path)
    entries = list_images(tmp_path)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        scan_images(entries)
    result = scan_images(entries, skip_bad=True)
    assert [e.name for e in result.kept] == ["colour1.png", "colour2.jpg"]
    assert [e.name for e in result.gray_excluded] == ["gray.png"]
    assert len(result.bad) == 1 and result.bad[0][0] == "broken.jpg" and "truncated" in result.bad[0][1]
    assert result.chroma["gray.png"] == 0.0
    summary = result.summary()
    assert summary["gray_excluded"] == ["gray.png"] and summary["bad"][0]["file"] == "broken.jpg"
    json.dumps(summary)
    threaded = scan_images(entries, skip_bad=True, workers=2)
    assert (threaded.kept, threaded.gray_excluded, threaded.bad) == (result.kept, result.gray_excluded, result.bad)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        scan_images(entries, workers=2)
    kept_all = scan_images(entries, skip_bad=True, exclude_gray=False)
    assert [e.name for e in kept_all.kept] == ["colour1.png", "colour2.jpg", "gray.png"]


def test_dataset_through_dataloader_with_workers(tmp_path):
    for i in range(5):
        touch_image(tmp_path / f"img{i}.png", seed=i, size=(20 + i, 12))
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(f"img{i}.png,{i * 10}\n" for i in range(5)))
    entries = list_images(tmp_path, labels=tmp_path / "labels.csv")
    dataset = ImageDataset(entries, "squash256")
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (5, 3, 256, 256) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert sum((b["name"] for b in batches), []) == [f"img{i}.png" for i in range(5)]
    assert torch.cat([b["label"] for b in batches]).tolist() == [0, 10, 20, 30, 40]
    expected = to_tensor(resize_image(load_image(tmp_path / "img3.png"), "squash256"))
    assert torch.equal(images[3], expected)
    batch = data.load_batch(entries[:3], "crop256")
    assert batch.shape == (3, 3, 256, 256) and batch.dtype == torch.float32
    with pytest.raises(InputError, match="differ in size"):
        data.load_batch(entries, "native")
    native = ImageDataset(list_images(tmp_path), "native")[0]
    assert native["image"].shape == (3, 12, 20) and native["label"] == -1


def test_dataset_read_error_from_a_worker_names_the_file(tmp_path):
    touch_image(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(_jpeg_bytes()[:400])
    dataset = ImageDataset(list_images(tmp_path), "squash256")
    with pytest.raises(ImageReadError) as direct:
        dataset[0]
    assert direct.value.path == tmp_path / "bad.jpg" and "truncated" in direct.value.reason
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1)
    with pytest.raises(ImageReadError) as info:
        list(loader)
    assert str(info.value.path) == str(tmp_path / "bad.jpg")
    assert "truncated" in info.value.reason and "\n" not in str(info.value)
    import pickle

    copy = pickle.loads(pickle.dumps(direct.value))
    assert (copy.path, copy.reason) == (direct.value.path, direct.value.reason)


# ----------------------------------------------------------------------------------------------------------------------
# pairing


def entries(*names: str) -> list[ImageEntry]:
    return [ImageEntry(n, Path("/nowhere") / n) for n in names]


def test_pair_by_exact_name():
    gt = entries("a.jpg", "sub/b.png")
    pairs = pair_by_name(gt, entries("sub/b.png", "a.jpg"))
    assert [(g.name, p.name) for g, p in pairs] == [("a.jpg", "a.jpg"), ("sub/b.png", "sub/b.png")]


def test_pair_by_stem_when_extensions_differ():
    gt = entries("a.JPEG", "sub/b.jpg", "c.d.png")
    pairs = pair_by_name(gt, entries("a.png", "sub/b.png", "c.d.png"))
    assert [(g.name, p.name) for g, p in pairs] == [("a.JPEG", "a.png"), ("sub/b.jpg", "sub/b.png"),
                                                     ("c.d.png", "c.d.png")]
    with pytest.raises(InputError, match="same relative path\\)"):
        pair_by_name(gt, entries("a.png", "sub/b.png", "c.d.png"), by="name")
    assert data.output_name("sub/b.JPEG") == "sub/b.png"
    assert pair_by_name(gt, entries(*(data.output_name(g.name) for g in gt)))[0][1].name == "a.png"
    assert data.name_stem("sub/x.tar.gz") == "sub/x.tar"
    assert data.name_stem("noext") == "noext"
    assert data.name_stem(".hidden") == ".hidden"


@settings(max_examples=30, deadline=None)
@given(
    stems=st.sets(
        st.tuples(st.sampled_from(["", "sub/", "sub/deep/"]), st.text("ab_0.", min_size=1, max_size=4)).map(
            lambda t: t[0] + "x" + t[1]
        ),
        min_size=1,
        max_size=12,
    ),
    extensions=st.lists(st.sampled_from([".jpg", ".JPEG", ".png", ".bmp"]), min_size=12, max_size=12),
    seed=st.integers(0, 1000),
)
def test_property_predictions_named_by_output_name_always_pair(stems, extensions, seed):
    gt = entries(*sorted(stem + ext for stem, ext in zip(sorted(stems), extensions)))
    preds = entries(*(data.output_name(g.name) for g in gt))
    preds = [preds[i] for i in np.random.default_rng(seed).permutation(len(preds))]
    pairs = pair_by_name(gt, preds)
    assert [g for g, _ in pairs] == gt
    assert all(data.name_stem(g.name) == data.name_stem(p.name) for g, p in pairs)


def test_pair_errors_name_missing_and_extra():
    with pytest.raises(InputError) as info:
        pair_by_name(entries("a.jpg", "b.jpg", "c.jpg"), entries("a.png", "c.png", "d.png", "sub/e.png"))
    message = str(info.value)
    assert "1 ground-truth file(s) without prediction: b.jpg" in message
    assert "2 prediction file(s) without ground truth: d.png, sub/e.png" in message


def test_pair_error_lists_at_most_twenty_names():
    gt = entries(*[f"g{i:03d}.png" for i in range(50)])
    with pytest.raises(InputError) as info:
        pair_by_name(gt, entries("zzz.png"))
    message = str(info.value)
    assert "50 ground-truth file(s)" in message and "g019.png" in message and "g020.png" not in message
    assert "... and 30 more" in message


def test_pair_by_stem_ambiguity_is_an_error():
    with pytest.raises(InputError, match=r"predictions has several files with the same stem \('a': a.jpg / a.png\)"):
        pair_by_name(entries("a.jpg"), entries("a.jpg", "a.png"))
    with pytest.raises(InputError, match="ground truth has several files"):
        pair_by_name(entries("x.jpg", "x.png"), entries("x.png"))
    with pytest.raises(InputError, match="by must be"):
        pair_by_name(entries("a.png"), entries("a.png"), by="fuzzy")


# ----------------------------------------------------------------------------------------------------------------------
# development data (../shared/data)


@pytest.mark.shared_data
@pytest.mark.parametrize("folder", ["imagenet-val-sample", "bsds-trainval"])
def test_shared_folders_load_and_are_colour(shared_data, folder):
    labels_csv = shared_data / folder / "labels.csv"
    entries_ = list_images(shared_data / folder, labels=labels_csv if labels_csv.is_file() else None)
    assert len(entries_) >= 300
    result = scan_images(entries_)  # strict: any unreadable file fails the test, naming it
    assert not result.gray_excluded, [e.name for e in result.gray_excluded]
    assert len(result.kept) == len(entries_)
    assert min(result.chroma.values()) > 2.0
    if labels_csv.is_file():
        assert all(0 <= e.label < 1000 for e in entries_)
