"""SCGAN's two-stage recipe as a :class:`~scgan.training.method.TrainingMethod` (docs/training.md section 4).

Stage 1: L1 (or L2) reconstruction + attention loss; stage 2 adds the adversarial loss of two critics (D_c on the
colour image, D_a on the saliency-weighted image; WGAN-GP or LSGAN) and the perceptual loss. The generator is SCGAN's
(built from the preset, global features initialised by :meth:`ScganMethod.init_global_features`) or an injected
network returning ``(rgb, saliency)`` (the Table III saliency variants of ``baselines``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from scgan.errors import InputError
from scgan.losses import AdversarialLoss, attention_loss, reconstruction_loss
from scgan.training.distributed import unwrap
from scgan.training.method import OptimiserSpec, TrainingMethod, describe_generator_spec, normalise_generator_spec

if TYPE_CHECKING:
    from scgan.training.trainer import Trainer


@contextlib.contextmanager
def weights_frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Inside the block the modules' trainable parameters need no gradient (graphs built here give them none)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class ScganMethod(TrainingMethod):
    """SCGAN's recipe. ``generator``/``generator_spec``: train this module instead of ``build_generator(preset)``.

    An injected generator must map gray ``(N, 1, S, S)`` in [-1, 1] to ``(rgb (N, 3, S, S) tanh, saliency (N, 1, S,
    S) sigmoid or None)`` at the preset's size ``S`` (checked with one forward pass); the saliency is required unless
    ``config.attention`` is off. Global-feature initialisation does not apply to it: ``config.global_init`` must be
    ``""`` or ``"none"``. Seed its construction yourself (every rank must build the same weights).
    """

    loss_columns = ("g_total", "reconstruction", "attention", "gan", "perceptual", "d_c", "d_a", "gp_c", "gp_a")

    def __init__(self, generator: nn.Module | None = None, generator_spec: dict[str, Any] | None = None):
        if generator is None and generator_spec is not None:
            raise InputError("generator_spec describes an injected generator: pass the generator as well")
        if generator is not None and generator_spec is None:
            raise InputError(
                "an injected generator needs a generator_spec {'kind', 'name', 'options'}: the checkpoint records "
                "it so that the result can be rebuilt and a resume can be checked"
            )
        if generator is not None and not isinstance(generator, nn.Module):
            raise InputError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        self.injected = generator
        self.spec = normalise_generator_spec(generator_spec) if generator is not None else None
        self.perceptual = None
        self.adversarial: AdversarialLoss | None = None

    # ------------------------------------------------------------------------------------------------ building
    def build(self, trainer: Trainer) -> dict[str, nn.Module | None]:
        from scgan.model import build_discriminator, build_generator

        cfg = trainer.config
        self.uses_saliency = cfg.attention
        self.adversarial = AdversarialLoss("wgan-gp" if cfg.gan == "none" else cfg.gan, cfg.gp_weight,
                                           cfg.gp_reduction)
        if self.injected is not None and cfg.global_init not in ("", "none"):
            raise InputError(
                f"--global-init {cfg.global_init}: global-feature weights are for SCGAN's generator; the injected "
                f"generator {describe_generator_spec(self.spec)} has no global feature network (leave --global-init "
                "out or give 'none')"
            )
        generator = self.injected if self.injected is not None else build_generator(trainer.model_config)
        gan = cfg.gan != "none"
        networks = {
            "generator": generator,
            "discriminator_c": build_discriminator(trainer.model_config) if gan else None,
            "discriminator_a": build_discriminator(trainer.model_config) if gan and cfg.attention else None,
        }
        if cfg.perceptual != "none" and cfg.stage2_epochs > 0:
            from scgan.perceptual import build_perceptual_loss

            self.perceptual = build_perceptual_loss(cfg.perceptual).to(trainer.device,
                                                                       memory_format=trainer.memory_format)
        return networks

    def init_source(self, trainer: Trainer) -> str:
        if self.injected is not None:
            return f"not applicable (injected generator {describe_generator_spec(self.spec)})"
        return self.init_global_features(trainer)

    def init_global_features(self, trainer: Trainer) -> str:
        """Initialise the global-feature network of SCGAN's generator as the run asks; returns where it came from
        (the rules of each backbone: ``scgan.checkpoint.init_global_features``)."""
        from scgan.checkpoint import init_global_features

        return init_global_features(trainer.generator, trainer.config.global_init)

    def check(self, trainer: Trainer) -> None:
        """One forward pass (eval mode, no gradient) of a zero gray image at the preset's size: an injected generator
        must return ``(rgb (1, 3, S, S), saliency (1, 1, S, S) or None)``; InputError naming the spec otherwise."""
        if self.injected is None:
            return
        what = f"injected generator {describe_generator_spec(self.spec)}"
        size, preset = trainer.size, trainer.config.preset
        generator = trainer.generator
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                output = generator(torch.zeros(1, 1, size, size, device=trainer.device))
        except (RuntimeError, ValueError, InputError) as exc:
            raise InputError(
                f"{what} cannot take the {size}x{size} input of --preset {preset} ({exc}); choose a preset of the "
                "generator's size, or build options that suit this size"
            ) from exc
        finally:
            generator.train(was_training)
        if not (isinstance(output, tuple | list) and len(output) == 2):
            raise InputError(f"{what} must return (rgb, saliency), got {type(output).__name__}")
        rgb, saliency = output
        if not isinstance(rgb, torch.Tensor) or tuple(rgb.shape) != (1, 3, size, size):
            shape = tuple(rgb.shape) if isinstance(rgb, torch.Tensor) else type(rgb).__name__
            raise InputError(
                f"{what} returns rgb of shape {shape} for a (1, 1, {size}, {size}) input; --preset {preset} trains at "
                f"{size}x{size}, so it must return (1, 3, {size}, {size}) (choose a preset of the generator's size)"
            )
        if saliency is None:
            if trainer.config.attention:
                raise InputError(f"{what} returns no saliency map: the attention loss needs one (or --no-attention)")
        elif not isinstance(saliency, torch.Tensor) or tuple(saliency.shape) != (1, 1, size, size):
            shape = tuple(saliency.shape) if isinstance(saliency, torch.Tensor) else type(saliency).__name__
            raise InputError(f"{what} returns saliency of shape {shape}, expected (1, 1, {size}, {size})")

    def optimisers(self, trainer: Trainer, stage: int) -> dict[str, OptimiserSpec]:
        cfg = trainer.config
        # Stage 1: constant lr (the paper gives no decay); stage 2: multiplied by lr_decay_factor every lr_decay_every.
        specs = {"g": OptimiserSpec("generator", cfg.lr_stage1 if stage == 1 else cfg.lr_g, cfg.betas,
                                    weight_decay=cfg.weight_decay, decays=stage == 2)}
        if stage == 2:
            for key, net in (("d_c", "discriminator_c"), ("d_a", "discriminator_a")):
                if trainer.networks[net] is not None:
                    specs[key] = OptimiserSpec(net, cfg.lr_d, cfg.betas)
        return specs

    def unused_parameters(self, trainer: Trainer, key: str) -> bool:
        # An injected generator keeps its saliency head under --no-attention; no loss reaches it then.
        return key == "generator" and self.injected is not None and not trainer.config.attention

    # ------------------------------------------------------------------------------------------------ one step
    def _prepare(self, trainer: Trainer, rgb01: torch.Tensor, sal: torch.Tensor, noise: torch.Tensor):
        """(clean gray, noisy gray, rgb, saliency) on the device, [-1, 1] scale, in the run's memory format."""
        from metrics.color import rgb_to_gray

        memory_format = trainer.memory_format
        rgb01 = rgb01.to(trainer.device, non_blocking=True)
        sal = sal.to(trainer.device, non_blocking=True).contiguous(memory_format=memory_format)
        gray = rgb_to_gray(rgb01) * 2 - 1
        rgb = (rgb01 * 2 - 1).contiguous(memory_format=memory_format)
        noisy = gray + trainer.config.input_noise * noise.to(trainer.device)
        return (gray.contiguous(memory_format=memory_format), noisy.contiguous(memory_format=memory_format), rgb, sal)

    def step(self, trainer: Trainer, batch: tuple[torch.Tensor, ...], draws: dict[str, torch.Tensor]
             ) -> dict[str, float]:
        cfg = trainer.config
        gray, noisy, rgb, sal = self._prepare(trainer, batch[0], batch[1], draws["noise"])
        logs: dict[str, float] = {}
        stage2_gan = trainer.stage == 2 and cfg.gan != "none"
        disc_c, disc_a = trainer.networks["discriminator_c"], trainer.networks["discriminator_a"]

        with trainer.autocast():
            pred_rgb, pred_sal = trainer.ddp["generator"](noisy)
        pred_rgb = pred_rgb.float()
        pred_sal = pred_sal.float() if pred_sal is not None else None
        if stage2_gan:
            # Critic update 0 on this step's batch and the detached prediction (the generator's graph is kept for its
            # own update below; its weights do not change in between); updates 1.. of --d-steps on fresh draws.
            fake_sal = pred_sal.detach() if pred_sal is not None else None
            logs["d_total"] = self._critic_step(trainer, gray, rgb, sal, pred_rgb.detach(), fake_sal, draws, logs)
            for critic_step in range(1, cfg.d_steps):
                logs["d_total"] = self._fresh_critic_step(trainer, critic_step, logs)

        losses: dict[str, torch.Tensor] = {}
        losses["reconstruction"] = reconstruction_loss(pred_rgb, rgb, cfg.reconstruction)
        total = cfg.w_reconstruction * losses["reconstruction"]
        if cfg.attention:
            losses["attention"] = attention_loss(trainer.ops, pred_rgb, pred_sal, rgb, sal)
            total = total + cfg.w_attention * losses["attention"]
        if trainer.stage == 2:
            if stage2_gan:
                # The critics only score the prediction here (unwrapped: no DDP gradient sync for a loss that does
                # not update them), with their weights frozen so the generator's backward skips their gradients.
                with trainer.autocast(), weights_frozen(disc_c, disc_a):
                    gan = self.adversarial.generator(disc_c, gray, pred_rgb)
                    if disc_a is not None:
                        weighted = trainer.ops.weighted_image(pred_rgb, pred_sal)
                        gan = gan + self.adversarial.generator(disc_a, gray, weighted)
                losses["gan"] = gan.float()
                total = total + cfg.w_gan * losses["gan"]
            if self.perceptual is not None:
                with trainer.autocast():
                    losses["perceptual"] = self.perceptual(pred_rgb, rgb).float()
                total = total + cfg.w_perceptual * losses["perceptual"]
        losses["g_total"] = total
        opt_g = trainer.opt["g"]
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        logs.update({k: float(v.detach()) for k, v in losses.items()})
        return logs

    def _fresh_critic_step(self, trainer: Trainer, critic_step: int, logs: dict[str, float]) -> float:
        """Critic update ``critic_step`` >= 1: a fresh real batch, its fake (the generator's output for its noisy
        gray, no gradient) and fresh interpolation weights, all from ``Trainer.critic_batch``."""
        batch, draws = trainer.critic_batch(critic_step)
        gray, noisy, rgb, sal = self._prepare(trainer, batch[0], batch[1], draws["noise"])
        with torch.no_grad(), trainer.autocast():
            fake_rgb, fake_sal = unwrap(trainer.ddp["generator"])(noisy)
        fake_sal = fake_sal.float() if fake_sal is not None else None
        return self._critic_step(trainer, gray, rgb, sal, fake_rgb.float(), fake_sal, draws, logs)

    def _critic_step(self, trainer: Trainer, gray, rgb, sal, fake_rgb, fake_sal, draws, logs) -> float:
        total = 0.0
        pairs = [("d_c", trainer.ddp["discriminator_c"], rgb, fake_rgb, draws["eps_c"], "gp_c")]
        if trainer.ddp.get("discriminator_a") is not None:
            real_w = trainer.ops.weighted_image(rgb, sal)
            fake_w = trainer.ops.weighted_image(fake_rgb, fake_sal)
            pairs.append(("d_a", trainer.ddp["discriminator_a"], real_w, fake_w, draws["eps_a"], "gp_a"))
        for key, critic, real, fake, eps, gp_key in pairs:
            with trainer.autocast():
                loss, parts = self.adversarial.critic(trainer.ops, critic, gray, real, fake, eps.to(trainer.device))
            opt = trainer.opt[key]
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            opt.step()
            logs[key] = float(loss.detach())
            if "gp" in parts:
                logs[gp_key] = parts["gp"]
            total += float(loss.detach())
        return total
