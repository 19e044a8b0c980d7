"""Kernel dispatch, argument errors, nn.Module wrappers, custom-op registration, torch.compile, and a convergence check
(a few training steps with the ``triton`` and the ``reference`` backend give the same losses)."""

from __future__ import annotations

import copy

import pytest
import torch

import kernels
from kernels import dispatch, reference, runtime
from kernels.tolerances import assert_close_to_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_triton = pytest.mark.skipif(
    not kernels.triton_can_run(torch.zeros(1, device=DEVICE)),
    reason="Triton cannot run here (no CUDA device and TRITON_INTERPRET is not 1, or triton missing)",
)


def _inputs(seed=0, shape=(2, 3, 4, 5), dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    n, _, h, w = shape
    rgb_pred = torch.randn(shape, generator=gen, dtype=dtype)
    sal_pred = torch.rand((n, 1, h, w), generator=gen, dtype=dtype)
    rgb_true = torch.randn(shape, generator=gen, dtype=dtype)
    sal_true = torch.rand((n, 1, h, w), generator=gen, dtype=dtype)
    return [t.to(DEVICE) for t in (rgb_pred, sal_pred, rgb_true, sal_true)]


# ---------------------------------------------------------------------------------------------------- dispatch
@needs_triton
def test_auto_takes_the_triton_path_where_it_can_run():
    rgb_pred, sal_pred, rgb_true, sal_true = _inputs()
    rgb_pred.requires_grad_()
    grad = torch.randn(2, 3, 4, 5, device=DEVICE, requires_grad=True)
    assert type(kernels.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true).grad_fn).__name__.startswith(
        "AttentionL1Function"
    )
    assert type(kernels.weighted_image(rgb_pred, sal_pred).grad_fn).__name__.startswith("WeightedImageFunction")
    eps = torch.rand(2, device=DEVICE)
    assert type(kernels.interpolate(rgb_pred, rgb_true, eps).grad_fn).__name__.startswith("InterpolateFunction")
    assert type(kernels.gradient_penalty(grad).grad_fn).__name__.startswith("GradientPenaltyFunction")


def test_reference_backend_never_uses_the_kernels():
    ops = kernels.get_ops("reference")
    rgb_pred, sal_pred, rgb_true, sal_true = _inputs()
    rgb_pred.requires_grad_()
    loss = ops.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)
    assert "Function" not in type(loss.grad_fn).__name__
    assert ops.name == "reference" and ops.attention_l1 is reference.attention_l1


def test_auto_falls_back_to_reference_without_the_interpreter_on_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "INTERPRET", False)
    cpu = torch.zeros(2, 3, 1, 1)
    reason = runtime.triton_unavailable_reason(cpu)
    assert reason is not None and "TRITON_INTERPRET" in reason
    rgb_pred, sal_pred, rgb_true, sal_true = (t.cpu().requires_grad_() for t in _inputs())
    loss = kernels.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)
    assert "Function" not in type(loss.grad_fn).__name__
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        kernels.get_ops("triton").attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)


