"""Colours and textures of the synthetic demo scenes: part codes -> RGB pixels, vectorised over a batch.

Every class has its own texture (a window grid, tiles, leafy blotches, grass streaks, waves, stripes ...) and
its colours are drawn per image around a few anchors, so colour alone does not tell the classes apart (sky and
water are both blue, tree and grass both green, road and building both grey).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from segstudio.core.data.demo_scenes import (
    BUILDING,
    CAR,
    CAR_WINDOW,
    FLOOR,
    GRASS,
    HEAD,
    LANE,
    LEGS,
    NUM_CODES,
    OTHER,
    PERSON,
    ROAD,
    SKY,
    TREE,
    WALL,
    WATER,
    WHEEL,
)

Pair = tuple[tuple[int, int, int], tuple[int, int, int]]
# (first colour, second colour) pairs; a texture value t in [0, 1] mixes them. None = random colours.
ANCHORS: dict[int, list[Pair] | None] = {
    OTHER: None,
    WALL: [((228, 218, 196), (196, 186, 165)), ((212, 212, 208), (180, 180, 178)),
           ((236, 206, 176), (205, 175, 150)), ((226, 226, 178), (196, 196, 150)), ((200, 215, 200), (170, 186, 170))],
    BUILDING: [((150, 150, 155), (45, 55, 75)), ((165, 85, 65), (40, 45, 60)), ((195, 175, 135), (60, 70, 90)),
               ((110, 110, 120), (170, 195, 220)), ((215, 210, 200), (70, 90, 120))],
    SKY: [((55, 115, 205), (175, 210, 240)), ((90, 150, 225), (205, 225, 245)), ((150, 155, 170), (215, 215, 222)),
          ((70, 90, 160), (230, 180, 150))],
    FLOOR: [((150, 100, 60), (115, 75, 42)), ((185, 185, 185), (120, 120, 125)), ((215, 195, 155), (165, 145, 110)),
            ((120, 60, 50), (200, 190, 170))],
    TREE: [((28, 62, 24), (95, 140, 50)), ((40, 75, 35), (120, 150, 60)), ((35, 55, 30), (80, 110, 45))],
    ROAD: [((55, 55, 60), (115, 115, 120)), ((75, 72, 70), (130, 128, 125)), ((45, 48, 52), (95, 98, 102))],
    GRASS: [((70, 140, 40), (150, 195, 80)), ((90, 150, 50), (170, 200, 90)), ((110, 140, 50), (180, 190, 100))],
    PERSON: None,
    CAR: [((200, 30, 30), (120, 15, 15)), ((230, 200, 40), (140, 120, 20)), ((30, 140, 70), (15, 80, 40)),
          ((230, 120, 30), (140, 70, 15)), ((120, 40, 150), (70, 20, 90)), ((220, 220, 225), (130, 130, 140))],
    WATER: [((20, 70, 120), (90, 160, 205)), ((25, 90, 95), (95, 170, 170)), ((30, 60, 100), (120, 150, 190))],
    HEAD: [((232, 192, 160), (210, 170, 140)), ((190, 140, 100), (170, 120, 85)), ((120, 80, 55), (100, 65, 45))],
    CAR_WINDOW: [((40, 50, 70), (120, 150, 185))],
    WHEEL: [((18, 18, 20), (70, 70, 75))],
    LEGS: [((40, 45, 70), (25, 28, 45)), ((30, 30, 32), (15, 15, 18)), ((90, 70, 50), (60, 45, 30))],
    LANE: [((235, 235, 230), (200, 200, 195)), ((230, 200, 60), (200, 170, 40))],
}


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of (n, gh, gw) to (n, height, width), separable and vectorised."""
    n, gh, gw = grid.shape
    out = grid
    for axis, (cells, size) in enumerate(((gh, height), (gw, width)), start=1):
        if cells == size:
            continue
        pos = np.linspace(0, cells - 1, size, dtype=np.float32)
        lo = np.minimum(pos.astype(np.int64), cells - 2)
        frac = (pos - lo).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = size
        frac = frac.reshape(shape)
        out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, lo + 1, axis=axis) * frac
    return out.astype(np.float32)


