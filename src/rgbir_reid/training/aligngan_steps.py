"""AlignGAN's optimisers and its three kinds of training step (feature warm-up, feature, pixel).

What each step computes, with which losses and weights (official code, ``core/warmup.py`` and
``core/train.py``): the docstring of :mod:`rgbir_reid.training.aligngan`, whose loop
(:func:`~rgbir_reid.training.aligngan.train_aligngan`) calls these steps. The pixel step is one
iteration of the library's CycleGAN (:func:`rgbir_reid.training.cyclegan.cyclegan_iteration`)
with AlignGAN's discriminators and task terms.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rgbir_reid.losses.aligngan import (
    cosine_batch_hard_triplet,
    joint_discriminator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from rgbir_reid.models.aligngan import AlignGAN
from rgbir_reid.training.aligngan_settings import AlignGANSettings
from rgbir_reid.training.cyclegan import cyclegan_iteration

# (rgb [N, 3, H, W], ir [N, 3, H, W], labels [N]) of one identity-aligned batch: "ide" or "gan".
BatchLoader = Callable[[str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def build_optimizers(model: AlignGAN, discs: nn.ModuleDict, s: AlignGANSettings) -> dict[str, torch.optim.Optimizer]:
    """The four official optimisers: ``G`` (Adam, both generators), ``D_rgb`` (Adam, ``D_rgb`` +
    ``D_rgb_warmup``), ``D_ir`` (Adam, ``D_ir`` + ``D_ir_warmup``) and ``feature`` (SGD, Nesterov:
    encoder at ``feature_lr * encoder_lr_factor``, embedder at ``feature_lr``). Each param group
    records its ``initial_lr``: the schedule (:meth:`AlignGANSettings.lr_factor`) is a pure
    function of the iteration, set before every iteration, so the iteration count is all the
    scheduler state there is (a LambdaLR would warn about the optimisers a stage does not step)."""
    betas = (s.pixel_beta1, s.pixel_beta2)
    optimizers = {
        "G": torch.optim.Adam([*model.G_rgb2ir.parameters(), *model.G_ir2rgb.parameters()], lr=s.pixel_lr, betas=betas),
        "D_rgb": torch.optim.Adam([*discs["D_rgb"].parameters(), *discs["D_rgb_warmup"].parameters()],
                                  lr=s.pixel_lr, betas=betas),
        "D_ir": torch.optim.Adam([*discs["D_ir"].parameters(), *discs["D_ir_warmup"].parameters()],
                                 lr=s.pixel_lr, betas=betas),
        "feature": torch.optim.SGD(
            [{"params": model.encoder.parameters(), "lr": s.feature_lr * s.encoder_lr_factor},
             {"params": model.embedder.parameters(), "lr": s.feature_lr}],
            lr=s.feature_lr, momentum=s.feature_momentum, nesterov=True, weight_decay=s.feature_weight_decay,
        ),
    }
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


class AlignGANSteps:
    """The training steps of one AlignGAN run, on its networks, optimisers and batches.

    Each step draws its batch from ``load`` (``"ide"`` or ``"gan"``), updates the networks and
    returns its loss terms and accuracies as scalar tensors (names in
    :data:`rgbir_reid.training.aligngan_history.LOSS_TERMS`). Networks run under autocast when
    ``amp_dtype`` is given (CUDA AMP); every output is cast back to float32, so the losses are
    computed in full precision. Gradients go through ``scaler`` (a disabled GradScaler on CPU).
    """

    def __init__(self, model: AlignGAN, discs: nn.ModuleDict, optimizers: dict[str, torch.optim.Optimizer],
                 scaler: torch.amp.GradScaler, settings: AlignGANSettings, load: BatchLoader,
                 device: torch.device, amp_dtype: torch.dtype | None = None) -> None:
        self.model, self.discs, self.optimizers, self.scaler, self.s, self.load = model, discs, optimizers, scaler, settings, load
        self.device, self.amp_dtype = device, amp_dtype

    def forward(self, fn: Callable, *args: torch.Tensor):
        """``fn(*args)`` under autocast (AMP only), every output back in float32."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None):
            out = fn(*args)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    def backward_step(self, loss: torch.Tensor, *names: str) -> None:
        """Zero the named optimisers' gradients, back-propagate ``loss`` (scaled), step them."""
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for name in names:
            self.scaler.step(self.optimizers[name])

    def triplet_both_ways(self, fake_emb: torch.Tensor, real_emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``Tri(fake, real, real) + Tri(real, fake, fake)`` (cosine batch-hard, ``triplet_margin``)."""
        m = self.s.triplet_margin
        return (cosine_batch_hard_triplet(fake_emb, real_emb, real_emb, labels, labels, labels, m)
                + cosine_batch_hard_triplet(real_emb, fake_emb, fake_emb, labels, labels, labels, m))

    def feature_warmup(self) -> dict[str, torch.Tensor]:
        """Stage 1: encoder + embedder on a real infrared IDE batch, ``CE + Tri`` (unweighted, official)."""
        model, fwd = self.model, self.forward
        _, ir, labels = self.load("ide")
        _, logits, emb = fwd(model.embedder, fwd(model.encode, ir))
        cls = F.cross_entropy(logits, labels)
        tri = cosine_batch_hard_triplet(emb, emb, emb, labels, labels, labels, self.s.triplet_margin)
        loss = cls + tri
        self.backward_step(loss, "feature")
        return {"feat_total": loss, "feat_cls_real_ir": cls, "feat_triplet": tri, "acc_real_ir": _accuracy(logits, labels)}

    def feature_joint(self) -> dict[str, torch.Tensor]:
        """Stage 3's feature step: real and fake infrared (``G_rgb2ir`` without gradient) of an
        IDE batch, ``λ_cls (CE fake + CE real) + λ_tri Tri both ways + λ_gan (D_ir(real IR image,
        fake-IR feature) - 1)²`` (``D_ir`` frozen)."""
        model, discs, fwd, s = self.model, self.discs, self.forward, self.s
        rgb, ir, labels = self.load("ide")
        with torch.no_grad():
            fake_ir = fwd(model.G_rgb2ir, rgb)
        fake_feat = fwd(model.encode, fake_ir)
        real_feat = fwd(model.encode, ir)
        _, fake_logits, fake_emb = fwd(model.embedder, fake_feat)
        _, real_logits, real_emb = fwd(model.embedder, real_feat)
        cls_fake, cls_real = F.cross_entropy(fake_logits, labels), F.cross_entropy(real_logits, labels)
        tri = self.triplet_both_ways(fake_emb, real_emb, labels)
        discs["D_ir"].requires_grad_(False)
        gan = lsgan_generator_loss(fwd(discs["D_ir"], ir, fake_feat))
        discs["D_ir"].requires_grad_(True)
        loss = s.lambda_feature_cls * (cls_fake + cls_real) + s.lambda_feature_triplet * tri + s.lambda_feature_gan * gan
        self.backward_step(loss, "feature")
        return {"feat_total": loss, "feat_cls_real_ir": cls_real, "feat_cls_fake_ir": cls_fake, "feat_triplet": tri,
                "feat_gan": gan, "acc_real_ir": _accuracy(real_logits, labels), "acc_fake_ir": _accuracy(fake_logits, labels)}

    def pixel(self, joint: bool) -> dict[str, torch.Tensor]:
        """A pixel step on a GAN batch: one iteration of the library's CycleGAN with AlignGAN's
        discriminators (the warm-up PatchGANs; in the joint stage the fresh ``D_rgb`` and the joint
        ``D_ir``, which scores (image, real IR feature) pairs) and the task terms ``λ_tri Tri both
        ways + λ_cls CE(fake IR)`` through the frozen encoder. Only the generators collect
        gradients in the generator step; the encoder's BN statistics still update."""
        model, discs, fwd, s = self.model, self.discs, self.forward, self.s
        rgb, ir, labels = self.load("gan")
        d_rgb = discs["D_rgb"] if joint else discs["D_rgb_warmup"]
        model.encoder.requires_grad_(False)
        model.embedder.requires_grad_(False)
        real_feat = fwd(model.encode, ir)
        fake_feat = None
        if joint:
            def score_ir(images):
                return fwd(discs["D_ir"], images, real_feat.detach())
        else:
            def score_ir(images):
                return fwd(discs["D_ir_warmup"], images)

        def task_terms(fake_rgb, fake_ir):
            nonlocal fake_feat
            fake_feat = fwd(model.encode, fake_ir)
            _, _, real_emb = fwd(model.embedder, real_feat)
            _, fake_logits, fake_emb = fwd(model.embedder, fake_feat)
            tri, cls = self.triplet_both_ways(fake_emb, real_emb, labels), F.cross_entropy(fake_logits, labels)
            return {"G_triplet": tri, "G_cls": cls}, [s.lambda_pixel_triplet * tri, s.lambda_pixel_cls * cls]

        def discriminator_terms(fake_rgb, fake_ir):
            out = {"D_rgb": lsgan_discriminator_loss(fwd(d_rgb, rgb), fwd(d_rgb, fake_rgb))}
            if joint:
                def d_ir(images, features):
                    return fwd(discs["D_ir"], images, features)
                out["D_ir"] = joint_discriminator_loss(d_ir, ir, real_feat, fake_ir, fake_feat, s.gan_instances)
            else:
                out["D_ir"] = lsgan_discriminator_loss(fwd(discs["D_ir_warmup"], ir), fwd(discs["D_ir_warmup"], fake_ir))
            return out

        # D_rgb(+warm-up) and D_ir(+warm-up) have disjoint parameters: one backward gives each
        # optimiser exactly the gradient of its own loss.
        cycle = cyclegan_iteration(
            lambda x: fwd(model.G_rgb2ir, x), lambda x: fwd(model.G_ir2rgb, x), score_ir,
            lambda x: fwd(d_rgb, x), rgb, ir, lambda_cycle=s.lambda_cycle, lambda_identity=s.lambda_identity,
            discriminators=list(discs.values()), discriminator_terms=discriminator_terms,
            step_generators=lambda loss: self.backward_step(loss, "G"),
            step_discriminators=lambda loss: self.backward_step(loss, "D_rgb", "D_ir"),
            generator_scale=0.5, task_terms=task_terms)
        model.encoder.requires_grad_(True)
        model.embedder.requires_grad_(True)
        # Official: each CycleGAN term is the mean of both directions, i.e. half the CycleGAN sum.
        return {"G_gan": (cycle["G_gan_rgb"] + cycle["G_gan_ir"]) / 2,
                "G_cycle": (cycle["cycle_rgb"] + cycle["cycle_ir"]) / 2,
                "G_identity": (cycle["idt_rgb"] + cycle["idt_ir"]) / 2,
                **{k: cycle[k] for k in ("G_triplet", "G_cls", "G_total", "D_rgb", "D_ir")}}
