"""The hash of the library's training code, without importing torch.

Every checkpoint records it (:mod:`rgbir_reid.training.checkpoints`, which re-exports these
names), and the evaluate stage writes it into each result row's provenance; kept apart from the
checkpoint code so that evaluation can read it without loading torch (~2-5 s per job).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

# The subpackages whose code decides what a training run learns (networks, losses, samplers,
# augmentation and cache reading, the training loops). Reporting, evaluation and the workflow
# glue are left out: changing them cannot make a half-trained checkpoint wrong.
TRAINING_CODE = ("data", "losses", "models", "training")


def sources_hash(package_root: str | Path, subpackages: tuple[str, ...] = TRAINING_CODE) -> str:
    """First 16 hex digits of the sha256 of every ``*.py`` file under ``package_root/<sub>`` for
    each of ``subpackages``, hashed by path relative to ``package_root`` and by bytes, in
    sorted path order (a missing subpackage adds nothing)."""
    root = Path(package_root)
    digest = hashlib.sha256()
    for path in sorted(p for sub in subpackages for p in (root / sub).rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def training_code_hash() -> str:
    """:func:`sources_hash` of this library's training code (the :data:`TRAINING_CODE` subpackages).

    Every training loop puts it into its checkpoint's fingerprint, so a checkpoint written by
    other training code (an upgrade, a fix in a loss) is not resumed: resuming would continue,
    or for a finished run simply hand back, weights that the current code did not train. An
    edit anywhere in those files, a comment included, changes it; it is computed once per process.
    """
    return sources_hash(Path(__file__).resolve().parent)
