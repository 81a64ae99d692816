"""Config validation, the default (demo) run's plan, and Snakemake's linter."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO, planned_jobs, run_snakemake
from rgbir_reid.config import defaults_of, settings_from


def schema():
    return yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_default_run_dry_run_lists_every_stage(tmp_path):
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml")))
    for rule in ["make_demo", "index_dataset", "make_splits", "train_cyclegan", "build_cache",
                 "train_reid", "extract", "evaluate", "report"]:
        assert jobs.get(rule, 0) >= 1, (rule, jobs)


def test_lint_reports_nothing():
    proc = run_snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"reid": {"lrr": 0.1}}, "lrr"),
        ({"cyclegan": {"lambda_cycle": "ten"}}, "lambda_cycle"),
        ({"datasets": {"x": {"format": "sysu", "root": "/x"}}}, "format"),
        ({"evaluaton": {}}, "evaluaton"),
    ],
)
def test_unknown_or_mistyped_key_is_an_error_naming_it(tmp_path, patch, key):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, value in patch.items():
        if isinstance(config.get(section), dict) and section != "datasets":
            config[section].update(value)
        else:
            config[section] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"lr": 0.1}, ["family"]),                                  # no family: key
        ({"family": "resnet", "lr": 0.1}, ["family", "resnet"]),   # not a registered family
        ({"family": "reid", "lrr": 0.1}, ["lrr"]),                 # a key the family does not have
    ],
)
def test_method_entry_is_validated_against_its_family(tmp_path, entry, words):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"] = {"mine": entry}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    for word in words:
        assert word in proc.stdout + proc.stderr, word


def test_missing_root_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"regdb": {"format": "regdb"}}}))
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0 and "datasets.regdb.root" in proc.stdout + proc.stderr


def test_schema_defaults_are_the_library_defaults():
    from rgbir_reid.training.aligngan import AlignGANSettings
    from rgbir_reid.training.cyclegan import CycleGANSettings
    from rgbir_reid.training.reid_settings import ReidSettings

    defs = schema()["$defs"]
    for name, cls in [("cyclegan", CycleGANSettings), ("reid", ReidSettings), ("aligngan", AlignGANSettings)]:
        props = defs[name]["properties"]
        assert set(props) == set(defaults_of(cls)), name
        for key, value in defaults_of(cls).items():
            assert props[key].get("default") == value, f"{name}.{key}"
    for family, cls in [("reid", ReidSettings), ("aligngan", AlignGANSettings)]:
        method_keys = set(defs[f"{family}_method"]["propertyNames"]["enum"])
        assert method_keys == set(defaults_of(cls)) | {"family"}, family


def test_settings_from_names_unknown_key():
    from rgbir_reid.training.reid_settings import ReidSettings

    with pytest.raises(ValueError, match=r"methods\.x\.nope"):
        settings_from(ReidSettings, {"nope": 1}, "methods.x")


@pytest.mark.parametrize(
    "config, expected",
    [
        # ce2l, bdtr, one_stream, two_stream, zero_padding, agw, caj (train_reid) and aligngan
        # (train_aligngan) train; hog, lomo, mlbp do not
        ("sysu_mm01.yaml", {"train_cyclegan": 1, "build_cache": 1, "train_reid": 7, "train_aligngan": 1,
                            "extract": 11, "evaluate": 11}),
        ("regdb.yaml", {"train_cyclegan": 10, "build_cache": 10, "train_reid": 70, "train_aligngan": 10,
                        "extract": 110, "evaluate": 110}),
    ],
)
def test_full_paper_configs_plan_the_whole_dag(tmp_path, shared_data, config, expected):
    settings = yaml.safe_load((REPO / "workflow" / "configs" / config).read_text())
    # The SYSU-MM01 protocol files are inputs of `evaluate`, so the plan needs real ones.
    protocol_dir = shared_data / "sysu_mm01_protocol" / "evaluation"
    for ds in settings["datasets"].values():
        for key in ("rand_perm_cam", "test_id_indoor"):
            if ds.get(key):
                ds[key] = str(protocol_dir / f"{key}.mat")
    path = tmp_path / config
    path.write_text(yaml.safe_dump(settings))
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "--configfile", str(path)))
    for rule, count in expected.items():
        assert jobs.get(rule) == count, (rule, count, jobs)


def test_run_without_conversion_skips_the_cyclegan(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"] = {"bdtr": config["methods"]["bdtr"]}
    path = tmp_path / "baseline_only.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path))
    jobs = planned_jobs(proc)
    assert jobs.get("build_cache", 0) >= 1 and jobs.get("train_reid", 0) >= 1, jobs
    assert "train_cyclegan" not in proc.stdout


def test_handcrafted_only_run_plans_no_training_conversion_or_cache(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"] = {m: e for m, e in config["methods"].items() if e["family"] == "handcrafted"}
    assert set(config["methods"]) == {"hog", "lomo", "mlbp"}
    path = tmp_path / "handcrafted_only.yaml"
    path.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "--configfile", str(path)))
    assert jobs.get("extract") == 3 and jobs.get("evaluate") == 3 and jobs.get("report") == 1, jobs
    assert not [rule for rule in jobs if rule.startswith("train_") or rule == "build_cache"], jobs


def test_mixed_run_trains_only_the_training_families(tmp_path):
    # One train job per trained method and training seed; extract and evaluate for every trained
    # model, and once for each method that does not train.
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml")))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    trained = [m for m, e in config["methods"].items() if e["family"] != "handcrafted"]
    n_seeds = len(config["seeds"])
    assert jobs.get("train_reid") == len(trained) * n_seeds, jobs
    assert jobs.get("extract") == jobs.get("evaluate") == len(trained) * n_seeds + len(config["methods"]) - len(trained), jobs


@pytest.mark.parametrize("paper", ["sysu_mm01", "regdb"])
def test_paper_configs_plan_the_same_budget_for_ce2l_and_bdtr(tmp_path, shared_data, paper):
    # Equal budgets: the dry run's train_reid messages give each method's steps and schedule.
    config = yaml.safe_load((REPO / "workflow" / "configs" / f"{paper}.yaml").read_text())
    (name, dataset), = config["datasets"].items()
    dataset["root"] = str(tmp_path)
    if paper == "sysu_mm01":
        protocol = shared_data / "sysu_mm01_protocol"
        dataset["rand_perm_cam"] = str(next(protocol.rglob("rand_perm_cam.mat")))
    else:
        dataset["trials"] = [1]
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path))
    budgets = {}
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        if f"train_reid {name} trial 1 " in line:
            run, budget = line.split(f"train_reid {name} trial 1 ", 1)[1].split(": ", 1)
            budgets[run.split(" seed ")[0]] = budget  # "ce2l seed 0": one job per training seed
    assert {"ce2l", "bdtr", "agw", "caj"} <= set(budgets), proc.stdout
    steps = {m: b.split(" steps")[0] for m, b in budgets.items()}
    schedule = {m: b.split("; ", 1)[1] for m, b in budgets.items()}
    assert steps["ce2l"] == steps["bdtr"] and schedule["ce2l"] == schedule["bdtr"], budgets


@pytest.mark.parametrize("paper", ["sysu_mm01", "regdb"])
def test_paper_configs_build_the_bdtr_two_stream_layout(paper):
    # BDTR: one AlexNet per modality through fc6 (+ BN); shared: embedding and classifier only.
    from rgbir_reid.training.reid_model import model_from_settings
    from rgbir_reid.training.reid_settings import ReidSettings

    reid = yaml.safe_load((REPO / "workflow" / "configs" / f"{paper}.yaml").read_text())["reid"]
    settings = settings_from(ReidSettings, reid, "reid")
    assert settings.architecture == "two_stream_alexnet" and settings.specific_stages == "all"
    model = model_from_settings(settings, 10, pretrained="none")
    specific = {n.split(".", 1)[1] for n, _ in model.named_parameters() if n.startswith("visible_stream.")}
    assert specific == {n.split(".", 1)[1] for n, _ in model.named_parameters() if n.startswith("thermal_stream.")}
    # conv1 .. conv5 (torchvision's feature indices), fc6 and its BN: every weighted layer
    assert {n for n in specific if n.endswith("weight")} == {
        "0.0.weight", "1.3.weight", "2.6.weight", "3.8.weight", "4.10.weight", "5.2.weight", "5.3.weight",
    }
    tops = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert tops - {"visible_stream", "thermal_stream"} == {"embedding", "bn", "classifier"}


@pytest.mark.parametrize("config_file", ["config.yaml", "workflow/configs/sysu_mm01.yaml", "workflow/configs/regdb.yaml"])
def test_wu_baselines_share_what_their_layouts_say(config_file):
    # One-stream: every layer shared. Two-stream: one trunk per modality, shared embedding and
    # classifier. Zero-padding: every layer shared, a two-channel first convolution. All three:
    # identity loss only, real images only.
    import torch

    from rgbir_reid.methods import method_settings
    from rgbir_reid.training.reid_model import model_from_settings
    from rgbir_reid.training.reid_settings import ReidSettings

    config = yaml.safe_load((REPO / config_file).read_text())
    config["reid"] = {**defaults_of(ReidSettings), **config.get("reid", {})}
    models = {}
    for name in ("one_stream", "two_stream", "zero_padding"):
        settings = settings_from(ReidSettings, method_settings(config["methods"][name], config), name)
        assert settings.weight_cross == settings.weight_intra == 0 and settings.weight_id > 0, name
        assert set(settings.train_sets) == {"real_visible", "real_thermal"} and not settings.lsr_sets, name
        models[name] = model_from_settings(settings, 4, pretrained="none")
    tops = lambda m: {n.split(".")[0] for n, _ in m.named_parameters()}  # noqa: E731
    assert tops(models["one_stream"]) - {"shared_deep"} == {"shared_shallow", "embedding", "bn", "classifier"}
    assert tops(models["two_stream"]) - {"shared_deep"} == {"visible_stream", "thermal_stream", "embedding", "bn", "classifier"}
    if config_file != "config.yaml":  # the paper configs: one whole trunk per modality (the references' choice)
        assert not [n for n, p in models["two_stream"].named_parameters() if n.startswith("shared_deep")]
    assert tops(models["zero_padding"]) == tops(models["one_stream"])
    first_conv = next(m for m in models["zero_padding"].modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 2


def test_results_that_is_a_file_stops_the_run_naming_it(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{tmp_path / 'results'} is a file, not a folder" in out, out[-2000:]
    assert "Traceback" not in out
    assert (tmp_path / "results").read_text() == "not a folder"  # nothing the user made is touched


def _aligngan_only(tmp_path, **overrides):
    config = yaml.safe_load((REPO / "workflow" / "configs" / "demo_aligngan.yaml").read_text())
    config["methods"] = {"aligngan": {"family": "aligngan", **overrides}}
    path = tmp_path / "aligngan_only.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_aligngan_starting_from_the_cyclegan_plans_the_cyclegan_first(tmp_path):
    # No method uses converted images here, so only AlignGAN's pixel_init: cyclegan asks for the CycleGAN.
    path = _aligngan_only(tmp_path)
    assert yaml.safe_load(path.read_text())["aligngan"]["pixel_init"] == "cyclegan"
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(path))
    jobs = planned_jobs(proc)
    assert jobs.get("train_cyclegan") == 1 and jobs.get("train_aligngan") == 1, jobs
    # The official pixel_init: none needs no CycleGAN (AlignGAN's own pixel warm-up).
    official = _aligngan_only(tmp_path, pixel_init="none", generator="aligngan", norm_statistics="running")
    jobs = planned_jobs(run_snakemake(tmp_path, "-n", "--configfile", str(official)))
    assert "train_cyclegan" not in jobs and jobs.get("train_aligngan") == 1, jobs


@pytest.mark.parametrize("override, message", [
    ({"n_blocks": 4}, "methods.aligngan.n_blocks must be 3 (got 4)"),
    ({"ngf": 32}, "methods.aligngan.ngf must be 16 (got 32)"),
])
def test_aligngan_generators_that_do_not_fit_the_cyclegan_stop_the_run_naming_the_keys(tmp_path, override, message):
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(_aligngan_only(tmp_path, **override)), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr and "methods.aligngan.pixel_init" in proc.stdout + proc.stderr
