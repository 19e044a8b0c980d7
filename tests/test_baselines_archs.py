"""Published architectures: output shapes, loaders that accept the authors' released key layout (strict, with a
readable error for a wrong key), the 313 ab bins, and export to the contract with ONNX Runtime parity."""

from __future__ import annotations

import os
import re
import stat

import numpy as np
import onnx
import pytest
import torch

from baselines.archs import iizuka, pix2pix, zhang_eccv16, zhang_siggraph17
from baselines.archs._common import read_weights_file
from baselines.contract import ContractError, check_model
from baselines.export import PARITY_TOLERANCE, export_baseline
from baselines.registry import architecture_names, get_architecture
from baselines.runner import OnnxColorizer

# ------------------------------------------------------------------------------------------------ authors' layouts
# Written out from the authors' code (richzhang/colorization colorizers/eccv16.py and siggraph17.py,
# junyanz/pytorch-CycleGAN-and-pix2pix networks.py), independently of the modules under test.


def _conv(sd, prefix, cin, cout, k, bias=True):
    sd[f"{prefix}.weight"] = torch.randn(cout, cin, k, k) * 0.05
    if bias:
        sd[f"{prefix}.bias"] = torch.randn(cout) * 0.05


def _convT(sd, prefix, cin, cout, k, bias=True):
    sd[f"{prefix}.weight"] = torch.randn(cin, cout, k, k) * 0.05
    if bias:
        sd[f"{prefix}.bias"] = torch.randn(cout) * 0.05


def _bn(sd, prefix, c, counter=True):
    sd[f"{prefix}.weight"] = torch.rand(c) + 0.5
    sd[f"{prefix}.bias"] = torch.randn(c) * 0.1
    sd[f"{prefix}.running_mean"] = torch.randn(c) * 0.1
    sd[f"{prefix}.running_var"] = torch.rand(c) + 0.5
    if counter:
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def _vgg_blocks(sd, first_in, counter):
    """model1 .. model7 of both Zhang et al. models: convs at even indices, BatchNorm last."""
    blocks = {  # name: (channels, index of the BatchNorm)
        "model1": ([first_in, 64, 64], 4),
        "model2": ([64, 128, 128], 4),
        "model3": ([128, 256, 256, 256], 6),
        "model4": ([256, 512, 512, 512], 6),
        "model5": ([512, 512, 512, 512], 6),
        "model6": ([512, 512, 512, 512], 6),
        "model7": ([512, 512, 512, 512], 6),
    }
    for name, (channels, bn_index) in blocks.items():
        for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
            _conv(sd, f"{name}.{2 * i}", cin, cout, 3)
        _bn(sd, f"{name}.{bn_index}", channels[-1], counter)


def eccv16_released_layout(counter=True):
    sd = {}
    _vgg_blocks(sd, 1, counter)
    _convT(sd, "model8.0", 512, 256, 4)
    _conv(sd, "model8.2", 256, 256, 3)
    _conv(sd, "model8.4", 256, 256, 3)
    _conv(sd, "model8.6", 256, 313, 1)
    _conv(sd, "model_out", 313, 2, 1, bias=False)
    return sd


def siggraph17_released_layout(counter=True):
    sd = {}
    _vgg_blocks(sd, 4, counter)
    _convT(sd, "model8up.0", 512, 256, 4)
    _conv(sd, "model3short8.0", 256, 256, 3)
    _conv(sd, "model8.1", 256, 256, 3)
    _conv(sd, "model8.3", 256, 256, 3)
    _bn(sd, "model8.5", 256, counter)
    _convT(sd, "model9up.0", 256, 128, 4)
    _conv(sd, "model2short9.0", 128, 128, 3)
    _conv(sd, "model9.1", 128, 128, 3)
    _bn(sd, "model9.3", 128, counter)
    _convT(sd, "model10up.0", 128, 128, 4)
    _conv(sd, "model1short10.0", 64, 128, 3)
    _conv(sd, "model10.1", 128, 128, 3)
    _conv(sd, "model_class.0", 256, 529, 1)
    _conv(sd, "model_out.0", 128, 2, 1)
    return sd


