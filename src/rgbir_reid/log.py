"""Logging set-up shared by the workflow scripts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def get_logger(name: str, log_file: str | Path | None = None) -> logging.Logger:
    """A logger writing ``time level message`` lines to stderr and, if given, to ``log_file``."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    # A second call for the same name (e.g. tests running several scripts in one process)
    # replaces the handlers; close them first so their log files are not left open.
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False
    return logger
