"""Built-in demo dataset: procedurally drawn pedestrians in the SYSU-MM01 layout.

The demo lets the whole workflow run on a 2-core CPU without downloading anything. It is
written exactly like SYSU-MM01 (``cam1``..``cam6/PPPP/NNNN.jpg`` and
``exp/{train,val,test,available}_id.txt``) and read by the SYSU-MM01 reader.

What makes an identity (fixed per identity, seeded):
    clothing colours of top and bottom, top pattern (plain, horizontal or vertical stripes,
    checks, chest logo), sleeve length, bottom kind (trousers, shorts, skirt), body height
    and width, hair, and a carried item (none, backpack, handbag, shoulder bag).
What changes with the camera (fixed per camera) and the image:
    background (cameras 1-3 indoor, 4-6 outdoor, as in SYSU-MM01), lighting (gain and colour
    tint), scale and ground line; per identity and camera a view (front, back, side); per
    image a horizontal offset, small scale change, walking phase, mirror flip and noise.
Infrared cameras 3 and 6 see the same geometry, but in grey: each surface gets a
thermal-like intensity (skin warmest, clothes warm with a per-garment level tied to the
colour's darkness, carried items cold, background dark), so patterns stay as texture while
colour is lost; thermal images are a little blurrier and noisier, and stored as 1-channel
JPEGs (decoded to R = G = B by :func:`rgbir_reid.data.transforms.load_image`).

Some identities are missing from some cameras, like the real data; every identity keeps at
least two visible cameras and one infrared camera.
"""

from __future__ import annotations

import colorsys
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from rgbir_reid.data.sysu_mm01 import (
    SYSU_MM01_CAMERAS,
    SYSU_MM01_INDOOR_CAMERAS,
    SYSU_MM01_THERMAL_CAMERAS,
    SYSU_MM01_VISIBLE_CAMERAS,
)

JPEG_QUALITY = 92
# Probability that an identity is absent from a camera (before the coverage guarantees).
CAMERA_ABSENT_PROBABILITY = 0.2
MIN_VISIBLE_CAMERAS = 2
MIN_THERMAL_CAMERAS = 1

_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "logo")
_BOTTOMS = ("trousers", "trousers", "shorts", "skirt")
_ITEMS = ("none", "none", "backpack", "handbag", "shoulder_bag")
_VIEWS = ("front", "back", "side")

# Thermal intensities in [0, 1]: warm skin, cold carried items and shoes.
_SKIN_WARMTH = 0.95
_HAIR_WARMTH = 0.62
_SHOE_WARMTH = 0.42
_ITEM_WARMTH = 0.30

_Colour = tuple[float, float, float]  # RGB in [0, 1]


@dataclass(frozen=True)
class _Identity:
    top: _Colour
    top_second: _Colour
    pattern: str
    pattern_period: int  # pixels at 128 px image height
    long_sleeves: bool
    bottom: _Colour
    bottom_kind: str
    skin: _Colour
    hair: _Colour
    long_hair: bool
    shoes: _Colour
    item: str
    item_colour: _Colour
    height: float  # body height as a fraction of the image height
    width: float  # shoulder width as a fraction of the image width
    warmth_jitter: float  # identity-specific offset of clothing thermal intensity


@dataclass(frozen=True)
class _Camera:
    indoor: bool
    thermal: bool
    gain: _Colour  # per-channel lighting gain
    scale: float
    ground: float  # feet line as a fraction of the image height
    background: np.ndarray  # float [H, W, 3] in [0, 1] (thermal: grey replicated)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    # A separate stream per (identity / camera / image) keeps every image independent of how
    # many others are drawn, so changing one setting does not reshuffle the rest.
    return np.random.default_rng([seed, *keys])


def _colour(rng: np.random.Generator) -> _Colour:
    """A clothing colour: a saturated hue, or a neutral (black/grey/white/navy-like) one."""
    if rng.random() < 0.3:
        v = float(rng.choice([0.08, 0.25, 0.5, 0.75, 0.92]))
        tint = rng.normal(0, 0.03, 3)
        return tuple(float(np.clip(v + t, 0, 1)) for t in tint)  # type: ignore[return-value]
    h = float(rng.random())
    s = float(rng.uniform(0.45, 0.95))
    v = float(rng.uniform(0.35, 0.95))
    return colorsys.hsv_to_rgb(h, s, v)


