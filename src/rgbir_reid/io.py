"""Small file helpers: atomic writes, hashes, JSON."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A killed writer leaves at most ``<name>.tmp-<pid><suffix>``, never a file at ``path`` that
    Snakemake (or a reader) could take as complete; a failing one leaves nothing. The next write
    of ``path`` deletes such leftovers (only names of exactly that form: one output is written by
    one job at a time, so they can only be an earlier writer's).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leftover = re.compile(re.escape(path.stem) + r"\.tmp-\d+" + re.escape(path.suffix))
    for stale in path.parent.glob(f"{glob.escape(path.stem)}.tmp-*{glob.escape(path.suffix)}"):
        if leftover.fullmatch(stale.name) and stale.is_file():
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def config_hash(obj: Any) -> str:
    """Hex sha256 of a JSON-serialisable object with sorted keys (stable across runs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, indented."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")
