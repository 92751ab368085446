"""A small PNG line plot drawn with NumPy and encoded by `tf.io.encode_png`: no plotting library.

Axes with a tick per layer decade and per power of ten, one coloured polyline per series, and a
legend of coloured blocks in series order (the README and the table name the colours).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from convdiff.data.files import write_atomically
from convdiff.errors import BadInputError

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
COLOUR_NAMES = ("blue", "orange", "green", "red")
WIDTH, HEIGHT, MARGIN = 720, 420, 40


def log_line_plot(series: Sequence[Sequence[float]]) -> np.ndarray:
    """An RGB image (uint8, HEIGHT x WIDTH x 3) of log10(values) per layer, one line per series.

    Non-finite or non-positive values end a line (there is no log of Inf or 0); a red tick on the
    top edge marks where each line stopped.
    """
    image = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    logs = [[math.log10(v) if math.isfinite(v) and v > 0 else None for v in s] for s in series]
    finite = [v for s in logs for v in s if v is not None]
    low, high = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (-1, 1)
    if high == low:
        high += 1
    n = max((len(s) for s in series), default=1)
    x0, x1, y0, y1 = MARGIN, WIDTH - MARGIN // 2, HEIGHT - MARGIN, MARGIN // 2

    def px(i: int, v: float) -> tuple[float, float]:
        x = x0 + (x1 - x0) * (i / max(1, n - 1))
        y = y0 + (y1 - y0) * ((v - low) / (high - low))
        return x, y

    grey, black = (200, 200, 200), (0, 0, 0)
    step = max(1, (high - low) // 12)
    for decade in range(low, high + 1, step):  # horizontal grid line per power of ten
        _, y = px(0, decade)
        image[int(round(y)), x0:x1] = grey
        image[int(round(y)) - 1:int(round(y)) + 2, x0 - 6:x0] = black
    _, zero = px(0, 0.0)
    if low <= 0 <= high:
        image[int(round(zero)), x0:x1] = (120, 120, 120)  # the input's scale, 10^0
    image[y1:y0 + 1, x0 - 1:x0 + 1] = black
    image[y0:y0 + 2, x0:x1 + 1] = black
    for layer in range(0, n, max(1, n // 10)):
        x, _ = px(layer, low)
        image[y0:y0 + 6, int(round(x))] = black
    for colour, line in zip(COLOURS, logs):
        points = []
        for i, v in enumerate(line):
            if v is None:
                x, _ = px(i, high)
                image[y1:y1 + 8, int(round(x)) - 1:int(round(x)) + 2] = (214, 39, 40)
                break
            points.append(px(i, v))
        _polyline(image, points, colour)
    for k, colour in enumerate(COLOURS[:len(series)]):  # legend: blocks in series order
        image[y1 + 4:y1 + 16, x0 + 10 + 24 * k:x0 + 28 + 24 * k] = colour
    return image


def _polyline(image: np.ndarray, points: list[tuple[float, float]], colour: tuple[int, int, int]) -> None:
    if len(points) == 1:
        points = points * 2
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        steps = int(max(abs(xb - xa), abs(yb - ya))) + 1
        xs = np.rint(np.linspace(xa, xb, steps + 1)).astype(int)
        ys = np.rint(np.linspace(ya, yb, steps + 1)).astype(int)
        for dy in (-1, 0, 1):  # 3 px thick
            image[np.clip(ys + dy, 0, image.shape[0] - 1), np.clip(xs, 0, image.shape[1] - 1)] = colour


def encode_png(image: np.ndarray) -> bytes:
    from convdiff.frameworks import import_tensorflow

    return bytes(import_tensorflow().io.encode_png(image).numpy())


def heatmap_image(reference: np.ndarray, candidate: np.ndarray, min_side: int = 128) -> np.ndarray:
    """RGB uint8 image of the per-position max abs diff over batch and channels (black -> red -> yellow -> white).

    Positions only one side has are drawn at full intensity. Small maps are enlarged by an integer
    factor so that their shorter side is at least `min_side` pixels.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.ndim != 4 or cand.ndim != 4:
        raise BadInputError("a heatmap needs NHWC outputs on both sides")
    h, w = min(ref.shape[1], cand.shape[1]), min(ref.shape[2], cand.shape[2])
    diff = np.abs(cand[:, :h, :w, : min(ref.shape[3], cand.shape[3])] - ref[:, :h, :w, : min(ref.shape[3], cand.shape[3])])
    diff = np.where(np.isnan(diff), np.inf, diff)
    per_position = diff.max(axis=(0, 3)) if diff.size else np.zeros((h, w))
    top = per_position[np.isfinite(per_position)].max(initial=0.0)
    value = np.zeros((max(ref.shape[1], cand.shape[1]), max(ref.shape[2], cand.shape[2])))
    value[:h, :w] = np.where(np.isfinite(per_position), per_position / top if top > 0 else 0.0, 1.0)
    value[h:, :] = 1.0
    value[:, w:] = 1.0
    rgb = np.stack([np.clip(3 * value, 0, 1), np.clip(3 * value - 1, 0, 1), np.clip(3 * value - 2, 0, 1)], axis=-1)
    image = np.rint(rgb * 255).astype(np.uint8)
    factor = int(min(16, max(1, -(-min_side // max(1, min(image.shape[:2]))))))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def write_heatmap(path: str, reference: np.ndarray, candidate: np.ndarray) -> None:
    """Encode `heatmap_image` as PNG and write it to `path` (atomically)."""
    write_atomically(path, encode_png(heatmap_image(reference, candidate)), "heatmap")