@dataclass
class Pixels:
    """The pixels of one part code in a batch: flat index, image index, row and column."""

    flat: np.ndarray
    n: np.ndarray
    y: np.ndarray
    x: np.ndarray


@dataclass
class Fields:
    """Noise fields and per-image texture parameters shared by the textures of one batch."""

    fine: np.ndarray  # per-pixel noise
    smooth: np.ndarray  # large soft variations
    blotch: np.ndarray  # leaf-sized blobs
    coarse: np.ndarray  # gravel-sized grain (survives halving the image, unlike ``fine``)
    streak: np.ndarray  # vertical streaks (grass blades)
    params: dict[str, np.ndarray]

    def at(self, name: str, p: Pixels) -> np.ndarray:
        """Values of one field at the given pixels."""
        return np.take(getattr(self, name).reshape(-1), p.flat)

    def param(self, name: str, p: Pixels) -> np.ndarray:
        return self.params[name][p.n]

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, size: int) -> Fields:
        u = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
        params = {
            "win_x": u(0.04, 0.07) * size, "win_y": u(0.05, 0.08) * size, "win_off": u(0, 100),
            "tile": u(0.05, 0.09) * size, "stripe": u(0.05, 0.08) * size, "stripe_dir": np.sign(u(-1, 1)),
            "wave_len": u(0.035, 0.055) * size, "wave_x": u(0.15, 0.3) * size, "wave_phase": u(0, 2 * np.pi),
            "clouds": u(0.0, 0.5), "bar": u(0.07, 0.1) * size, "checker": u(0.015, 0.025) * size,
            "sky_depth": np.full(n, 0.6 * size),
        }
        return cls(
            fine=rng.random((n, size, size), dtype=np.float32),
            smooth=_upsample(rng.random((n, 5, 5), dtype=np.float32), size, size),
            blotch=_upsample(rng.random((n, size // 10, size // 10), dtype=np.float32), size, size),
            coarse=_upsample(rng.random((n, size // 4, size // 4), dtype=np.float32), size, size),
            streak=_upsample(rng.random((n, size // 12, size // 3), dtype=np.float32), size, size),
            params=params,
        )


Texture = Callable[[Fields, Pixels], np.ndarray]


def _grid(f: Fields, p: Pixels) -> np.ndarray:
    wx, wy, off = f.param("win_x", p), f.param("win_y", p), f.param("win_off", p)
    window = ((p.x + off) % wx < 0.55 * wx) & ((p.y + off) % wy < 0.5 * wy)
    fine = f.at("fine", p)
    return np.where(window, 0.85 + 0.15 * fine, 0.12 * fine)


def _checker(size: np.ndarray, p: Pixels) -> np.ndarray:
    return (np.floor(p.x / size) + np.floor(p.y / size)) % 2


def _tiles(f: Fields, p: Pixels) -> np.ndarray:
    return 0.75 * _checker(f.param("tile", p), p) + 0.25 * f.at("fine", p)


def _stripes(f: Fields, p: Pixels) -> np.ndarray:
    stripe = ((p.x + f.param("stripe_dir", p) * p.y) / f.param("stripe", p)) % 1.0 < 0.5
    return 0.85 * stripe + 0.15 * f.at("fine", p)


def _bars(f: Fields, p: Pixels) -> np.ndarray:
    """Vertical bars (car bodies): strong, regular and unlike any other class."""
    bar = (p.x / f.param("bar", p)) % 1.0 < 0.5
    return 0.7 * bar + 0.3 * f.at("smooth", p)


def _waves(f: Fields, p: Pixels) -> np.ndarray:
    bend = 2.0 * np.sin(2 * np.pi * p.x / f.param("wave_x", p) + f.param("wave_phase", p))
    return 0.4 + 0.4 * np.sin(2 * np.pi * p.y / f.param("wave_len", p) + bend) + 0.2 * f.at("fine", p)


def _sky(f: Fields, p: Pixels) -> np.ndarray:
    gradient = np.clip(p.y / f.param("sky_depth", p), 0.0, 1.0)
    return 0.8 * gradient + f.param("clouds", p) * f.at("smooth", p)


def _clutter(f: Fields, p: Pixels) -> np.ndarray:
    return 0.8 * _checker(f.param("checker", p), p) + 0.2 * f.at("fine", p)


def _mix(blotch: float = 0.0, **weights: float) -> Texture:
    """A weighted sum of the shared noise fields; ``blotch`` thresholds the blob field (leaves)."""

    def texture(f: Fields, p: Pixels) -> np.ndarray:
        t = sum(weight * f.at(name, p) for name, weight in weights.items())
        return t + blotch * (f.at("blotch", p) > 0.5) if blotch else t

    return texture


TEXTURES: dict[int, Texture] = {
    OTHER: _clutter, WALL: _mix(smooth=0.5, fine=0.15), BUILDING: _grid, SKY: _sky, FLOOR: _tiles,
    TREE: _mix(blotch=0.7, fine=0.3), ROAD: _mix(coarse=0.5, fine=0.2, smooth=0.2), GRASS: _mix(streak=0.65, fine=0.35),
    PERSON: _stripes, CAR: _bars, WATER: _waves, HEAD: _mix(fine=0.15),
    CAR_WINDOW: _mix(smooth=0.6, fine=0.2), WHEEL: _mix(fine=0.3), LEGS: _mix(smooth=0.3, fine=0.2),
    LANE: _mix(fine=0.2),
}


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image colour pairs (n, NUM_CODES, 3): an anchor pair per code, jittered."""
    first = np.empty((n, NUM_CODES, 3), np.float32)
    second = np.empty_like(first)
    for code in range(NUM_CODES):
        anchors = ANCHORS[code]
        if anchors is None:
            first[:, code], second[:, code] = rng.uniform(20, 235, (2, n, 3))
            continue
        pick = rng.integers(0, len(anchors), n)
        pairs = np.asarray(anchors, np.float32)[pick]
        first[:, code] = pairs[:, 0] + rng.normal(0, 10, (n, 3))
        second[:, code] = pairs[:, 1] + rng.normal(0, 10, (n, 3))
    second[:, PERSON] = 255.0 - first[:, PERSON]  # clothes: random colours, always in strong contrast
    return first, second


def _texture_values(fields: Fields, codes: np.ndarray) -> np.ndarray:
    """The texture value t of every pixel (n, H, W), each code's texture evaluated on its own pixels only."""
    n, height, width = codes.shape
    flat = codes.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=NUM_CODES))])
    t = np.empty(flat.size, np.float32)
    for code in range(NUM_CODES):
        where = order[bounds[code] : bounds[code + 1]]
        if where.size:
            nn, rest = np.divmod(where, height * width)
            yy, xx = np.divmod(rest, width)
            t[where] = TEXTURES[code](fields, Pixels(where, nn, yy.astype(np.float32), xx.astype(np.float32)))
    return t.reshape(n, height, width)


def render(rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
    """RGB images (n, H, W, 3) uint8 for part-code maps (n, H, W): textures, colours, light and sensor noise."""
    n, height, width = codes.shape
    fields = Fields.draw(rng, n, height)
    first, second = _colours(rng, n)
    brightness = rng.uniform(0.75, 1.2, (n, 1, 1)).astype(np.float32)
    first, second = (first * brightness).reshape(-1, 3), (second * brightness).reshape(-1, 3)
    key = codes.astype(np.int32) + (np.arange(n, dtype=np.int32) * NUM_CODES)[:, None, None]
    image = np.take(first, key, axis=0)
    image += np.take(second - first, key, axis=0) * _texture_values(fields, codes)[..., None]
    tilt = rng.uniform(-0.25, 0.25, (n, 1, 1, 1)).astype(np.float32)
    image *= 1.0 + tilt * np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, None, :, None]
    image += (fields.fine[..., None] - 0.5) * 8.0
    return np.clip(image, 0, 255, out=image).astype(np.uint8)
