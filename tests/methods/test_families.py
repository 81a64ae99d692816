"""The method-family contract: the registry, settings merging, and what each family tells the workflow."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from rgbir_reid.config import defaults_of
from rgbir_reid.methods import FAMILIES, MethodFamily, get_family, method_settings
from rgbir_reid.training.reid_settings import ReidSettings


def schema_defs() -> dict:
    return yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())["$defs"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_registered_family_loads_with_its_own_name_and_a_schema_entry(name):
    family = get_family(name)
    assert isinstance(family, MethodFamily) and family.name == name
    defs = schema_defs()
    assert name in defs["method"]["properties"]["family"]["enum"]
    branches = {b["if"]["properties"]["family"]["const"]: b["then"]["$ref"] for b in defs["method"]["allOf"]}
    assert branches[name] == f"#/$defs/{name}_method"
    assert f"{name}_method" in defs
    if family.trains:
        assert family.budget is not None  # the train job's message in `snakemake -n`


def test_schema_lists_exactly_the_registered_families():
    assert set(schema_defs()["method"]["properties"]["family"]["enum"]) == set(FAMILIES)


def test_unknown_family_names_the_registered_ones():
    with pytest.raises(ValueError, match=r"'nope'.*registered families: .*reid"):
        get_family("nope")
    with pytest.raises(ValueError, match="family"):
        method_settings({"lr": 1}, {})


def test_method_settings_are_the_family_section_with_the_entry_on_top():
    config = {"reid": {"lr": 0.1, "epochs": 3}}
    assert method_settings({"family": "reid", "lr": 0.5}, config) == {"lr": 0.5, "epochs": 3}
    assert config == {"reid": {"lr": 0.1, "epochs": 3}}  # the section is not modified


def test_reid_method_keys_are_the_reid_settings():
    keys = set(schema_defs()["reid_method"]["propertyNames"]["enum"])
    assert keys == set(defaults_of(ReidSettings)) | {"family"}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_family_with_a_defaults_section_has_it_in_the_schema(name):
    section = get_family(name).defaults_section
    if section is not None:
        assert section in yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())["properties"]


def test_aligngan_needs_the_cache_but_no_cyclegan():
    family = get_family("aligngan")
    assert family.trains and family.needs_cache({}) and not family.needs_conversion({})


def test_reid_family_needs_the_cyclegan_only_for_converted_sets():
    reid = get_family("reid")
    assert reid.trains and reid.needs_cache({"train_sets": ["real_visible"]})
    assert not reid.needs_conversion({"train_sets": ["real_visible", "real_thermal"]})
    assert reid.needs_conversion({"train_sets": ["real_visible", "converted_thermal"]})


def test_reid_budget_counts_real_and_converted_images_per_step():
    settings = {**defaults_of(ReidSettings), "num_identities": 4, "num_instances": 2, "num_converted_instances": 1,
                "batches_per_epoch": 10, "epochs": 3}
    line = get_family("reid").budget(settings)
    # 2 modalities x 4 identities x (2 real + 1 converted) = 24 images per step
    assert line.startswith("3 epochs of 10 steps, 24 images per step (4 identities x 2 real + 1 converted")
    real_only = get_family("reid").budget({**settings, "train_sets": ["real_visible", "real_thermal"]})
    assert "16 images per step (4 identities x 2 real per modality)" in real_only


def test_reid_family_train_names_the_config_entry_of_a_bad_key(tmp_path):
    with pytest.raises(ValueError, match=r"methods\.mine\.lrr"):
        get_family("reid").train(tmp_path / "cache.h5", tmp_path, {"lrr": 1}, section="methods.mine")


def test_the_registry_imports_no_torch():
    # The workflow imports the registry when it is parsed: that must stay fast (no torch).
    code = ("import sys; from rgbir_reid.methods import FAMILIES, get_family\n"
            "[get_family(n) for n in FAMILIES]\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_work_orders_the_demo_trainings_largest_first():
    """The train jobs' priority: ce2l (400 steps of 256 images) before bdtr (400 of 128) before
    the 300-step baselines; AlignGAN counts every stage's images."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["reid"] = {**defaults_of(ReidSettings), **config["reid"]}
    reid = get_family("reid")
    work = {m: reid.work(method_settings(e, config)) for m, e in config["methods"].items() if e["family"] == "reid"}
    assert work["ce2l"] == 8 * 50 * 256 and work["bdtr"] == 8 * 50 * 128
    assert work["ce2l"] > work["bdtr"] > work["one_stream"] == work["two_stream"] == work["zero_padding"] == 4 * 75 * 128
    aligngan = get_family("aligngan")
    settings = {"ide_identities": 2, "ide_instances": 3, "gan_identities": 2, "gan_instances": 1,
                "feature_warmup_iterations": 10, "pixel_warmup_iterations": 5, "joint_iterations": 7}
    assert aligngan.work(settings) == 10 * 6 + 5 * 2 * 2 + 7 * 2 * (6 + 2)
