"""Settings of one re-ID network training run: the ``reid`` method family's settings.

CE²L, its BaseLine (BDTR) and the deep baselines of Wu et al. 2017 are all this one training
setup with other values (see the README's paper-detail table). The cache sets a run draws on
are named in :data:`rgbir_reid.data.records.TRAIN_SETS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from rgbir_reid.data.records import CONVERTED_SETS, TRAIN_SETS
from rgbir_reid.losses.ranking import REDUCTIONS
from rgbir_reid.losses.triplet import TRIPLET_LOSSES
from rgbir_reid.models.reid import HEADS, POOLINGS, REID_MODELS, TEST_FEATURES

OPTIMIZERS = ("sgd", "adam")
AMP_MODES = ("none", "bf16", "fp16")
# Settings that do not change what is learnt (how batches are loaded, the CUDA arithmetic and
# memory layout; all ignored on CPU): left out of the checkpoint fingerprint, so a run restarted
# with other values resumes its checkpoint (as training/cyclegan.py does with its own).
RUNTIME_FIELDS = ("num_workers", "amp", "channels_last")


@dataclass(frozen=True)
class ReidSettings:
    """Settings of one re-ID training run; defaults follow the CE²L paper where it gives them.

    Network:
        architecture: a key of ``REID_MODELS`` (``two_stream_alexnet`` is the paper's
            227x227 setting; ``two_stream_resnet50`` the common modern one).
        pretrained: ``"imagenet"``, ``"none"`` or a local torchvision state-dict file.
        specific_stages: leading backbone stages that are modality-specific (two-stream
            only); ``"all"`` = one whole trunk per modality, the BDTR layout (see
            :mod:`rgbir_reid.models.reid`).
        last_stride: 1 or 2 (ResNet only).
        embedding_dim: ``D``. dropout: before the identity classifier (paper 0.5).
        zero_padding: two-channel zero-padding input (Wu et al. 2017's deep zero-padding with a
            one-stream architecture; :func:`rgbir_reid.models.reid.zero_padding_input`).
        head / pooling / non_local / non_local_inter_channels / test_feature: AGW's network
            options (:class:`~rgbir_reid.models.reid.ReidNet`, :mod:`rgbir_reid.models.agw`):
            ``"bnneck"`` head, ``"gem"`` pooling, non-local blocks of width 1 (the AGW code's)
            or ``"half"``; ``test_feature`` ``"bnneck"`` or ``"pooled"``. Defaults: the network
            as before (embedding head, average pooling, no non-local blocks).
    Input (pixels):
        image_size: ``[h, w]`` resize (paper 256x256). crop_size: ``[h, w]`` random crop
            (paper 227x227), also the test-time size. crop_padding: zero padding before the
            crop (0 = none). Random horizontal flip and ImageNet normalisation always apply.
        random_grayscale: probability that a training image is turned grey (luminance in
            all three channels) before normalisation; 0 = off (CE²L and BDTR use none). Infrared
            images are grey already (they move by at most one grey level), so in effect only visible
            (and IR->RGB converted) images change: the
            network cannot lean on colour, which infrared lacks (the random-grayscale
            augmentation of later visible-infrared work, e.g. Ye et al., ICCV 2021).
        channel_exchange / channel_adaptive_grey / channel_erasing: CAJ's channel
            augmentation (:mod:`rgbir_reid.data.channel_augment`): a second view of every
            visible image with one random channel copied to all three; infrared images with
            channel-adaptive grey; random erasing with probability ``channel_erasing`` on every
            view (0 = off). All off by default.
    Data:
        train_sets: cache sets trained on (see module docstring).
        lsr_sets: sets whose identity targets are label-smoothed (paper: the converted ones).
        num_identities ``P`` x num_instances ``K`` real images per modality, plus
            num_converted_instances ``K_c`` converted images per modality when ``train_sets``
            holds converted sets (``None``: ``K_c = K``); a batch holds ``2 P (K + K_c)``
            images, ``2 P K`` without converted sets. Real images are never crowded out by
            converted ones (see :class:`~rgbir_reid.data.samplers.CrossModalityIdentitySampler`).
        batches_per_epoch: ``None`` = about one pass over the training rows.
    Losses:
        weight_cross / weight_intra / weight_id: weights of ``l_cross``, ``l_intra``, ``l_id``.
        margin_cross: ``ρ1`` = 0.5; margin_intra: ``ρ2`` = 0.1 with weight_intra 0.1
            (Euclidean distance units, on L2-normalised embeddings). CE²L gives no values;
            these are BDTR's code's (its BaseLine), an assumption.
        lsr_epsilon: ``ε`` of LSR.
        triplet_loss: ``"none"``, ``"wrt"`` (AGW's weighted regularised triplet) or ``"adp"``
            (CAJ's variant), on the whole batch (:mod:`rgbir_reid.losses.triplet`), weighted by
            weight_triplet; the network's first output is its input (normalised first when
            ``normalize_embedding``; AGW/CAJ do not normalise).
        normalize_embedding: L2-normalise embeddings before the ranking losses (so ``D`` ∈ [0, 2]).
        loss_reduction: ``"mean"`` or ``"sum"`` over the ranking-loss terms (see losses.ranking).
            The paper's plain Σ is ``"sum"`` over a batch's terms (the paper configs use it);
            the default ``"mean"`` keeps the loss scale independent of the batch size.
    Optimisation:
        epochs; optimizer ``"sgd"`` (momentum; Nesterov's form when ``nesterov``, as AGW and CAJ)
        or ``"adam"``; lr (paper 0.001); momentum; weight_decay; warmup_epochs (linear warm-up); lr_milestones (epochs at which
        lr is multiplied by lr_gamma); new_layer_lr_factor: the layers not in the backbone's
        weights (:meth:`~rgbir_reid.models.reid.ReidNet.new_parameters`) train at
        ``lr * new_layer_lr_factor`` (1 = one learning rate, as CE²L states; the PyTorch
        BDTR-style baseline and AGW code of Ye et al. use 10).
    Runtime (do not change what is learnt; a checkpoint made with other values resumes):
        amp: ``"bf16"``, ``"fp16"`` (with a GradScaler) or ``"none"`` (CUDA only, ignored on
        CPU); channels_last: NHWC memory format for the network and its input (CUDA and CPU).
        num_workers: DataLoader worker processes (0 = load in
        the training process).
    """

    architecture: str = "two_stream_alexnet"
    pretrained: str = "imagenet"
    specific_stages: int | str = 1
    last_stride: int = 1
    embedding_dim: int = 512
    dropout: float = 0.5
    zero_padding: bool = False
    head: str = "embedding"
    pooling: str = "avg"
    non_local: bool = False
    non_local_inter_channels: int | str = 1
    test_feature: str = "bnneck"
    image_size: tuple[int, int] = (256, 256)
    crop_size: tuple[int, int] = (227, 227)
    crop_padding: int = 0
    random_grayscale: float = 0.0
    channel_exchange: bool = False
    channel_adaptive_grey: bool = False
    channel_erasing: float = 0.0
    train_sets: tuple[str, ...] = ("real_visible", "real_thermal", "converted_thermal", "converted_visible")
    lsr_sets: tuple[str, ...] = CONVERTED_SETS
    num_identities: int = 8
    num_instances: int = 4
    num_converted_instances: int | None = None
    batches_per_epoch: int | None = None
    weight_cross: float = 1.0
    weight_intra: float = 0.1
    weight_id: float = 1.0
    margin_cross: float = 0.5
    margin_intra: float = 0.1
    lsr_epsilon: float = 0.1
    triplet_loss: str = "none"
    weight_triplet: float = 1.0
    normalize_embedding: bool = True
    loss_reduction: str = "mean"
    epochs: int = 60
    optimizer: str = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    lr_milestones: tuple[int, ...] = (40,)
    lr_gamma: float = 0.1
    new_layer_lr_factor: float = 1.0
    amp: str = "bf16"
    channels_last: bool = True
    num_workers: int = 4

    def __post_init__(self) -> None:
        # Config files give lists; store tuples so the dataclass stays hashable and frozen.
        for name in ("image_size", "crop_size", "train_sets", "lsr_sets", "lr_milestones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

        def bad(key: str, expected: str) -> ValueError:
            return ValueError(f"re-ID setting {key}={getattr(self, key)!r}: expected {expected}")

        if self.architecture not in REID_MODELS:
            raise bad("architecture", f"one of {sorted(REID_MODELS)}")
        for key in ("train_sets", "lsr_sets"):
            unknown = [s for s in getattr(self, key) if s not in TRAIN_SETS]
            if unknown:
                raise bad(key, f"names from {list(TRAIN_SETS)}")
        if not self.train_sets:
            raise bad("train_sets", "at least one set")
        for key in ("image_size", "crop_size"):
            size = getattr(self, key)
            if len(size) != 2 or min(size) < 1:
                raise bad(key, "[height, width] of positive pixels")
        if any(c > s + 2 * self.crop_padding for c, s in zip(self.crop_size, self.image_size)):
            raise bad("crop_size", f"at most image_size + 2 * crop_padding = {self.image_size} + 2*{self.crop_padding}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.amp not in AMP_MODES:
            raise bad("amp", f"one of {AMP_MODES}")
        if self.loss_reduction not in REDUCTIONS:
            raise bad("loss_reduction", f"one of {REDUCTIONS}")
        for key, valid in (("head", HEADS), ("pooling", POOLINGS), ("test_feature", TEST_FEATURES),
                           ("triplet_loss", TRIPLET_LOSSES)):
            if getattr(self, key) not in valid:
                raise bad(key, f"one of {valid}")
        if self.non_local_inter_channels != "half" and not (
            isinstance(self.non_local_inter_channels, int) and self.non_local_inter_channels >= 1
        ):
            raise bad("non_local_inter_channels", "an integer >= 1 or 'half'")
        for key in ("lsr_epsilon", "random_grayscale", "channel_erasing"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise bad(key, "a value in [0, 1]")
        for key in ("epochs", "num_identities", "num_instances", "embedding_dim"):
            if getattr(self, key) < 1:
                raise bad(key, "an integer >= 1")
        if self.num_converted_instances is not None and self.num_converted_instances < 0:
            raise bad("num_converted_instances", "null or an integer >= 0")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise bad("batches_per_epoch", "null or an integer >= 1")
        if self.specific_stages != "all" and not (isinstance(self.specific_stages, int) and self.specific_stages >= 1):
            raise bad("specific_stages", "an integer >= 1 or 'all'")
        if self.new_layer_lr_factor <= 0:
            raise bad("new_layer_lr_factor", "a value > 0")
        for key in ("lr", "margin_cross", "margin_intra", "weight_cross", "weight_intra", "weight_id", "weight_decay",
                    "weight_triplet"):
            if getattr(self, key) < 0:
                raise bad(key, "a value >= 0")

    @classmethod
    def from_dict(cls, values: dict) -> "ReidSettings":
        """Build from a config mapping; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown re-ID settings {unknown}; valid: {sorted(known)}")
        return cls(**values)


def learnt_settings(settings: ReidSettings) -> dict:
    """``asdict(settings)`` without the :data:`RUNTIME_FIELDS`: the settings a checkpoint must share."""
    return {k: v for k, v in asdict(settings).items() if k not in RUNTIME_FIELDS}
