"""Turning the validated workflow config into the library's typed settings, at the edge.

The workflow validates ``config.yaml`` against ``workflow/schemas/config.schema.yaml``
(which also fills in the defaults); the scripts then build each stage's frozen settings
dataclass from its section with :func:`settings_from`. The library itself never reads the
config.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def settings_from(cls: type[T], mapping: Mapping[str, Any] | None, section: str) -> T:
    """Build the frozen dataclass ``cls`` from a config section.

    Lists become tuples where the field is annotated as a tuple, so settings stay hashable.

    Args:
        cls: a dataclass type (e.g. ``CycleGANSettings``).
        mapping: the config section (may be ``None`` or empty: all defaults).
        section: the section's name in the config, used in error messages (e.g. ``"reid"``).

    Raises:
        ValueError: naming ``section.key`` for a key that ``cls`` does not have.
    """
    mapping = dict(mapping or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
            f"valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in mapping.items():
        if isinstance(value, list) and "tuple" in str(hints.get(key, "")).lower():
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def defaults_of(cls: type) -> dict[str, Any]:
    """The default value of every field of a settings dataclass (lists for tuples), for schema checks."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            value = f.default_factory()  # type: ignore[misc]
        else:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
