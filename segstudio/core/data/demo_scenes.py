"""Layouts of the synthetic demo scenes, vectorised over a batch of images.

A layout is a map of *part codes* per pixel (no colours yet): the ten demo classes (dataset ids 1..10, 0 =
"other" clutter) plus parts that share a class but get their own texture (a person's head, a car's windows and
wheels). Every size is a fraction of the image side, so the layouts work at any resolution.
"""

from __future__ import annotations

import numpy as np

OTHER, WALL, BUILDING, SKY, FLOOR, TREE, ROAD, GRASS, PERSON, CAR, WATER = range(11)
HEAD, CAR_WINDOW, WHEEL, LEGS, LANE = 11, 12, 13, 14, 15
NUM_CODES = 16
# Part code -> dataset id (0 = other, k = demo class k).
CODE_TO_CLASS = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, PERSON, CAR, CAR, PERSON, ROAD], dtype=np.uint8)
CLASS_NAMES = ["wall", "building", "sky", "floor", "tree", "road", "grass", "person", "car", "water"]
SCENES = ["lakeside", "park", "room", "street"]


class Canvas:
    """Part codes of ``n`` square images of side ``size`` and the drawing primitives used by the layouts."""

    def __init__(self, rng: np.random.Generator, n: int, size: int) -> None:
        self.rng, self.n, self.size = rng, n, size
        self.y = np.arange(size, dtype=np.float32)[None, :, None]
        self.x = np.arange(size, dtype=np.float32)[None, None, :]
        self.code = np.full((n, size, size), SKY, dtype=np.uint8)

    def u(self, lo: float, hi: float) -> np.ndarray:
        """One uniform value per image, in fractions of the image side, as an (n, 1, 1) array of pixels."""
        return (self.rng.uniform(lo, hi, (self.n, 1, 1)) * self.size).astype(np.float32)

    def chance(self, p: float) -> np.ndarray:
        return self.rng.random((self.n, 1, 1)) < p

    def wave(self, amp: float, period: float) -> np.ndarray:
        """A smooth random curve along x: (n, 1, W) offsets in pixels, at most ``amp`` (fraction) high."""
        a = self.u(0.3 * amp, amp)
        phase = self.rng.uniform(0, 2 * np.pi, (self.n, 2, 1)).astype(np.float32)
        freq = 2 * np.pi / (period * self.size)
        return a * (0.65 * np.sin(self.x * freq + phase[:, :1]) + 0.35 * np.sin(self.x * 2.3 * freq + phase[:, 1:]))

    def paint(self, mask: np.ndarray, code: int) -> None:
        np.putmask(self.code, np.broadcast_to(mask, self.code.shape), np.uint8(code))

    def blob(self, cy, cx, hh, hw, power: float | np.ndarray = 2.0, active: np.ndarray | None = None) -> np.ndarray:
        """A superellipse (2 = ellipse, 4 and more = rounded rectangle), empty in images that are not ``active``."""
        ax = np.abs((self.x - cx) / hw) ** power
        ay = np.abs((self.y - cy) / hh) ** power
        if active is not None:
            ay = np.where(active, ay, np.inf)
        return (ax + ay) <= 1.0

    def person(self, feet: np.ndarray, cx: np.ndarray, h: np.ndarray, active: np.ndarray) -> None:
        """Legs, a striped torso and a head; about a third as wide as tall."""
        self.paint(self.blob(feet - 0.23 * h, cx, 0.23 * h, 0.12 * h, 4.0, active=active), LEGS)
        self.paint(self.blob(feet - 0.58 * h, cx, 0.21 * h, 0.17 * h, 3.0, active=active), PERSON)
        self.paint(self.blob(feet - 0.88 * h, cx, 0.105 * h, 0.09 * h, active=active), HEAD)

    def car(self, bottom: np.ndarray, cx: np.ndarray, w: np.ndarray, active: np.ndarray) -> None:
        self.paint(self.blob(bottom - 0.34 * w, cx, 0.12 * w, 0.3 * w, 3.0, active=active), CAR)
        self.paint(self.blob(bottom - 0.35 * w, cx, 0.085 * w, 0.24 * w, 3.0, active=active), CAR_WINDOW)
        self.paint(self.blob(bottom - 0.19 * w, cx, 0.12 * w, 0.5 * w, 4.0, active=active), CAR)
        for side in (-1.0, 1.0):
            self.paint(self.blob(bottom - 0.08 * w, cx + side * 0.3 * w, 0.08 * w, 0.08 * w, active=active), WHEEL)

    def persons(self, top: np.ndarray, bottom: np.ndarray, chances: tuple[float, ...], scale: float = 1.0) -> None:
        """Up to ``len(chances)`` people with their feet between ``top`` and ``bottom``, far ones first."""
        feet = np.sort(self.rng.random((self.n, 1, len(chances))), axis=-1).astype(np.float32)
        for k, p in enumerate(chances):
            f = top + (bottom - top) * feet[..., k : k + 1]
            depth = (f - top) / np.maximum(bottom - top, 1.0)
            h = (0.28 + 0.3 * depth) * scale * self.u(0.9, 1.1)
            self.person(f, self.u(0.06, 0.94), h, self.chance(p))

    def cars(
        self, top: np.ndarray, bottom: np.ndarray, chances: tuple[float, ...], active: np.ndarray | bool = True
    ) -> None:
        """Up to ``len(chances)`` cars standing between ``top`` and ``bottom``, far ones first."""
        rows = np.sort(self.rng.random((self.n, 1, len(chances))), axis=-1).astype(np.float32)
        for k, p in enumerate(chances):
            b = top + (bottom - top) * rows[..., k : k + 1]
            depth = (b - top) / np.maximum(bottom - top, 1.0)
            w = (0.3 + 0.28 * depth) * self.u(0.85, 1.15)
            self.car(b, self.u(0.1, 0.9), w, self.chance(p) & active)

    def clutter(self, chances: tuple[float, ...], lo: float = 0.03, hi: float = 0.07) -> None:
        """Odd objects of no demo class ("other", dataset id 0), anywhere in the picture."""
        for p in chances:
            power = np.where(self.chance(0.5), 2.0, 6.0).astype(np.float32)
            cy, cx, hh, hw = self.u(0.1, 0.95), self.u(0.05, 0.95), self.u(lo, hi), self.u(lo, hi)
            self.paint(self.blob(cy, cx, hh, hw, power, active=self.chance(p)), OTHER)

    def tree(self, ground: np.ndarray, cx: np.ndarray, h: np.ndarray, active: np.ndarray) -> None:
        """A free-standing tree: trunk and a round canopy, all of class tree."""
        self.paint(self.blob(ground - 0.2 * h, cx, 0.2 * h, 0.06 * h, 6.0, active=active), TREE)
        self.paint(self.blob(ground - 0.62 * h, cx, 0.34 * h, 0.3 * h, active=active), TREE)


