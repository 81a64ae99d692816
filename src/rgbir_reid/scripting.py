"""Support for the thin workflow scripts in ``workflow/scripts/``.

Each script is ``run_script(snakemake, main)`` with a ``main(snakemake, logger)`` that calls
the library. Errors are written to the rule's log and to stderr, then the job fails with a
non-zero exit; Snakemake removes the job's declared outputs, and the library writes every
output under a temporary name first, so nothing half-written is taken as finished. A full disk
or an unwritable folder ends the job with one line naming the path (``cannot write <path>: no
space left on device``), the log file included.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import traceback
from typing import Any, Callable

from rgbir_reid.io import OutputWriteError, write_error
from rgbir_reid.log import get_logger


# Errors that only a write gives: an OSError with them names an output, even when it was not
# written through atomic_output.
_WRITING_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def error_message(e: BaseException) -> str:
    """The one line a failed job reports: ``cannot write <path>: <reason>`` for a failed write
    (disk full, read-only, no permission), ``<path>: <reason>`` for another ``OSError`` that names
    its file, else ``<type>: <message>``."""
    if isinstance(e, OutputWriteError):
        return str(e)
    if isinstance(e, OSError) and e.filename:
        if e.errno in _WRITING_ONLY:
            return str(write_error(e.filename, e))
        return f"{e.filename}: {(e.strerror or str(e)).lower()}"
    return f"{type(e).__name__}: {e}"


def run_script(snakemake: Any, main: Callable[[Any, logging.Logger], None]) -> None:
    """Run ``main`` with a logger writing to ``snakemake.log[0]``; on error log it and exit 1."""
    # One thread pool per job, sized to the job's `threads:`, so parallel jobs do not
    # oversubscribe the cores (tiny networks slow down by an order of magnitude when they do).
    # Method families import torch inside their functions (a job that needs no torch is spared
    # its import, ~2.4 s), so the size is also set in the environment that torch (OpenMP) and
    # numba read when they are first imported.
    threads = str(max(1, int(snakemake.threads)))
    os.environ["OMP_NUM_THREADS"] = threads
    os.environ["NUMBA_NUM_THREADS"] = threads
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(threads))
    log_file = snakemake.log[0] if len(snakemake.log) else None
    try:
        logger = get_logger(f"rgbir_reid.{snakemake.rule}", log_file)
    except OSError as e:  # e.g. results/logs/ on a read-only or full disk: nowhere to log it but stderr
        print(f"rule {snakemake.rule}: {error_message(e)}", file=sys.stderr)
        sys.exit(1)
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        main(snakemake, logger)
    except Exception as e:  # the message names the file or key; the traceback goes to the log only
        logger.error("%s", error_message(e))
        if log_file is not None:
            with contextlib.suppress(OSError), open(log_file, "a") as f:  # the log's disk may be the full one
                f.write(traceback.format_exc())
        sys.exit(1)