def unet_released_layout(input_nc, output_nc, num_downs, ngf):
    """junyanz UnetGenerator keys: outermost model.model.{0 conv, 1 sub, 3 convT}; middle .model.{1 conv, 2 BN,
    3 sub, 5 convT, 6 BN}; innermost .model.{1 conv, 3 convT, 4 BN}; BatchNorm => no conv bias except outermost up."""
    sd = {}
    levels = [(output_nc, ngf, input_nc), (ngf, ngf * 2, ngf), (ngf * 2, ngf * 4, ngf * 2), (ngf * 4, ngf * 8, ngf * 4)]
    levels += [(ngf * 8, ngf * 8, ngf * 8)] * (num_downs - 4)
    prefix = "model.model"
    for depth, (outer, inner, cin) in enumerate(levels):
        if depth == 0:
            _conv(sd, f"{prefix}.0", cin, inner, 4, bias=False)
            _convT(sd, f"{prefix}.3", inner * 2, outer, 4, bias=True)
            prefix = f"{prefix}.1.model"
        elif depth == len(levels) - 1:
            _conv(sd, f"{prefix}.1", cin, inner, 4, bias=False)
            _convT(sd, f"{prefix}.3", inner, outer, 4, bias=False)
            _bn(sd, f"{prefix}.4", outer)
        else:
            _conv(sd, f"{prefix}.1", cin, inner, 4, bias=False)
            _bn(sd, f"{prefix}.2", inner)
            _convT(sd, f"{prefix}.5", inner * 2, outer, 4, bias=False)
            _bn(sd, f"{prefix}.6", outer)
            prefix = f"{prefix}.3.model"
    return sd


def _assert_loaded(model, sd):
    state = model.state_dict()
    for key, value in sd.items():
        assert torch.equal(state[key], value), key


def _wrong_key(sd):
    bad = dict(sd)
    key = next(k for k in bad if k.endswith(".weight"))
    bad[key.replace(".weight", ".wieght")] = bad.pop(key)
    return bad, key


# ------------------------------------------------------------------------------------------------ the 313 bins


def test_ab_bins_are_313_in_gamut_grid_points():
    bins = zhang_eccv16.ab_bins()
    assert bins.shape == (313, 2)
    assert len({tuple(p) for p in bins}) == 313
    assert np.all(bins % 10 == 0) and bins.min() >= -110 and bins.max() <= 110
    assert tuple(bins[0]) == (-90.0, 50.0) and tuple(bins[-1]) == (100.0, 0.0)
    # a-major, b ascending (the order of the authors' pts_in_hull.npy)
    order = np.lexsort((bins[:, 1], bins[:, 0]))
    assert np.array_equal(order, np.arange(313))
    # The neutral bin and a saturated red/blue are in; a bin far outside sRGB is not.
    assert any((bins == (0, 0)).all(1)) and any((bins == (80, 70)).all(1)) and any((bins == (60, -110)).all(1))
    assert not any((bins == (-110, -110)).all(1))


def test_ab_bins_cover_the_srgb_gamut_and_no_more():
    """Every 8-bit sRGB colour (a 52-level grid per channel, 0 and 255 included) quantises (nearest step-10 grid
    point) to one of the bins, and every bin lies within 1.5 grid steps of an sRGB colour's ab."""
    from scipy.spatial import cKDTree
    from skimage.color import rgb2lab

    levels = np.unique(np.r_[np.arange(0, 256, 5), 255])
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 1, 3) / 255.0
    ab = rgb2lab(rgb).reshape(-1, 3)[:, 1:]
    bins = zhang_eccv16.ab_bins()
    in_table = {tuple(p) for p in bins}
    quantised = {tuple(p) for p in np.round(ab / 10.0) * 10.0}
    assert sorted(quantised - in_table) == []
    distance, _ = cKDTree(ab).query(bins)
    assert distance.max() < 15.0


