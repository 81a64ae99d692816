"""Small file helpers: atomic writes, hashes, JSON."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

# Errors of writing that no retry mends: the job stops with one line naming the file.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}


class OutputWriteError(OSError):
    """An output could not be written (disk full, read-only, no permission, a file where a folder
    is expected); ``str()`` is ``"cannot write <path>: <reason>"`` and ``errno`` the cause's."""

    def __str__(self) -> str:  # OSError's own would read "[Errno 28] None: '<path>'" once errno is set
        return str(self.args[0])


def _errno_of(e: OSError) -> int | None:
    if e.errno is not None:
        return e.errno
    # h5py reports HDF5's failed writes as OSError without errno, the C errno only in the text.
    m = re.search(r"errno = (\d+)", str(e))
    return int(m.group(1)) if m else None


def _not_a_folder(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def write_error(path: str | Path, e: OSError) -> OutputWriteError | None:
    """The :class:`OutputWriteError` that ``e``, raised while writing ``path``, stands for; ``None``
    when ``e`` is not a write error of :data:`WRITE_ERRNOS`."""
    code = _errno_of(e)
    if code not in WRITE_ERRNOS:
        return None
    path = Path(path)
    blocker = _not_a_folder(path)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    elif code == errno.EISDIR or (code == errno.EEXIST and path.is_dir()):
        reason = "a folder is in the way"
    else:
        reason = os.strerror(code).lower()
    err = OutputWriteError(f"cannot write {path}: {reason}")
    err.errno = code
    err.filename = str(path)
    return err


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A killed writer leaves at most ``<name>.tmp-<pid><suffix>``, never a file at ``path`` that
    Snakemake (or a reader) could take as complete; a failing one leaves nothing. The next write
    of ``path`` deletes such leftovers (only names of exactly that form: one output is written by
    one job at a time, so they can only be an earlier writer's).

    Raises:
        OutputWriteError: (an ``OSError``) the disk is full, the folder read-only or not
            writable, or a file stands where a folder of ``path`` should be; the message is
            ``"cannot write <path>: <reason>"``, and neither ``path`` nor the temporary file is left.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        leftover = re.compile(re.escape(path.stem) + r"\.tmp-\d+" + re.escape(path.suffix))
        for stale in path.parent.glob(f"{glob.escape(path.stem)}.tmp-*{glob.escape(path.suffix)}"):
            if leftover.fullmatch(stale.name) and stale.is_file():
                stale.unlink(missing_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OutputWriteError:
        raise
    except OSError as e:
        err = write_error(path, e)
        if err is None:
            raise
        raise err from e
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses this too; the error above says why
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()


def save_torch(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (:func:`atomic_output`).

    Written through a file object: saved by name, torch records the (temporary, per-process)
    file name inside the archive, so the same object gave other bytes in every run; through a
    file object the bytes depend on ``obj`` only, and a full disk raises ``OSError`` (ENOSPC)
    rather than torch's errno-less ``RuntimeError``.
    """
    import torch  # not at module level: io is imported where torch is not needed

    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            # A write that fails inside torch.save resurfaces as torch's RuntimeError once the
            # archive is closed; the OSError it happened during says why.
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise
    return Path(path)


class CheckpointError(ValueError):
    """A checkpoint or model file cannot be used; the message names the file and what is wrong."""


def load_checkpoint(path: str | Path, *, expected_format: str | None = None, required: tuple[str, ...] = ()) -> dict:
    """Read a checkpoint or model file written by ``torch.save`` of a dict, safely.

    Args:
        path: the file.
        expected_format: when given, the file's ``"format"`` entry must equal it (model files
            carry one, e.g. ``"rgbir_reid.reid_model/1"``).
        required: keys the dict must hold.

    Raises:
        CheckpointError: the file is missing, truncated or not a torch file, holds something
            other than a dict, has another ``format``, or lacks a ``required`` key; the message
            names ``path``. Never a traceback from inside torch.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        import torch  # not at module level: io is imported where torch is not needed

        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch's unpickler raises on a damaged file
        # torch raises RuntimeError / UnpicklingError for truncated zips, and for files that are
        # not torch.save output at all anything from EOFError to IndexError (a text file); the
        # first line of its message is enough detail.
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, damaged or not written by torch.save): {detail}; "
            "delete it to start that stage over"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    if expected_format is not None and state.get("format") != expected_format:
        raise CheckpointError(f"{path} is not a {expected_format!r} file (its format is {state.get('format')!r})")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: not a checkpoint of this training stage")
    return state


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