def _luminance(c: _Colour) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _make_identity(seed: int, pid: int) -> _Identity:
    rng = _rng(seed, 1, pid)
    top = _colour(rng)
    second = _colour(rng)
    while abs(_luminance(second) - _luminance(top)) < 0.2:  # patterns must survive as thermal texture
        second = _colour(rng)
    skin_v = float(rng.uniform(0.45, 0.9))
    return _Identity(
        top=top,
        top_second=second,
        pattern=str(rng.choice(_PATTERNS)),
        pattern_period=int(rng.integers(6, 13)),
        long_sleeves=bool(rng.random() < 0.5),
        bottom=_colour(rng),
        bottom_kind=str(rng.choice(_BOTTOMS)),
        skin=(skin_v, skin_v * 0.78, skin_v * 0.62),
        hair=tuple(float(x) for x in rng.uniform(0.03, 0.35) * np.array([1.0, 0.8, 0.6])),  # type: ignore[arg-type]
        long_hair=bool(rng.random() < 0.35),
        shoes=tuple(float(x) for x in np.full(3, rng.uniform(0.05, 0.6))),  # type: ignore[arg-type]
        item=str(rng.choice(_ITEMS)),
        item_colour=_colour(rng),
        height=float(rng.uniform(0.74, 0.92)),
        width=float(rng.uniform(0.36, 0.56)),
        warmth_jitter=float(rng.uniform(-0.08, 0.08)),
    )