def _annealed_mean(logits: torch.Tensor, temperature: float, centres=None) -> np.ndarray:
    """Zhang et al. eq. 5 written from the paper: z = softmax(scores), f_T(z) = exp(log z / T) / sum(...),
    H = sum_q f_T(z)_q * centre_q (the 313 bins unless given). logits (N, 313, h, w) -> ab (N, 2, h, w), float64."""
    scores = logits.double().numpy()
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    f = np.exp(np.log(z) / temperature)
    f /= f.sum(axis=1, keepdims=True)
    centres = zhang_eccv16.ab_bins() if centres is None else centres
    return np.einsum("nqhw,qc->nchw", f, centres)


def test_eccv16_decoding_is_the_annealed_mean_of_eq5():
    net = zhang_eccv16.build()
    weight = net.model_out.weight.detach().reshape(2, 313).t().double() * 110
    np.testing.assert_allclose(weight.numpy(), zhang_eccv16.ab_bins(), atol=1e-4)
    assert not net.model_out.weight.requires_grad
    assert net.annealing_temperature == pytest.approx(0.38)
    logits = torch.randn(2, 313, 3, 3, generator=torch.Generator().manual_seed(0)) * 2.0
    for temperature in (0.38, 1.0):
        net.annealing_temperature = temperature
        ab = net.decode(logits, (3, 3)).double().numpy()  # same size: the bilinear resize is the identity
        np.testing.assert_allclose(ab, _annealed_mean(logits, temperature), atol=1e-3)
    # Native I/O of the network: L* in, ab out at the input size (bilinear x4 from 1/4 resolution).
    assert net.eval()(torch.rand(1, 1, 32, 32) * 100).shape == (1, 2, 32, 32)
    with pytest.raises(ValueError, match="temperature must be positive"):
        zhang_eccv16.build(temperature=0.0)


# ------------------------------------------------------------------------------------------------ loaders


def _released_eccv16_forward(net, sd, lightness):
    """The authors' released PyTorch forward, written from colorizers/eccv16.py: softmax over the model8 scores (no
    scaling), the file's model_out 1x1 conv, bilinear x4 (align_corners False), x110."""
    scores = net.logits(lightness)
    ab_quarter = torch.einsum("nqhw,cq->nchw", torch.softmax(scores, dim=1), sd["model_out.weight"][:, :, 0, 0])
    return torch.nn.functional.interpolate(ab_quarter, scale_factor=4, mode="bilinear", align_corners=False) * 110


def test_eccv16_loads_released_layout_and_reproduces_the_released_forward():
    sd = eccv16_released_layout(counter=False)  # files converted from Caffe have no BatchNorm counters
    # Random weights give class scores in the thousands (a one-hot distribution); scale the last layer so that the
    # scores are O(1) and the temperature matters.
    sd["model8.6.weight"] /= 3000.0
    sd["model8.6.bias"] /= 3000.0
    net = zhang_eccv16.build()
    bad, key = _wrong_key(sd)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        zhang_eccv16.load_weights(net, bad)
    zhang_eccv16.load_weights(net, sd, released=True)
    _assert_loaded(net, sd)
    assert net.annealing_temperature == 1.0
    lightness = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2)) * 100
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(lightness), _released_eccv16_forward(net, sd, lightness))
        # Weights trained here (plain class scores) decode with the paper's T = 0.38.
        zhang_eccv16.load_weights(net, sd, released=False)
        assert net.annealing_temperature == pytest.approx(0.38)
        # A fixed temperature holds whatever the weights: the paper's T applied to the release's scores.
        fixed = zhang_eccv16.build(temperature=0.38)
        zhang_eccv16.load_weights(fixed, sd, released=True)
        assert fixed.annealing_temperature == pytest.approx(0.38)
        annealed = fixed.eval()(lightness)
        file_centres = sd["model_out.weight"][:, :, 0, 0].t().double().numpy() * 110
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(_annealed_mean(net.logits(lightness), 0.38, file_centres)).float(),
            scale_factor=4,
            mode="bilinear",
        )
        torch.testing.assert_close(annealed, expected, atol=1e-3, rtol=0)
        assert not torch.allclose(annealed, _released_eccv16_forward(net, sd, lightness), atol=1e-2)


