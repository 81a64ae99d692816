"""CycleGAN training loop: resume after SIGKILL, reproducibility, schedule, converters."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rgbir_reid.conversion import convert_images, load_generators, make_converters
from rgbir_reid.training.cyclegan import CycleGANSettings, cycle_generator_loss, cycle_generator_terms, cyclegan_iteration, lr_factor, train_cyclegan

TINY = dict(image_size=(32, 16), ngf=4, ndf=4, n_blocks=1, log_every=5, checkpoint_every=5, sample_count=1)



def _sysu_paths(shared_data: Path) -> tuple[list[str], list[str]]:
    root = shared_data / "sysu_mm01_sample"
    visible = sorted(str(p) for cam in ("cam1", "cam2", "cam4", "cam5") for p in (root / cam).rglob("*.jpg"))
    thermal = sorted(str(p) for cam in ("cam3", "cam6") for p in (root / cam).rglob("*.jpg"))
    return visible, thermal


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logger(name: str) -> tuple[logging.Logger, _ListHandler]:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    handler = _ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def _generator_state(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _same_generators(a: Path, b: Path) -> bool:
    sa, sb = _generator_state(a), _generator_state(b)
    return all(torch.equal(sa[n][k], sb[n][k]) for n in ("G_rgb2ir", "G_ir2rgb") for k in sa[n])


SCRIPT = """
import torch
torch.set_num_threads(1)
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan
visible, thermal, out = {visible!r}, {thermal!r}, {out!r}
train_cyclegan(visible, thermal, out, CycleGANSettings(**{settings!r}), seed=3)
"""


def test_killed_run_resumes_from_checkpoint(shared_data, tmp_path):
    visible, thermal = _sysu_paths(shared_data)
    settings = {**TINY, "iterations": 40}
    out = tmp_path / "killed"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(visible=visible, thermal=thermal, out=str(out), settings=settings)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoints" / "last.pt"
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not (out / "generator.pt").exists()
    killed_at = torch.load(ckpt, weights_only=True)["iteration"]
    assert 0 < killed_at < 40 and killed_at % 5 == 0

    logger, log = _logger("test_resume")
    gen = train_cyclegan(visible, thermal, out, CycleGANSettings(**settings), seed=3, logger=logger)
    assert f"resuming from iteration {killed_at} of 40" in log.messages[0]
    logged = [int(m.split()[1].split("/")[0]) for m in log.messages if m.startswith("iter ")]
    assert logged == list(range(killed_at + 5, 41, 5))  # continues, does not restart at 5
    assert gen.exists() and torch.load(ckpt, weights_only=True)["iteration"] == 40
    losses = pd.read_csv(out / "losses.csv")
    assert losses["iteration"].tolist() == list(range(5, 41, 5))  # rows before the kill kept, none twice
    assert np.isfinite(losses.drop(columns="iteration").to_numpy()).all()

    # Resuming loses nothing: the result equals an uninterrupted run with the same seed.
    straight = train_cyclegan(visible, thermal, tmp_path / "straight", CycleGANSettings(**settings), seed=3)
    assert _same_generators(gen, straight)


def test_same_seed_same_generator_other_seed_differs(shared_data, tmp_path):
    visible, thermal = _sysu_paths(shared_data)
    s = CycleGANSettings(**{**TINY, "iterations": 4, "sample_count": 0})
    a = train_cyclegan(visible, thermal, tmp_path / "a", s, seed=0)
    b = train_cyclegan(visible, thermal, tmp_path / "b", s, seed=0)
    c = train_cyclegan(visible, thermal, tmp_path / "c", s, seed=1)
    assert _same_generators(a, b)
    assert not _same_generators(a, c)


def test_checkpoint_of_other_settings_is_not_resumed(shared_data, tmp_path):
    visible, thermal = _sysu_paths(shared_data)
    s = CycleGANSettings(**{**TINY, "iterations": 5, "sample_count": 0})
    train_cyclegan(visible, thermal, tmp_path, s, seed=0)
    logger, log = _logger("test_other_settings")
    train_cyclegan(visible, thermal, tmp_path, CycleGANSettings(**{**TINY, "iterations": 5, "lr": 1e-4, "sample_count": 0}), seed=0, logger=logger)
    assert "starting over" in log.messages[0]
    assert any(m.startswith("iter 5/5") for m in log.messages)


def test_lr_schedule_constant_then_linear_to_zero():
    # 10 iterations, last 4 decaying: factors 1 x6, then 4/4, 3/4, 2/4, 1/4 ... the next would be 0.
    assert [lr_factor(i, 10, 4) for i in range(10)] == [1, 1, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25]
    assert lr_factor(10, 10, 4) == 0.0
    assert [lr_factor(i, 3, 0) for i in range(3)] == [1.0, 1.0, 1.0]


def test_settings_defaults_and_validation():
    s = CycleGANSettings()
    assert (s.ngf, s.ndf, s.n_disc_layers, s.lambda_cycle, s.lambda_identity, s.pool_size) == (64, 64, 3, 10.0, 0.5, 50)
    assert (s.lr, s.beta1, s.batch_size, s.decay_fraction) == (2e-4, 0.5, 1, 0.5)
    assert s.resolved_n_blocks == 9
    assert CycleGANSettings(image_size=[128, 64]).resolved_n_blocks == 6
    assert CycleGANSettings(image_size=[288, 144]).image_size == (288, 144)  # YAML lists accepted
    assert CycleGANSettings(image_size=[128, 64], n_blocks=9).resolved_n_blocks == 9
    with pytest.raises(ValueError, match="decay_fraction"):
        CycleGANSettings(decay_fraction=1.5)
    with pytest.raises(ValueError, match="image_size"):
        CycleGANSettings(image_size=(0, 16))


def test_converters_round_trip_any_size(shared_data, tmp_path):
    visible, thermal = _sysu_paths(shared_data)
    s = CycleGANSettings(**{**TINY, "iterations": 2, "sample_count": 0})
    gen = train_cyclegan(visible[:4], thermal[:4], tmp_path, s, seed=0)
    gens = load_generators(gen, "cpu")
    assert set(gens) == {"G_rgb2ir", "G_ir2rgb"} and not gens["G_rgb2ir"].training
    conv = make_converters(gen, "cpu", batch_size=2)
    imgs = np.random.default_rng(0).integers(0, 256, (3, 30, 17, 3), dtype=np.uint8)  # not divisible by 4
    for name in ("rgb2ir", "ir2rgb"):
        out = conv[name](imgs)
        assert out.shape == imgs.shape and out.dtype == np.uint8
    assert not np.array_equal(conv["rgb2ir"](imgs), conv["ir2rgb"](imgs))


def test_bad_generator_file_is_named(tmp_path):
    bad = tmp_path / "not_a_generator.pt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not_a_generator.pt"):
        load_generators(bad)
    with pytest.raises(ValueError, match="direction"):
        convert_images(bad, np.zeros((1, 8, 8, 3), np.uint8), "rgb2rgb")


def test_sample_grid_layout(shared_data, tmp_path):
    from PIL import Image

    from rgbir_reid.data.transforms import load_image
    from rgbir_reid.reporting.samples import save_sample_grid

    visible, thermal = _sysu_paths(shared_data)
    s = CycleGANSettings(**{**TINY, "iterations": 1, "sample_count": 0})
    gen = train_cyclegan(visible[:2], thermal[:2], tmp_path, s, seed=0)
    vis = np.stack([load_image(p, (32, 16)) for p in visible[:3]])
    th = np.stack([load_image(p, (32, 16)) for p in thermal[:3]])
    fake_ir, fake_rgb = convert_images(gen, vis, "rgb2ir"), convert_images(gen, th, "ir2rgb")
    png = save_sample_grid(vis, fake_ir, th, fake_rgb, tmp_path / "grid.png")
    grid = np.asarray(Image.open(png).convert("RGB"))
    header, gap = 12, 2
    assert grid.shape == (header + 3 * (32 + gap), 4 * (16 + gap), 3)
    row = header + 2 * (32 + gap)  # third sample
    tiles = [grid[row : row + 32, j * 18 : j * 18 + 16] for j in range(4)]
    assert np.array_equal(tiles[0], vis[2]) and np.array_equal(tiles[2], th[2])
    assert np.array_equal(tiles[1], fake_ir[2]) and np.array_equal(tiles[3], fake_rgb[2])


def test_cycle_generator_terms_and_loss_by_hand():
    # Generators that scale the image, discriminators that score its mean: every term by hand.
    from rgbir_reid.training.cyclegan import cycle_generator_loss, cycle_generator_terms

    rgb = torch.full((1, 3, 2, 2), 0.4)
    ir = torch.full((2, 3, 2, 2), -0.2)
    terms, fake_rgb, fake_ir = cycle_generator_terms(
        lambda x: 0.5 * x, lambda x: 2.0 * x + 0.1, lambda x: x.mean().view(1), lambda x: x.mean().view(1), rgb, ir)
    assert torch.allclose(fake_ir, torch.full_like(rgb, 0.2)) and torch.allclose(fake_rgb, torch.full_like(ir, -0.3))
    expected = {
        "G_gan_ir": (0.2 - 1) ** 2,          # score of G_rgb2ir(rgb) = 0.2
        "G_gan_rgb": (-0.3 - 1) ** 2,        # score of G_ir2rgb(ir) = -0.3
        "cycle_rgb": abs(2 * 0.2 + 0.1 - 0.4),   # G_ir2rgb(0.2) = 0.5
        "cycle_ir": abs(0.5 * -0.3 + 0.2),       # G_rgb2ir(-0.3) = -0.15
        "idt_rgb": abs(2 * 0.4 + 0.1 - 0.4),     # G_ir2rgb(rgb) = 0.9
        "idt_ir": abs(0.5 * -0.2 + 0.2),         # G_rgb2ir(ir) = -0.1
    }
    for k, v in expected.items():
        assert terms[k].item() == pytest.approx(v, abs=1e-6), k
    loss = cycle_generator_loss(terms, 10.0, 5.0)
    by_hand = (expected["G_gan_ir"] + expected["G_gan_rgb"] + 10 * (expected["cycle_rgb"] + expected["cycle_ir"])
               + 5 * (expected["idt_rgb"] + expected["idt_ir"]))
    assert loss.item() == pytest.approx(by_hand, abs=1e-5)
    # Without the identity terms they are zero and the identity images are not computed.
    calls = []
    no_idt, _, _ = cycle_generator_terms(lambda x: calls.append(1) or x, lambda x: x, lambda x: x.mean(),
                                         lambda x: x.mean(), rgb, ir, identity=False)
    assert no_idt["idt_rgb"].item() == no_idt["idt_ir"].item() == 0.0 and len(calls) == 2  # fake IR + cycle IR


def test_cyclegan_iteration_steps_generators_then_discriminators_on_their_own_losses():
    """One iteration = one SGD step of the generators on the weighted CycleGAN loss plus the task
    addends (discriminators untouched by it), then one SGD step of the discriminators on their
    loss over the pre-update fakes: checked against both steps done by hand."""
    torch.manual_seed(0)
    conv = lambda: torch.nn.Conv2d(3, 3, 1)  # noqa: E731
    g_ab, g_ba, d_a, d_b = conv(), conv(), conv(), conv()
    rgb, ir = torch.rand(2, 3, 4, 4) * 2 - 1, torch.rand(2, 3, 4, 4) * 2 - 1
    lr = 0.1
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in
              (("g_ab", g_ab), ("g_ba", g_ba), ("d_a", d_a), ("d_b", d_b))}

    # By hand, on copies.
    nets = {n: conv() for n in before}
    for n, m in nets.items():
        m.load_state_dict(before[n])
    terms, fake_rgb, fake_ir = cycle_generator_terms(nets["g_ab"], nets["g_ba"], nets["d_b"], nets["d_a"], rgb, ir)
    task = (nets["g_ab"](rgb) ** 2).mean()
    loss_g = 0.5 * cycle_generator_loss(terms, 10.0, 5.0) + 0.3 * task
    grads_g = torch.autograd.grad(loss_g, [*nets["g_ab"].parameters(), *nets["g_ba"].parameters()])
    with torch.no_grad():
        for p, g in zip([*nets["g_ab"].parameters(), *nets["g_ba"].parameters()], grads_g):
            p -= lr * g
    fake_rgb, fake_ir = fake_rgb.detach(), fake_ir.detach()
    loss_d = ((nets["d_b"](ir) - 1) ** 2).mean() + (nets["d_b"](fake_ir) ** 2).mean() + (nets["d_a"](fake_rgb) ** 2).mean()
    grads_d = torch.autograd.grad(loss_d, [*nets["d_a"].parameters(), *nets["d_b"].parameters()])
    with torch.no_grad():
        for p, g in zip([*nets["d_a"].parameters(), *nets["d_b"].parameters()], grads_d):
            p -= lr * g

    opt_g = torch.optim.SGD([*g_ab.parameters(), *g_ba.parameters()], lr=lr)
    opt_d = torch.optim.SGD([*d_a.parameters(), *d_b.parameters()], lr=lr)

    def step(opt):
        def run(loss):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    out = cyclegan_iteration(
        g_ab, g_ba, d_b, d_a, rgb, ir, lambda_cycle=10.0, lambda_identity=5.0, discriminators=[d_a, d_b],
        discriminator_terms=lambda f_rgb, f_ir: {"D_ir": ((d_b(ir) - 1) ** 2).mean() + (d_b(f_ir) ** 2).mean(),
                                                 "D_rgb": (d_a(f_rgb) ** 2).mean()},
        step_generators=step(opt_g), step_discriminators=step(opt_d), generator_scale=0.5,
        task_terms=lambda f_rgb, f_ir: ({"task": (f_ir ** 2).mean()}, [0.3 * (f_ir ** 2).mean()]))
    assert out["G_total"].item() == pytest.approx(loss_g.item(), rel=1e-6)
    assert out["task"].item() == pytest.approx(task.item(), rel=1e-6)
    assert set(out) >= {"G_gan_ir", "cycle_rgb", "idt_ir", "D_ir", "D_rgb"}
    for name, module in (("g_ab", g_ab), ("g_ba", g_ba), ("d_a", d_a), ("d_b", d_b)):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(v, nets[name].state_dict()[k], msg=f"{name}.{k}")
    assert all(p.requires_grad for p in [*d_a.parameters(), *d_b.parameters()])  # unfrozen again