def test_auto_falls_back_to_reference_without_triton(monkeypatch):
    monkeypatch.setattr(runtime, "HAS_TRITON", False)
    monkeypatch.setattr(runtime, "TRITON_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    monkeypatch.setattr(dispatch, "HAS_TRITON", False)
    grad = torch.randn(2, 3, 2, 2, requires_grad=True)
    penalty = kernels.gradient_penalty(grad)
    assert "Function" not in type(penalty.grad_fn).__name__
    torch.testing.assert_close(penalty, reference.gradient_penalty(grad))
    with pytest.raises(RuntimeError, match="not importable"):
        kernels.get_ops("triton")


def test_get_ops_triton_without_cuda_or_interpreter_fails_clearly(monkeypatch):
    monkeypatch.setattr(dispatch, "INTERPRET", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA device"):
        kernels.get_ops("triton")


def test_unknown_backend_and_unsupported_tensors():
    with pytest.raises(ValueError, match="unknown kernels backend 'cuda'"):
        kernels.get_ops("cuda")
    assert "dtype" in runtime.triton_unavailable_reason(torch.zeros(2, dtype=torch.int64))
    meta = torch.zeros(2, device="meta")
    assert runtime.triton_unavailable_reason(torch.zeros(2), meta) is not None


# ------------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_bad_arguments_name_the_argument(backend):
    ops = kernels.get_ops(backend)
    rgb_pred, sal_pred, rgb_true, sal_true = _inputs()
    with pytest.raises(ValueError, match="sal_pred must have one channel"):
        ops.attention_l1(rgb_pred, rgb_pred, rgb_true, sal_true)
    with pytest.raises(ValueError, match="rgb_pred shape .* != rgb_true shape"):
        ops.attention_l1(rgb_pred, sal_pred, rgb_true[:1], sal_true[:1])
    with pytest.raises(ValueError, match="rgb must be 4-D"):
        ops.weighted_image(rgb_pred[0], sal_pred)
    with pytest.raises(ValueError, match="sal shape"):
        ops.weighted_image(rgb_pred, sal_pred[:, :, :2])
    with pytest.raises(ValueError, match="eps must hold one value per sample"):
        ops.interpolate(rgb_pred, rgb_true, torch.rand(3, device=DEVICE))
    with pytest.raises(ValueError, match="real shape"):
        ops.interpolate(rgb_pred, rgb_true[:1], torch.rand(2, device=DEVICE))
    with pytest.raises(TypeError, match="grad must be a floating point tensor"):
        ops.gradient_penalty(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="grad must be"):
        ops.gradient_penalty(torch.zeros((), device=DEVICE))


# ------------------------------------------------------------------------------------------------------ modules
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_modules_match_functional_reference(backend):
    rgb_pred, sal_pred, rgb_true, sal_true = _inputs(3, dtype=torch.float64)
    eps = torch.rand(2, dtype=torch.float64, device=DEVICE)
    assert_close_to_reference(
        kernels.AttentionL1Loss(backend)(rgb_pred, sal_pred, rgb_true, sal_true),
        reference.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true),
        torch.float64,
        "AttentionL1Loss",
    )
    assert_close_to_reference(
        kernels.WeightedImage(backend)(rgb_pred, sal_pred), rgb_pred * sal_pred, torch.float64, "WeightedImage"
    )
    assert_close_to_reference(
        kernels.Interpolate(backend)(rgb_pred, rgb_true, eps),
        reference.interpolate(rgb_pred, rgb_true, eps),
        torch.float64,
        "Interpolate",
    )
    assert_close_to_reference(
        kernels.GradientPenalty(backend)(rgb_pred), reference.gradient_penalty(rgb_pred), torch.float64, "GP"
    )
    assert backend in repr(kernels.GradientPenalty(backend))


@needs_triton
def test_mixed_dtypes_promote_like_the_reference():
    rgb_pred, sal_pred, rgb_true, sal_true = _inputs(4)
    out = kernels.get_ops("triton").weighted_image(rgb_pred.half(), sal_pred.double())
    assert out.dtype == torch.float64
    eps = torch.rand(2, dtype=torch.float64, device=DEVICE)
    assert kernels.get_ops("triton").interpolate(rgb_pred, rgb_true, eps).dtype == torch.float64


# --------------------------------------------------------------------------------- custom ops and torch.compile
@needs_triton
def test_custom_ops_pass_opcheck():
    """Schema, fake-tensor (shape) registration and AOT dispatch of every launcher registered as a custom op."""
    x = torch.randn(2, 3, 2, 3, device=DEVICE)
    s = torch.rand(2, 1, 2, 3, device=DEVICE)
    e = torch.rand(2, device=DEVICE)
    one = torch.tensor(1.0, device=DEVICE)
    ops = torch.ops.scgan_kernels
    cases = [
        (ops.weighted_image_fwd, (x, s)),
        (ops.weighted_image_bwd, (x, x, s, True, True)),
        (ops.weighted_image_bwd, (x, x, s, False, True)),
        (ops.attention_l1_fwd, (x, s, x + 1, s)),
        (ops.attention_l1_bwd, (one, x, s, x + 1, s, False)),
        (ops.attention_l1_bwd, (one, x, s, x + 1, s, True)),
        (ops.interpolate_fwd, (x, x + 1, e)),
        (ops.interpolate_bwd, (x, x, x + 1, e, True, False, True)),
        (ops.per_sample_dot, (x, x + 1, False)),
        (ops.per_sample_scale, (e, x)),
        (ops.gradient_penalty_fwd, (x,)),
        (ops.gradient_penalty_bwd, (one, x, e + 0.5)),
    ]
    for op, args in cases:
        result = torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))
        assert set(result.values()) == {"SUCCESS"}, (op, result)


def _all_ops_loss(ops, rgb_pred, sal_pred, rgb_true, sal_true, grad):
    eps = sal_pred[:, 0, 0, 0]
    return (
        ops.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)
        + 10 * ops.gradient_penalty(grad)
        + ops.weighted_image(rgb_pred, sal_pred).square().mean()
        + ops.interpolate(rgb_pred, rgb_true, eps).square().mean()
    )


@needs_triton
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile_full_graph_with_the_kernels(backend):
    """The custom ops are opaque to torch.compile: one graph (fullgraph=True), same values and gradients."""
    torch._dynamo.reset()
    inputs = _inputs(5)
    grad = torch.randn(2, 3, 4, 5, device=DEVICE)
    for t in (inputs[0], inputs[1], grad):
        t.requires_grad_()
    triton_ops = kernels.get_ops("triton")
    compiled = torch.compile(lambda *a: _all_ops_loss(triton_ops, *a), backend=backend, fullgraph=True)
    wanted = [inputs[0], inputs[1], grad]
    out = compiled(*inputs, grad)
    grads = torch.autograd.grad(out, wanted)
    expected = _all_ops_loss(kernels.get_ops("reference"), *inputs, grad)
    expected_grads = torch.autograd.grad(expected, wanted)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------- convergence check