def test_siggraph17_loads_released_layout():
    sd = siggraph17_released_layout(counter=True)
    net = zhang_siggraph17.build()
    bad = dict(sd)
    bad["model_class.0.weight"] = torch.zeros(313, 256, 1, 1)
    with pytest.raises(ValueError, match=r"model_class\.0\.weight: shape \(313, 256, 1, 1\)"):
        zhang_siggraph17.load_weights(net, bad)
    zhang_siggraph17.load_weights(net, sd)
    _assert_loaded(net, sd)
    l_channel = torch.rand(1, 1, 32, 32) * 100
    ab = net.eval()(l_channel)
    assert ab.shape == (1, 2, 32, 32) and ab.abs().max() <= 110


def test_pix2pix_loads_junyanz_unet_layout(tmp_path):
    sd = unet_released_layout(input_nc=1, output_nc=3, num_downs=6, ngf=8)
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    loaded, released = read_weights_file(path)
    assert released
    net = pix2pix.build(num_downs=6, ngf=8)
    pix2pix.load_weights(net, loaded)
    _assert_loaded(net, sd)
    # The authors' 3 -> 3 generators (unet_256: 8 levels) load too; narrow here to keep the test fast.
    other = pix2pix.UnetGenerator(input_nc=3, output_nc=3, num_downs=8, ngf=4)
    pix2pix.load_weights(other, unet_released_layout(3, 3, 8, 4))
    bad, key = _wrong_key(sd)
    with pytest.raises(ValueError, match="missing keys") as error:
        pix2pix.load_weights(pix2pix.build(num_downs=6, ngf=8), bad)
    assert key in str(error.value) and "unexpected keys" in str(error.value)


@pytest.mark.parametrize("name", ["iizuka", "pix2pix-sal", "uresnet-sal"])
def test_project_layout_round_trip_through_checkpoint(name, tmp_path):
    """Architectures without a PyTorch release: this project's layout, saved as a trained-here checkpoint."""
    arch = get_architecture(name)
    torch.manual_seed(1)
    net = arch.build(**arch.test_options)
    for p in net.state_dict().values():
        if p.is_floating_point():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path / "trained.pt"
    torch.save({"format": "baseline", "generator": net.state_dict()}, path)
    loaded, released = read_weights_file(path)
    assert not released
    other = arch.build(**arch.test_options)
    arch.load_weights(other, loaded, released=released)
    _assert_loaded(other, net.state_dict())
    bad, key = _wrong_key(loaded)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        arch.load_weights(arch.build(**arch.test_options), bad)