def _background(rng: np.random.Generator, indoor: bool, thermal: bool, height: int, width: int) -> np.ndarray:
    """A fixed scene per camera: wall/floor indoors, sky/vegetation/road outdoors."""
    im = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(im)

    def fill(c: np.ndarray) -> tuple[int, int, int]:
        return tuple(int(round(255 * float(np.clip(x, 0, 1)))) for x in c)  # type: ignore[return-value]

    if thermal:
        # Scene surfaces are cooler than people: dark, low-contrast levels.
        base = rng.uniform(0.10, 0.22) if indoor else rng.uniform(0.05, 0.15)
        upper, lower = np.full(3, base + rng.uniform(0, 0.08)), np.full(3, base)
        shapes = [np.full(3, base + rng.uniform(-0.05, 0.15)) for _ in range(4)]
    elif indoor:
        upper, lower = rng.uniform(0.45, 0.9, 3), rng.uniform(0.2, 0.6, 3)
        shapes = [rng.uniform(0.1, 0.9, 3) for _ in range(4)]
    else:
        upper = np.array([0.5, 0.65, 0.85]) * rng.uniform(0.8, 1.1) if rng.random() < 0.5 else rng.uniform(0.2, 0.5, 3)
        lower = np.array([0.45, 0.45, 0.45]) * rng.uniform(0.7, 1.2)
        shapes = [np.array([0.15, 0.45, 0.15]) * rng.uniform(0.6, 1.3) for _ in range(4)]
    horizon = int(height * rng.uniform(0.5, 0.75))
    draw.rectangle([0, 0, width, horizon], fill=fill(upper))
    draw.rectangle([0, horizon, width, height], fill=fill(lower))
    for shape in shapes:
        x0 = int(rng.integers(-width // 4, width))
        y0 = int(rng.integers(0, horizon))
        w = int(rng.integers(width // 6, width // 2))
        h = int(rng.integers(height // 10, horizon - y0 + 2)) if horizon - y0 > height // 10 else height // 10
        if indoor or thermal:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=fill(shape))
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=fill(shape))
    return np.asarray(im, dtype=np.float32) / 255.0


def _make_camera(seed: int, camera: int, height: int, width: int) -> _Camera:
    rng = _rng(seed, 2, camera)
    thermal = camera in SYSU_MM01_THERMAL_CAMERAS
    indoor = camera in SYSU_MM01_INDOOR_CAMERAS
    if thermal:
        gain = (float(rng.uniform(0.9, 1.1)),) * 3
    else:
        brightness = rng.uniform(0.8, 1.15)
        tint = rng.uniform(0.88, 1.12, 3)
        gain = tuple(float(x) for x in brightness * tint / tint.mean())
    return _Camera(
        indoor=indoor,
        thermal=thermal,
        gain=gain,  # type: ignore[arg-type]
        scale=float(rng.uniform(0.88, 1.02)),
        ground=float(rng.uniform(0.94, 0.985)),
        background=_background(rng, indoor, thermal, height, width),
    )


def _warmth(c: _Colour, ident: _Identity) -> float:
    """Thermal intensity of a garment: dark fabric absorbs more and reads warmer."""
    return float(np.clip(0.55 + 0.3 * (1.0 - _luminance(c)) + ident.warmth_jitter, 0.0, 1.0))


def _render(
    ident: _Identity, cam: _Camera, view: str, rng: np.random.Generator, height: int, width: int
) -> np.ndarray:
    """One image, ``uint8 [H, W]`` (thermal) or ``[H, W, 3]`` (visible)."""
    if cam.thermal:

        def paint(c: _Colour, warmth: float | None = None) -> tuple[int, int, int]:
            v = int(round(255 * (_warmth(c, ident) if warmth is None else warmth)))
            return (v, v, v)

    else:

        def paint(c: _Colour, warmth: float | None = None) -> tuple[int, int, int]:
            return tuple(int(round(255 * x)) for x in c)  # type: ignore[return-value]

    skin = paint(ident.skin, _SKIN_WARMTH)
    hair = paint(ident.hair, _HAIR_WARMTH)
    shoes = paint(ident.shoes, _SHOE_WARMTH)
    item = paint(ident.item_colour, _ITEM_WARMTH)
    top, top2, bottom = paint(ident.top), paint(ident.top_second), paint(ident.bottom)

    layer = Image.new("RGB", (width, height))
    mask = Image.new("L", (width, height), 0)
    d, m = ImageDraw.Draw(layer), ImageDraw.Draw(mask)

    def part(shape: str, box: list[float], fill: tuple[int, int, int], *args: float) -> None:
        getattr(d, shape)(box, *args, fill=fill)
        getattr(m, shape)(box, *args, fill=255)

    def poly(points: list[tuple[float, float]], fill: tuple[int, int, int]) -> None:
        d.polygon(points, fill=fill)
        m.polygon(points, fill=255)

    scale = cam.scale * float(rng.uniform(0.95, 1.05))
    body_h = min(ident.height * scale * height, cam.ground * height - 2)
    feet = cam.ground * height + float(rng.uniform(-1.5, 1.5))
    top_y = feet - body_h
    cx = width / 2 + float(rng.uniform(-0.12, 0.12)) * width
    side = view == "side"
    shoulder = ident.width * width * scale * (0.62 if side else 1.0)
    hip = shoulder * (0.85 if not side else 1.0)
    y = lambda f: top_y + f * body_h  # noqa: E731  (fractions of body height)
    phase = float(rng.uniform(-1, 1))  # walking: leg spread and arm swing
    item_side = 1 if rng.random() < 0.5 else -1

    # Backpack behind the body from the front / side, drawn after the torso from the back.
    def backpack() -> None:
        if view == "back":
            part("rectangle", [cx - shoulder * 0.38, y(0.2), cx + shoulder * 0.38, y(0.5)], item)
        elif side:
            part("rectangle", [cx - shoulder * 0.5 - shoulder * 0.45, y(0.19), cx - shoulder * 0.45, y(0.48)], item)
        else:
            part("rectangle", [cx - shoulder * 0.6, y(0.2), cx - shoulder * 0.48, y(0.45)], item)
            part("rectangle", [cx + shoulder * 0.48, y(0.2), cx + shoulder * 0.6, y(0.45)], item)

    if ident.item == "backpack" and view != "back":
        backpack()
    if ident.long_hair and view == "back":
        part("rectangle", [cx - body_h * 0.07, y(0.05), cx + body_h * 0.07, y(0.25)], hair)

    # Legs: two polygons from the hip to the feet, spread by the walking phase.
    spread = phase * hip * 0.35
    leg_w = hip * (0.42 if not side else 0.5)
    leg_top = y(0.5)
    for sign in (-1, 1) if not side else (0,):
        x_hip = cx + sign * hip * 0.25
        x_foot = x_hip + (sign if not side else 1) * spread
        poly([(x_hip - leg_w / 2, leg_top), (x_hip + leg_w / 2, leg_top),
              (x_foot + leg_w * 0.4, y(0.95)), (x_foot - leg_w * 0.4, y(0.95))], skin)
        part("rectangle", [x_foot - leg_w * 0.5, y(0.95), x_foot + leg_w * 0.55, y(1.0)], shoes)
        if ident.bottom_kind == "trousers":
            poly([(x_hip - leg_w / 2, leg_top), (x_hip + leg_w / 2, leg_top),
                  (x_foot + leg_w * 0.42, y(0.95)), (x_foot - leg_w * 0.42, y(0.95))], bottom)
        if side:  # the far leg, behind
            x_foot2 = x_hip - spread
            if ident.bottom_kind == "trousers":
                poly([(x_hip - leg_w / 2, leg_top), (x_hip + leg_w / 2, leg_top),
                      (x_foot2 + leg_w * 0.42, y(0.95)), (x_foot2 - leg_w * 0.42, y(0.95))], bottom)
            else:
                poly([(x_hip - leg_w / 2, leg_top), (x_hip + leg_w / 2, leg_top),
                      (x_foot2 + leg_w * 0.4, y(0.95)), (x_foot2 - leg_w * 0.4, y(0.95))], skin)
            part("rectangle", [x_foot2 - leg_w * 0.5, y(0.95), x_foot2 + leg_w * 0.55, y(1.0)], shoes)
    if ident.bottom_kind == "shorts":
        part("rectangle", [cx - hip / 2, y(0.49), cx + hip / 2, y(0.68)], bottom)
    elif ident.bottom_kind == "skirt":
        poly([(cx - hip / 2, y(0.49)), (cx + hip / 2, y(0.49)),
              (cx + hip * 0.7, y(0.74)), (cx - hip * 0.7, y(0.74))], bottom)
    else:
        part("rectangle", [cx - hip / 2, y(0.49), cx + hip / 2, y(0.56)], bottom)

    # Arms: sleeve colour over the upper (long: whole) arm, skin below; swing with the phase.
    arm_w = shoulder * (0.2 if not side else 0.3)
    for sign in (-1, 1) if not side else (1,):
        x0 = cx + sign * (shoulder / 2 + arm_w * 0.45) if not side else cx + phase * shoulder * 0.2
        swing = -sign * phase * arm_w * 0.8 if not side else phase * shoulder * 0.4
        poly([(x0 - arm_w / 2, y(0.17)), (x0 + arm_w / 2, y(0.17)),
              (x0 + swing + arm_w / 2, y(0.5)), (x0 + swing - arm_w / 2, y(0.5))], skin)
        sleeve_end = 0.47 if ident.long_sleeves else 0.28
        t = (sleeve_end - 0.17) / (0.5 - 0.17)
        poly([(x0 - arm_w / 2, y(0.17)), (x0 + arm_w / 2, y(0.17)),
              (x0 + t * swing + arm_w / 2, y(sleeve_end)), (x0 + t * swing - arm_w / 2, y(sleeve_end))], top)

    # Torso with its pattern, pasted through a torso mask.
    torso = [(cx - shoulder / 2, y(0.16)), (cx + shoulder / 2, y(0.16)),
             (cx + hip / 2, y(0.52)), (cx - hip / 2, y(0.52))]
    torso_mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(torso_mask).polygon(torso, fill=255)
    m.polygon(torso, fill=255)
    pattern = Image.new("RGB", (width, height), top)
    pd = ImageDraw.Draw(pattern)
    period = max(3, round(ident.pattern_period * height / 128))
    visible_pattern = ident.pattern if not (ident.pattern == "logo" and view != "front") else "plain"
    if visible_pattern == "hstripes":
        for yy in range(int(y(0.16)), height, period):
            pd.rectangle([0, yy, width, yy + period // 2 - 1], fill=top2)
    elif visible_pattern == "vstripes":
        for xx in range(int(cx - shoulder), width, period):
            pd.rectangle([xx, 0, xx + period // 2 - 1, height], fill=top2)
    elif visible_pattern == "checks":
        for yy in range(int(y(0.16)), height, period):
            for xx in range(int(cx - shoulder), width, period):
                if ((yy - int(y(0.16))) // period + (xx - int(cx - shoulder)) // period) % 2 == 0:
                    pd.rectangle([xx, yy, xx + period - 1, yy + period - 1], fill=top2)
    elif visible_pattern == "logo":
        pd.rectangle([cx - shoulder * 0.22, y(0.24), cx + shoulder * 0.22, y(0.36)], fill=top2)
    layer.paste(pattern, (0, 0), torso_mask)

    if ident.item == "backpack" and view == "back":
        backpack()
    elif ident.item == "shoulder_bag":
        d.line([(cx - shoulder / 2 * item_side, y(0.17)), (cx + hip / 2 * item_side, y(0.48))], fill=item, width=2)
        m.line([(cx - shoulder / 2 * item_side, y(0.17)), (cx + hip / 2 * item_side, y(0.48))], fill=255, width=2)
        part("rectangle", [cx + item_side * hip * 0.35 - shoulder * 0.2, y(0.44),
                           cx + item_side * hip * 0.35 + shoulder * 0.2, y(0.58)], item)
    elif ident.item == "handbag":
        hx = cx + item_side * (shoulder / 2 + arm_w)
        part("rectangle", [hx - shoulder * 0.15, y(0.5), hx + shoulder * 0.15, y(0.64)], item)

    # Head: neck, face, hair cap (full cover from the back).
    head = body_h * 0.13
    part("rectangle", [cx - head * 0.18, y(0.11), cx + head * 0.18, y(0.17)], skin)
    part("ellipse", [cx - head * 0.42, top_y, cx + head * 0.42, top_y + head], skin)
    if view == "back":
        part("ellipse", [cx - head * 0.44, top_y - 1, cx + head * 0.44, top_y + head * 0.95], hair)
    else:
        part("chord", [cx - head * 0.44, top_y - 1, cx + head * 0.44, top_y + head * 0.8], hair, 180, 360)
    if rng.random() < 0.5:
        layer, mask = layer.transpose(Image.FLIP_LEFT_RIGHT), mask.transpose(Image.FLIP_LEFT_RIGHT)

    person = np.asarray(layer, dtype=np.float32) / 255.0
    alpha = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)[..., None] / 255.0
    image = alpha * person + (1 - alpha) * cam.background
    image = image * np.asarray(cam.gain, dtype=np.float32) * float(rng.uniform(0.92, 1.08))
    noise = 0.03 if cam.thermal else 0.015
    if cam.thermal:
        grey = Image.fromarray(np.clip(image[..., 0] * 255, 0, 255).astype(np.uint8), "L")
        grey = np.asarray(grey.filter(ImageFilter.GaussianBlur(0.9)), dtype=np.float32) / 255.0
        grey = grey + rng.normal(0, noise, grey.shape)
        return np.clip(np.round(grey * 255), 0, 255).astype(np.uint8)
    image = image + rng.normal(0, noise, image.shape)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def _cameras_of(seed: int, pid: int) -> list[int]:
    """Cameras an identity appears in: each absent with some probability, coverage kept."""
    rng = _rng(seed, 3, pid)
    present = [c for c in SYSU_MM01_CAMERAS if rng.random() >= CAMERA_ABSENT_PROBABILITY]
    coverage = ((SYSU_MM01_VISIBLE_CAMERAS, MIN_VISIBLE_CAMERAS), (SYSU_MM01_THERMAL_CAMERAS, MIN_THERMAL_CAMERAS))
    for group, least in coverage:
        missing = [c for c in group if c not in present]
        rng.shuffle(missing)
        while sum(c in present for c in group) < least:
            present.append(missing.pop())
    return sorted(present)


def _split_ids(seed: int, n_train_ids: int, n_val_ids: int, n_test_ids: int) -> dict[str, list[int]]:
    """Ids 1..N shuffled into train / val / test, like the interleaved lists of SYSU-MM01."""
    ids = _rng(seed, 4).permutation(np.arange(1, n_train_ids + n_val_ids + n_test_ids + 1))
    a, b = n_train_ids, n_train_ids + n_val_ids
    split = {"train": sorted(ids[:a].tolist()), "val": sorted(ids[a:b].tolist()), "test": sorted(ids[b:].tolist())}
    split["available"] = sorted(ids.tolist())
    return split


def generate_demo(
    root: str | Path,
    *,
    seed: int = 0,
    n_train_ids: int = 32,
    n_val_ids: int = 0,
    n_test_ids: int = 32,
    images_per_camera: int = 4,
    height: int = 128,
    width: int = 64,
    workers: int = 1,
) -> None:
    """Write a synthetic dataset in the SYSU-MM01 layout.

    Writes ``<root>/cam1..cam6/PPPP/NNNN.jpg`` (RGB JPEGs for cameras 1, 2, 4, 5; 1-channel
    grey JPEGs for the infrared cameras 3, 6), ``<root>/exp/{train,val,test,available}_id.txt``
    (one comma-separated line each; nothing else in ``exp/``) and ``<root>/demo.json`` (the
    arguments, for provenance). Identities are numbered 1..N and shuffled between the lists.
    The dataset is built in a hidden temporary folder beside ``root`` and renamed onto it at
    the end, so an interrupted run leaves no complete-looking dataset.

    Same arguments, same bytes (JPEG quality fixed at ``JPEG_QUALITY``). Generation takes
    about 1 ms per image (default: 64 ids x ~5 cameras x 4 = ~1300 images).

    Args:
        root: folder to create; must not exist or be empty.
        seed: seed of every random choice.
        n_train_ids, n_val_ids, n_test_ids: identities per id list (train >= 1, test >= 1).
        images_per_camera: images per identity per camera it appears in (>= 1).
        height, width: image size in pixels (>= 32 x 16).
        workers: processes rendering the identities (each image is seeded on its own, so the
            bytes do not depend on it).

    Raises:
        FileExistsError: ``root`` exists and is not an empty folder.
        ValueError: a count or size out of range.
    """
    if n_train_ids < 1 or n_test_ids < 1 or n_val_ids < 0 or images_per_camera < 1:
        raise ValueError(
            "need n_train_ids >= 1, n_test_ids >= 1, n_val_ids >= 0, images_per_camera >= 1; got "
            f"{n_train_ids}, {n_test_ids}, {n_val_ids}, {images_per_camera}"
        )
    if height < 32 or width < 16:
        raise ValueError(f"demo images must be at least 32 x 16 pixels (H x W), got {height} x {width}")
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"demo root {root} already exists and is not empty; remove it first")

    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    # A killed earlier run (another pid) leaves its half-written folder: nothing else writes there.
    for stale in root.parent.glob(f".{root.name}.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale)
    try:
        _write_demo(tmp, seed, n_train_ids, n_val_ids, n_test_ids, images_per_camera, height, width, workers)
        if root.exists():
            root.rmdir()
        os.rename(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _write_identities(out: Path, seed: int, pids: Sequence[int], images_per_camera: int, height: int, width: int) -> None:
    """Render and save every image of the identities ``pids`` (each image's randomness is
    seeded by its identity, camera and number, so any split of the identities into workers
    writes the same bytes)."""
    cameras = {c: _make_camera(seed, c, height, width) for c in SYSU_MM01_CAMERAS}
    for pid in pids:
        ident = _make_identity(seed, pid)
        for c in _cameras_of(seed, pid):
            view = str(_rng(seed, 5, pid, c).choice(_VIEWS))
            folder = out / f"cam{c}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for n in range(1, images_per_camera + 1):
                rng = _rng(seed, 6, pid, c, n)
                # Mostly the camera's view of this person, sometimes caught turning.
                image_view = view if rng.random() < 0.75 else str(rng.choice(_VIEWS))
                pixels = _render(ident, cameras[c], image_view, rng, height, width)
                Image.fromarray(pixels).save(folder / f"{n:04d}.jpg", "JPEG", quality=JPEG_QUALITY)


def _write_demo(
    out: Path,
    seed: int,
    n_train_ids: int,
    n_val_ids: int,
    n_test_ids: int,
    images_per_camera: int,
    height: int,
    width: int,
    workers: int = 1,
) -> None:
    (out / "exp").mkdir(parents=True)
    split = _split_ids(seed, n_train_ids, n_val_ids, n_test_ids)
    for name, ids in split.items():
        (out / "exp" / f"{name}_id.txt").write_text(",".join(str(i) for i in ids) + "\n")
    pids = list(split["available"])
    if workers <= 1 or len(pids) < 2:
        _write_identities(out, seed, pids, images_per_camera, height, width)
    else:
        chunks = [pids[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_write_identities, out, seed, chunk, images_per_camera, height, width) for chunk in chunks]
            for job in jobs:
                job.result()  # re-raises a worker's error
    settings = {
        "generator": "rgbir_reid.data.demo.generate_demo",
        "seed": seed,
        "n_train_ids": n_train_ids,
        "n_val_ids": n_val_ids,
        "n_test_ids": n_test_ids,
        "images_per_camera": images_per_camera,
        "height": height,
        "width": width,
        "jpeg_quality": JPEG_QUALITY,
    }
    (out / "demo.json").write_text(json.dumps(settings, indent=2) + "\n")