def _skyline(c: Canvas, ground: np.ndarray, low: float, high: float, blocks: int = 6) -> np.ndarray:
    """Building mask: blocks of random width and height standing on ``ground``; some blocks left out."""
    widths = c.rng.uniform(0.6, 1.4, (c.n, blocks))
    edges = np.cumsum(widths, axis=1)[:, :-1] / widths.sum(axis=1, keepdims=True) * c.size
    block = (c.x[0, 0][None, :, None] >= edges[:, None, :]).sum(axis=-1)
    heights = c.rng.uniform(low, high, (c.n, blocks)) * c.size
    heights[c.rng.random((c.n, blocks)) < 0.15] = 0.0
    top = ground - np.take_along_axis(heights, block, axis=1)[:, None, :].astype(np.float32)
    return (c.y >= top) & (c.y < ground)


def _treeline(c: Canvas, ground: np.ndarray, low: float, high: float) -> np.ndarray:
    """Tree mask: a bumpy band of canopies above ``ground``, broken where a smooth curve dips."""
    top = ground - c.u(low, high) - np.abs(c.wave(0.07, 0.18)) - c.wave(0.03, 0.5)
    cover = c.wave(1.0, 0.9) > c.u(-1.0, 0.1)
    return (c.y >= top) & (c.y < ground) & cover


def street(c: Canvas) -> None:
    road_base = c.u(0.58, 0.7)
    road = road_base + c.wave(0.02, 0.8)
    c.paint(_skyline(c, road, 0.2, 0.5), BUILDING)
    for _ in range(2):
        c.tree(road_base - c.u(0.0, 0.05), c.u(0.05, 0.95), c.u(0.3, 0.45), c.chance(0.35))
    grass = (c.y >= road - c.u(0.03, 0.08)) & c.chance(0.35)
    c.paint(grass, GRASS)
    c.paint(c.y >= road, ROAD)
    lane = road_base + c.u(0.12, 0.2)
    period, offset = c.u(0.15, 0.25), c.u(0.0, 0.25)
    dashes = (np.abs(c.y - lane) < 0.012 * c.size) & ((c.x + offset) % period < 0.5 * period)
    c.paint(dashes & c.chance(0.7), LANE)
    c.clutter((0.7, 0.3))
    c.cars(road_base + 0.12 * c.size, np.float32(c.size * 1.02), (1.0, 0.8, 0.5))
    c.persons(road_base + 0.02 * c.size, np.float32(c.size), (0.7, 0.4))


