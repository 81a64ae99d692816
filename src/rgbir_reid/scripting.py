"""Support for the thin workflow scripts in ``workflow/scripts/``.

Each script is ``run_script(snakemake, main)`` with a ``main(snakemake, logger)`` that calls
the library. Errors are written to the rule's log and to stderr, then the job fails with a
non-zero exit; Snakemake removes the job's declared outputs, and the library writes every
output under a temporary name first, so nothing half-written is taken as finished.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any, Callable

from rgbir_reid.log import get_logger


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
    logger = get_logger(f"rgbir_reid.{snakemake.rule}", log_file)
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        main(snakemake, logger)
    except Exception as e:  # the message names the file or key; the traceback goes to the log only
        logger.error("%s: %s", type(e).__name__, e)
        if log_file is not None:
            with open(log_file, "a") as f:
                f.write(traceback.format_exc())
        sys.exit(1)
