"""Method families: the one contract every re-ID method of the workflow follows.

A *method* is an entry of the config's ``methods:`` (``ce2l``, ``baseline``, ...); its
``family:`` says which code runs it. A *family* (:class:`MethodFamily`) names

- its settings (a section of defaults shared by its methods, e.g. ``reid:``, and the keys a
  method entry may override; the schema validates each entry against its own family),
- whether it trains (a ``train_<family>`` job per dataset trial and method) and how,
- how it turns a trial's test images into features (``extract``, the same job for every family),
- what it needs from earlier stages: the per-trial HDF5 cache, and CycleGAN conversions in it.

The workflow reads only this contract, so every family meets again at ``features.h5`` ->
``evaluate`` -> ``report``, and a family that needs no conversion (or no training) plans no
CycleGAN (or no training job). The registry is the plain dict :data:`FAMILIES` from family
name to the module defining its ``FAMILY``; modules are imported on first use and import
their heavy dependencies (torch) inside ``train`` / ``extract``, so parsing the workflow stays fast.

Adding a family: a module ``rgbir_reid/methods/<name>.py`` defining ``FAMILY``, its line in
:data:`FAMILIES`, its schema entry (``workflow/schemas/config.schema.yaml``), and its tests
(docs/adding-a-method.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

Settings = Mapping[str, Any]

# Family name -> module defining FAMILY.
FAMILIES: dict[str, str] = {
    "reid": "rgbir_reid.methods.reid",
    "handcrafted": "rgbir_reid.methods.handcrafted",
    "aligngan": "rgbir_reid.methods.aligngan",
}


@dataclass(frozen=True)
class MethodFamily:
    """How the workflow runs the methods of one family.

    Attributes:
        name: the ``family:`` value in the config (a key of :data:`FAMILIES`).
        summary: one line for the README and logs.
        defaults_section: the config section holding the defaults its methods override (its
            keys are the family's settings), or ``None`` when a method entry holds all of them.
        needs_cache: ``needs_cache(settings)``: whether training reads the trial's HDF5 cache.
        needs_conversion: ``needs_conversion(settings)``: whether the cache must hold CycleGAN
            conversions (then the workflow trains the trial's CycleGAN first).
        train: ``train(cache_path, out_dir, settings, *, device, seed, logger, section) -> Path``
            writing ``out_dir/model.pt``, ``losses.csv``, ``losses.png`` and ``losses.pdf``
            (``section`` names the config entry in error messages); ``None``: the family does
            not train, and the workflow plans no training job for it.
        extract: ``extract(model_path, records, settings, *, batch_size, flip, device, logger)
            -> (features [N, D] float32, attrs)``: one feature row per test record, in their
            order, compared by Euclidean distance; ``model_path`` is ``None`` for families that
            do not train; ``attrs`` are provenance attributes for ``features.h5``.
        budget: ``budget(settings) -> str``, a line on the optimisation budget shown by
            ``snakemake -n`` (families that train).
        work: ``work(settings) -> int``, the training's size in images through the network
            (steps x images per step, roughly): the workflow starts the largest trainings first
            (their Snakemake priority), so that on a machine running two jobs at once the
            longest one does not start last and hold up the end of the run. ``None``: all 0.
        figures: more files ``train`` writes into ``out_dir`` for the report, by output name
            (e.g. AlignGAN's ``{"samples": "samples.png"}``, its RGB -> fake IR grid); the
            train job declares them as report figures.
        needs_generators: ``needs_generators(settings)``: whether training starts from the
            trial's CycleGAN generators (then the workflow trains the CycleGAN first and passes
            its ``generator.pt`` to ``train`` as ``generators=``). ``None``: never.
        check: ``check(settings, config, section)``, raising ``ValueError`` (naming ``section``
            and the config keys) when the method's settings do not fit the rest of the config;
            the workflow calls it when it parses the config. ``None``: nothing to check.
    """

    name: str
    summary: str
    defaults_section: str | None
    needs_cache: Callable[[Settings], bool]
    needs_conversion: Callable[[Settings], bool]
    train: Callable[..., Path] | None
    extract: Callable[..., tuple[np.ndarray, dict]]
    budget: Callable[[Settings], str] | None = None
    work: Callable[[Settings], int] | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    needs_generators: Callable[[Settings], bool] | None = None
    check: Callable[[Settings, Mapping[str, Any], str], None] | None = None

    @property
    def trains(self) -> bool:
        return self.train is not None


def get_family(name: str) -> MethodFamily:
    """The registered family ``name``.

    Raises:
        ValueError: unknown family (lists the registered ones).
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown method family {name!r}; registered families: {', '.join(sorted(FAMILIES))}")
    family = importlib.import_module(FAMILIES[name]).FAMILY
    assert family.name == name, f"{FAMILIES[name]} defines family {family.name!r}, registered as {name!r}"
    return family


def method_settings(entry: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A method's settings: its family's defaults section (from ``config``) updated by the entry's
    own keys (all but ``family``).

    Args:
        entry: the method's ``methods:`` entry, e.g. ``{"family": "reid", "train_sets": [...]}``.
        config: the validated workflow config (defaults filled in by the schema).

    Raises:
        ValueError: unknown family, or an entry without ``family``.
    """
    if "family" not in entry:
        raise ValueError(f"method entry {dict(entry)} has no family: key")
    family = get_family(entry["family"])
    settings = dict(config.get(family.defaults_section) or {}) if family.defaults_section else {}
    settings.update({k: v for k, v in entry.items() if k != "family"})
    return settings
