"""Provenance of every result row: which settings, model, code and test feature made a number.

The evaluate stage adds :func:`row_provenance` to each metrics row it writes; the report carries
the values into ``table.csv`` (one column each, :data:`PROVENANCE_COLUMNS`) and into
``provenance.html``, the table the Snakemake HTML report shows. A table row that summarises
several models (RegDB's ten trials, several training seeds) lists each distinct value once, in
the order of its metrics rows (trial, then seed), separated by spaces.

================  =================================================================================
column            meaning
================  =================================================================================
``config_hash``   first 12 hex digits of the sha256 of the method's resolved settings as canonical
                  JSON (sorted keys, with its family): :func:`method_config_hash`
``seeds``         the training seeds of the row's models (config key ``seeds``), in the order of
                  ``model_sha256``'s entries for one trial; empty for methods that do not train
``model_sha256``  sha256 of the model file the features came from, one per trial and seed; empty
                  for methods that do not train (hand-crafted descriptors)
``version``       ``rgbir_reid.__version__`` of the library that evaluated
``code_hash``     the library's training-code hash at evaluation
                  (``rgbir_reid.code_hash.training_code_hash``, what checkpoints record); Snakemake does not rerun
                  training when the library changes, so a model trained by older code still shows
                  the hash of the code that evaluated it
``test_feature``  the feature matched: the ``test_feature`` attribute of ``features.h5`` (re-ID
                  family: ``bnneck``, the eval-mode BN embedding, or ``pooled``), else the
                  descriptor name (``lomo``...), else the family's (:data:`FAMILY_TEST_FEATURE`:
                  re-ID files written before the attribute existed hold the BN embedding)
``flip``          ``on`` / ``off``: flip test-time augmentation
``rerank``        ``on`` / ``off``: k-reciprocal re-ranking of the distances
================  =================================================================================
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from rgbir_reid.io import config_hash

PROVENANCE_COLUMNS = ("config_hash", "seeds", "model_sha256", "version", "code_hash", "test_feature", "flip", "rerank")
# The feature each family's extract step matches, where its features.h5 does not name it.
FAMILY_TEST_FEATURE = {"reid": "bnneck", "aligngan": "pooled"}
CONFIG_HASH_DIGITS = 12


def method_config_hash(family: str, settings: Mapping[str, Any]) -> str:
    """Short hash of a method's resolved settings: the first 12 hex digits of the sha256 of
    ``{"family": family, "settings": settings}`` as JSON with sorted keys (key order, and lists
    versus tuples, do not change it)."""
    return config_hash({"family": family, "settings": settings})[:CONFIG_HASH_DIGITS]


def _attr(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (numpy scalars, bytes)."""
    if hasattr(value, "item"):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else value


def row_provenance(
    feature_attrs: Mapping[str, Any],
    *,
    family: str,
    settings: Mapping[str, Any],
    version: str,
    code_hash: str,
) -> dict[str, str]:
    """The provenance values of one method's metrics rows (all but ``rerank``, which each row has).

    Args:
        feature_attrs: the attributes of the method's ``features.h5`` (``model_sha256``, ``flip``,
            ``descriptor``, ``test_feature`` where its family writes them).
        family: the method's family name; settings: its resolved settings.
        version: the library version; code_hash: the training-code hash.

    Returns:
        ``{column: text}`` for the columns of :data:`PROVENANCE_COLUMNS` but ``rerank`` and
        ``seeds`` (which come from each row's ``rerank`` and ``seed`` keys).
    """
    attrs = {k: _attr(v) for k, v in feature_attrs.items()}
    feature = attrs.get("test_feature") or attrs.get("descriptor") or FAMILY_TEST_FEATURE.get(family, "")
    return {
        "config_hash": method_config_hash(family, settings),
        "model_sha256": str(attrs.get("model_sha256", "")),
        "version": str(version),
        "code_hash": str(code_hash),
        "test_feature": str(feature),
        "flip": "on" if attrs.get("flip") else "off",
    }


def summarise_provenance(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The provenance cells of a table row made from ``rows`` (one method's metrics rows): each
    column's distinct values in order of first appearance, joined by spaces; ``rerank`` from the
    rows' ``rerank`` flag, ``seeds`` from their ``seed`` (training seed; None for a method that
    does not train). Rows without provenance (metrics files of older versions) give ``""``."""
    out = {}
    for column in PROVENANCE_COLUMNS:
        if column == "rerank":
            values = ["on" if row.get("rerank") else "off" for row in rows]
        elif column == "seeds":
            values = [str(row["seed"]) for row in rows if row.get("seed") is not None]
        else:
            values = [str(row[column]) for row in rows if row.get(column) not in (None, "")]
        out[column] = " ".join(dict.fromkeys(values))
    return out


def provenance_html(records: Sequence[Mapping[str, str]], title: str = "Provenance of the results") -> str:
    """A standalone HTML page with one table: a row per ``records`` entry (keys ``dataset``,
    ``method`` and :data:`PROVENANCE_COLUMNS`), for the Snakemake report."""
    columns = ("dataset", "method", *PROVENANCE_COLUMNS)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td><code>{html.escape(str(rec.get(c, '')))}</code></td>" for c in columns) + "</tr>\n"
        for rec in records
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>\n"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse} "
        "td,th{border:1px solid #bbb;padding:3px 6px;text-align:left} code{word-break:break-all}</style>"
        "</head><body>\n<h2>" + html.escape(title) + "</h2>\n<p>One row per dataset, method and re-ranking; "
        "config_hash: sha256 (12 hex digits) of the method's resolved settings as canonical JSON; seeds: the "
        "training seeds of its models; model_sha256: each model file, in the order of the seeds (empty: no trained model); version and code_hash: the library that evaluated.</p>\n"
        f"<table>\n<tr>{head}</tr>\n{body}</table>\n</body></html>\n"
    )