class _TinyColorizer(torch.nn.Module):
    """gray (N,1,H,W) in [-1,1] -> (rgb tanh (N,3,H,W), saliency sigmoid (N,1,H,W)), like SCGAN's generator."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.LeakyReLU(0.2))
        self.rgb = torch.nn.Conv2d(8, 3, 3, padding=1)
        self.sal = torch.nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, gray):
        h = self.body(gray)
        return torch.tanh(self.rgb(h)), torch.sigmoid(self.sal(h))


class _TinyCritic(torch.nn.Module):
    """(gray (N,1,H,W), rgb (N,3,H,W)) -> patch scores, like SCGAN's PatchGAN discriminator."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(4, 8, 4, stride=2, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(8, 1, 3, padding=1)
        )

    def forward(self, gray, rgb):
        return self.body(torch.cat([gray, rgb], dim=1))


def _train_losses(ops, generator, critic_c, critic_a, batches, steps):
    """Stage-2 steps (docs/training.md): WGAN-GP on both critics, then L1 + 0.5 attention + 0.05 GAN for G."""
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(critic_c.parameters()) + list(critic_a.parameters()), lr=1e-3, betas=(0.5, 0.999))
    losses = []
    for step in range(steps):
        gray, rgb_true, sal_true, eps = batches[step % len(batches)]
        rgb_fake, sal_fake = generator(gray)
        # discriminators: colour critic on rgb, attention critic on the saliency-weighted image
        d_loss = 0
        for critic, real, fake in (
            (critic_c, rgb_true, rgb_fake.detach()),
            (critic_a, ops.weighted_image(rgb_true, sal_true), ops.weighted_image(rgb_fake, sal_fake).detach()),
        ):
            mixed = ops.interpolate(real, fake, eps).requires_grad_(True)
            (grad,) = torch.autograd.grad(critic(gray, mixed).sum(), mixed, create_graph=True)
            d_loss = d_loss + critic(gray, fake).mean() - critic(gray, real).mean() + 10 * ops.gradient_penalty(grad)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        # generator
        g_adv = -critic_c(gray, rgb_fake).mean() - critic_a(gray, ops.weighted_image(rgb_fake, sal_fake)).mean()
        attention = ops.attention_l1(rgb_fake, sal_fake, rgb_true, sal_true)
        g_loss = (rgb_fake - rgb_true).abs().mean() + 0.5 * attention + 0.05 * g_adv
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        losses.append((d_loss.item(), g_loss.item(), attention.item()))
    return torch.tensor(losses, dtype=torch.float64)


def _batches(size, count=2, n=2):
    gen = torch.Generator().manual_seed(42)
    out = []
    for _ in range(count):
        rgb = torch.rand(n, 3, size, size, generator=gen) * 2 - 1
        gray = (0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]).contiguous()
        sal = torch.rand(n, 1, size, size, generator=gen)
        eps = torch.rand(n, generator=gen)
        out.append(tuple(t.to(DEVICE) for t in (gray, rgb, sal, eps)))
    return out


def _compare_backends(generator, critic_c, critic_a, size, steps, dtype, tol):
    runs = {}
    for backend in ("triton", "reference"):
        torch.manual_seed(0)
        models = [copy.deepcopy(m).to(device=DEVICE, dtype=dtype) for m in (generator, critic_c, critic_a)]
        batches = [tuple(t.to(dtype) for t in batch) for batch in _batches(size)]
        runs[backend] = _train_losses(kernels.get_ops(backend), *models, batches, steps)
    torch.testing.assert_close(runs["triton"], runs["reference"], atol=tol, rtol=tol)
    assert torch.isfinite(runs["triton"]).all()
    assert not torch.equal(runs["triton"][0], runs["triton"][-1]), "the models did not train"


# In float64 the two backends agree to ~1e-12 after several steps. In float32 the kernels' summation order differs
# from PyTorch's; the untrained critics' penalties are large (~1e3) and Adam's first steps normalise every gradient,
# so float32 differences grow over steps: a short run and a looser tolerance there.
@needs_triton
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_convergence_tiny_models_triton_matches_reference(dtype, tol):
    torch.manual_seed(1)
    _compare_backends(_TinyColorizer(), _TinyCritic(), _TinyCritic(), size=16, steps=3, dtype=dtype, tol=tol)


@pytest.mark.slow  # ~1 min on a 2-core CPU: the interpreter runs the kernels at 64x64
@needs_triton
def test_convergence_scgan_tiny_preset_triton_matches_reference():
    """The real SCGAN generator and discriminators (scgan-tiny preset), when the model package is importable."""
    try:
        import scgan
        from scgan.model import build_discriminator, build_generator
    except ImportError as error:  # the model lives in another package; skip rather than fail on its absence
        pytest.skip(f"scgan model not importable: {error}")
    config = scgan.PRESETS["scgan-tiny"].replace(global_init="random")
    torch.manual_seed(2)
    generator, critic_c, critic_a = build_generator(config), build_discriminator(config), build_discriminator(config)
    _compare_backends(generator, critic_c, critic_a, size=config.image_size, steps=3, dtype=torch.float64, tol=1e-9)