def test_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_weights_file(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a weights file")
    with pytest.raises(ValueError, match="junk.pth") as caught:
        read_weights_file(junk)
    assert len(str(caught.value).splitlines()) == 1  # torch's multi-line advice is cut to the line that says why


# ------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("name", architecture_names())
def test_output_shapes_and_range(name):
    arch = get_architecture(name)
    torch.manual_seed(0)
    module = arch.colorizer(arch.build(**arch.test_options)).eval()
    size = arch.test_size
    with torch.no_grad():
        out = module(torch.rand(2, 1, size, size))
    outputs = out if isinstance(out, tuple) else (out,)
    assert outputs[0].shape == (2, 3, size, size)
    assert len(outputs) == (2 if arch.has_saliency else 1)
    if arch.has_saliency:
        assert outputs[1].shape == (2, 1, size, size)
    for o in outputs:
        assert torch.isfinite(o).all() and o.min() >= 0 and o.max() <= 1


def test_iizuka_native_outputs():
    chroma, logits = iizuka.build(global_size=64, num_classes=7).eval()(torch.rand(1, 1, 48, 48))
    assert chroma.shape == (1, 2, 48, 48) and logits.shape == (1, 7)


def test_gray_of_neutral_input_maps_to_lab_lightness():
    from skimage.color import rgb2lab

    from baselines.archs._common import gray01_to_lab_l

    y = torch.linspace(0, 1, 11, dtype=torch.float64).reshape(1, 1, 1, 11)
    expected = rgb2lab(np.repeat(y.numpy().reshape(11, 1, 1), 3, axis=2))[..., 0].ravel()
    np.testing.assert_allclose(gray01_to_lab_l(y).ravel().numpy(), expected, atol=1e-9)


# ------------------------------------------------------------------------------------------------ export


def _rename_input(gray):
    gray.name = "input"


def _drop_last_dim(gray):
    del gray.type.tensor_type.shape.dim[3]


def _static_batch(gray):
    gray.type.tensor_type.shape.dim[0].dim_value = 1  # dim_value and dim_param are a oneof: replaces "batch"


BREAKAGES = (
    (_rename_input, "input must be named 'gray', found ['input']"),
    (_drop_last_dim, "input 'gray' has rank 3"),
    (_static_batch, "input 'gray' has a static batch dimension 1"),
)


@pytest.mark.parametrize("name", architecture_names())
def test_export_parity_and_contract(name, tmp_path):
    arch = get_architecture(name)
    out = tmp_path / f"{name}.onnx"
    result = export_baseline(name, out_path=out, input_size=arch.test_size, **arch.test_options)
    assert result.max_abs_diff <= PARITY_TOLERANCE
    assert result.info.input_size == arch.test_size and result.info.has_saliency == arch.has_saliency
    assert "random initialisation" in result.info.source
    colorizer = OnnxColorizer(out, device="cpu")
    rgb = colorizer.colorize_at_size(torch.rand(3, 1, arch.test_size, arch.test_size))
    assert rgb.shape == (3, 3, arch.test_size, arch.test_size)
    # The validator rejects this very model once broken: wrong input name, wrong rank, static batch.
    model = onnx.load(str(out))
    for break_input, message in BREAKAGES:
        broken = onnx.ModelProto()
        broken.CopyFrom(model)
        break_input(next(i for i in broken.graph.input if i.name == "gray"))
        with pytest.raises(ContractError, match=re.escape(message)):
            check_model(broken, out)


def test_export_with_weights_records_their_sha(tmp_path):
    sd = unet_released_layout(input_nc=1, output_nc=3, num_downs=5, ngf=8)
    weights = tmp_path / "w.pth"
    torch.save(sd, weights)
    result = export_baseline(
        "pix2pix", weights=weights, out_path=tmp_path / "p.onnx", input_size=32, num_downs=5, ngf=8
    )
    import hashlib

    assert hashlib.sha256(weights.read_bytes()).hexdigest() in result.info.source
    assert "released weights" in result.info.source
    # Written atomically through a private temporary file, the export still gets the ordinary umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o666 & ~umask


def test_explicit_build_options_extend_those_of_a_checkpoint(tmp_path):
    from baselines.export import build_baseline
    from baselines.train import CHECKPOINT_FORMAT

    small = {"num_downs": 5, "ngf": 8}
    checkpoint = tmp_path / "p2p.pt"
    state = pix2pix.build(**small).state_dict()
    torch.save({"format": CHECKPOINT_FORMAT, "build_options": small, "generator": state}, checkpoint)
    for options in ({}, {"ngf": 8}):  # an explicit option must not drop the checkpoint's num_downs
        module, source, sha = build_baseline("pix2pix", checkpoint, **options)
        assert module.net.num_downs == 5 and "trained with scgan-bench" in source and len(sha) == 64


@pytest.mark.slow
@pytest.mark.parametrize("name", architecture_names())
def test_export_at_paper_size(name, tmp_path):
    result = export_baseline(name, out_path=tmp_path / f"{name}.onnx")
    assert result.max_abs_diff <= PARITY_TOLERANCE
    assert result.info.input_size == get_architecture(name).input_size


def test_eccv16_width_scales_every_feature_width_and_keeps_the_paper_layout_at_1():
    paper = zhang_eccv16.build()
    assert sum(p.numel() for p in paper.parameters()) == 32_236_011  # the released network
    mini = zhang_eccv16.build(width=0.25)
    assert mini.model1[0].out_channels == 16 and mini.model4[0].out_channels == 128
    assert mini.model8[-1].out_channels == zhang_eccv16.NUM_BINS  # the 313 bins do not scale
    assert sum(p.numel() for p in mini.parameters()) < 2.1e6
    assert mini.eval()(torch.full((1, 1, 64, 64), 50.0)).shape == (1, 2, 64, 64)
    with pytest.raises(ValueError, match="width must be in"):
        zhang_eccv16.build(width=0)
