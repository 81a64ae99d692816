"""CycleGAN objectives and the discriminators' image history buffer.

Source: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017. Eq. 1 is the adversarial loss, here in its least-squares form (Sec. 4,
"Training details", after Mao et al. 2017); Eq. 2 the cycle-consistency loss; Sec. 5.2 /
Appendix 7.1 the identity-mapping loss and the buffer of 50 generated images.

Every loss is a pure function of tensors and returns a scalar (mean over all elements).
"""

from __future__ import annotations

import torch


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss, halved as in the paper.

    ``0.5 * (E[(D(y) - 1)^2] + E[D(G(x))^2])`` — the paper divides D's objective by 2 "to slow
    down the rate at which D learns relative to G".

    Args:
        real_scores: discriminator outputs on real images, any shape (PatchGAN ``[N, 1, H', W']``).
        fake_scores: discriminator outputs on generated images (from the history buffer).
    """
    return 0.5 * ((real_scores - 1.0).pow(2).mean() + fake_scores.pow(2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss ``E[(D(G(x)) - 1)^2]`` (paper, Sec. 4)."""
    return (fake_scores - 1.0).pow(2).mean()


def cycle_consistency_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """L1 cycle loss for one direction, ``E[|F(G(x)) - x|]`` (paper, Eq. 2).

    Shapes: two ``[N, 3, H, W]`` tensors in [-1, 1]; the mean is over every element, so the
    value is in units of that [-1, 1] scale. The paper's ``L_cyc`` is the sum of both directions.
    """
    return (reconstructed - real).abs().mean()


def identity_loss(real: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
    """L1 identity-mapping loss ``E[|G(y) - y|]`` (paper, Sec. 5.2, after Taigman et al.).

    ``mapped`` is a generator applied to an image already in its output modality (e.g.
    ``G_rgb2ir(real_ir)``); shapes as in :func:`cycle_consistency_loss`.
    """
    return (mapped - real).abs().mean()


class ImageHistoryBuffer:
    """The paper's buffer of previously generated images shown to a discriminator.

    "To reduce model oscillation ... we update the discriminators using a history of generated
    images rather than the ones produced by the latest generators. We keep an image buffer that
    stores the 50 previously created images" (paper, Sec. 4). Per image of a batch: while the
    buffer is not full, the image is stored and returned; afterwards, with probability 1/2 a
    uniformly chosen stored image is returned and replaced by the new one, else the new image
    is returned unchanged.

    Randomness comes only from ``generator`` (a CPU ``torch.Generator``), so the same seed gives
    the same choices; :meth:`state_dict` captures images and generator state for resuming.

    Args:
        pool_size: images kept (paper: 50); 0 disables the buffer (the batch is returned).
        generator: source of the coin flips and slot choices.
    """

    def __init__(self, pool_size: int, generator: torch.Generator) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.generator = generator
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Swap a batch ``[N, C, H, W]`` against the history; returns a batch of the same shape.

        The returned tensor is detached (the discriminator step must not reach the generator).
        """
        images = images.detach()
        if self.pool_size == 0:
            return images
        out = []
        for img in images:
            img = img.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(self.pool_size, (), generator=self.generator).item())
                out.append(self.images[slot].clone())
                self.images[slot] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        """Plain tensors only (loadable with ``torch.load(weights_only=True)``)."""
        stacked = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"pool_size": self.pool_size, "images": stacked, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        """Restore what :meth:`state_dict` saved; images are moved to ``device``.

        Raises:
            ValueError: if the saved pool size differs from this buffer's.
        """
        if int(state["pool_size"]) != self.pool_size:
            raise ValueError(f"history buffer: saved pool_size {state['pool_size']} != {self.pool_size}")
        imgs = state["images"]
        self.images = [imgs[i : i + 1].to(device) for i in range(imgs.shape[0])] if imgs.numel() else []
        self.generator.set_state(state["generator"])