def park(c: Canvas) -> None:
    grass_base = c.u(0.5, 0.66)
    grass = grass_base + c.wave(0.025, 0.7)
    far_building = c.blob(grass_base, c.u(0.1, 0.9), c.u(0.1, 0.22), c.u(0.1, 0.22), 8.0) & (c.y < grass)
    c.paint(far_building & c.chance(0.35), BUILDING)
    c.paint(_treeline(c, grass, 0.1, 0.25), TREE)
    c.paint(c.y >= grass, GRASS)
    pond = c.blob(c.u(0.75, 0.9), c.u(0.2, 0.8), c.u(0.05, 0.09), c.u(0.15, 0.3))
    c.paint(pond & c.chance(0.3), WATER)
    for _ in range(2):
        c.tree(grass_base + c.u(0.02, 0.25), c.u(0.05, 0.95), c.u(0.35, 0.55), c.chance(0.4))
    road_top, has_road = c.u(0.84, 0.9), c.chance(0.35)
    c.paint((c.y >= road_top) & has_road, ROAD)
    c.clutter((0.7, 0.3))
    c.persons(grass_base + 0.04 * c.size, road_top, (0.9, 0.6, 0.3))
    c.cars(road_top + 0.1 * c.size, np.float32(c.size * 1.02), (0.9, 0.4), has_road)


def lakeside(c: Canvas) -> None:
    horizon = c.u(0.36, 0.5)
    shore_base = c.u(0.72, 0.84)
    far_trees = c.chance(0.65)
    c.paint(_treeline(c, horizon, 0.03, 0.1) & far_trees, TREE)
    c.paint(_skyline(c, horizon, 0.08, 0.2, blocks=8) & ~far_trees, BUILDING)
    c.paint(c.y >= horizon + c.wave(0.004, 0.5), WATER)
    c.paint(c.y >= shore_base + c.wave(0.03, 0.6), GRASS)
    side = np.where(c.chance(0.5), c.u(-0.05, 0.12), c.u(0.88, 1.05))
    c.tree(shore_base + c.u(0.02, 0.1), side, c.u(0.5, 0.75), c.chance(0.45))
    c.clutter((0.6, 0.3))
    c.persons(shore_base + 0.05 * c.size, np.float32(c.size), (0.8, 0.4))


def room(c: Canvas) -> None:
    corner = c.u(0.2, 0.8)
    floor_line = c.u(0.58, 0.72) + c.u(-0.2, 0.2) / c.size * np.abs(c.x - corner)
    c.paint(np.ones_like(c.code, dtype=bool), WALL)
    top, left = c.u(0.08, 0.2), c.u(0.05, 0.6)
    bottom, right = top + c.u(0.2, 0.3), left + c.u(0.2, 0.35)
    window = (c.y >= top) & (c.y < bottom) & (c.x >= left) & (c.x < right) & c.chance(0.6)
    c.paint(window, SKY)
    c.paint(window & (c.y >= bottom - c.u(0.04, 0.14) + c.wave(0.02, 0.15)) & c.chance(0.6), TREE)
    c.paint(c.y >= floor_line, FLOOR)
    furniture = c.blob(floor_line - c.u(0.05, 0.1), c.u(0.1, 0.9), c.u(0.06, 0.12), c.u(0.08, 0.15), 8.0)
    c.paint(furniture & c.chance(0.4), OTHER)
    c.clutter((0.6, 0.3))
    c.persons(c.u(0.72, 0.78), np.float32(c.size), (0.9, 0.7, 0.4), scale=1.15)


LAYOUTS = {"lakeside": lakeside, "park": park, "room": room, "street": street}


def layout(rng: np.random.Generator, scenes: np.ndarray, size: int) -> np.ndarray:
    """Part codes (n, size, size) for images of the given scene ids (indices into ``SCENES``)."""
    codes = np.empty((len(scenes), size, size), dtype=np.uint8)
    for scene_id, name in enumerate(SCENES):
        where = np.flatnonzero(scenes == scene_id)
        if where.size:
            canvas = Canvas(rng, where.size, size)
            LAYOUTS[name](canvas)
            codes[where] = canvas.code
    return codes
