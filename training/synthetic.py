"""Synthetic fluorescence-nuclei images with exact instance labels.

`make_sample` is the training data of NuclearSegmentation and the sample input
of the consumers' end-to-end tests and `make run`; keep its name and signature.

Nuclei are painted one by one, each either on top of or beneath the ones
already there, so where two overlap the label goes to the nucleus whose
intensity is visible. The optics (blur and glow), the camera (Poisson shot noise,
Gaussian read noise, offset) and the background are applied afterwards.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DIAMETER_RANGE = (8.0, 40.0)
MAX_OVERLAP = 0.2  # largest fraction of a nucleus another may hide or share
MIN_INSIDE = 0.4  # nuclei cut by the border keep at least this much in view
CAMERA_MAX = 65535.0  # results always fit in uint16


@dataclass(frozen=True)
class _Style:
    """Parameters shared by all nuclei of one image (one 'experiment')."""

    typical_diameter: float
    diameter_spread: float
    coverage: float
    cluster_fraction: float
    max_aspect: float
    irregularity: float
    log_dynamic_range: float
    mitotic_fraction: float
    texture: float


def _draw_style(rng: np.random.Generator) -> _Style:
    return _Style(
        typical_diameter=float(np.exp(rng.uniform(np.log(10.0), np.log(30.0)))),
        # most images hold one cell type; some mix very different sizes
        diameter_spread=float(rng.choice([0.12, 0.25, 0.6], p=[0.4, 0.45, 0.15])),
        coverage=float(rng.uniform(0.08, 0.5)),
        cluster_fraction=float(rng.uniform(0.1, 0.8)),
        max_aspect=float(rng.uniform(1.1, 2.0)),
        irregularity=float(rng.uniform(0.0, 0.12)),
        log_dynamic_range=float(rng.uniform(0.2, 1.2)),
        mitotic_fraction=float(rng.choice([0.0, 0.05], p=[0.5, 0.5])),
        texture=float(rng.uniform(0.05, 0.3)),
    )


def _nucleus_shape(
    rng: np.random.Generator, style: _Style, shape: tuple[int, int], centre: tuple[float, float], diameter: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Rasterise one nucleus: (bbox, mask, relative radius, 0 at centre to 1 at rim) or None if out of view."""
    radius = diameter / 2.0
    aspect = rng.uniform(1.0, style.max_aspect)
    semi_major, semi_minor = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    angle = rng.uniform(0.0, np.pi)
    harmonics = np.arange(2, 6)
    amplitudes = rng.normal(0.0, style.irregularity, harmonics.size) / np.sqrt(harmonics - 1)
    phases = rng.uniform(0.0, 2 * np.pi, harmonics.size)

    reach = semi_major * (1.0 + np.abs(amplitudes).sum()) + 1.0
    cy, cx = centre
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, shape[0])
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = dy * np.cos(angle) - dx * np.sin(angle)
    phi = np.arctan2(v, u)
    ellipse = 1.0 / np.sqrt((np.cos(phi) / semi_major) ** 2 + (np.sin(phi) / semi_minor) ** 2)
    wobble = 1.0 + np.tensordot(amplitudes, np.cos(harmonics[:, None, None] * phi + phases[:, None, None]), axes=1)
    rho = np.hypot(u, v) / (ellipse * wobble)
    mask = rho < 1.0
    if mask.sum() < MIN_INSIDE * np.pi * semi_major * semi_minor:
        return None
    return (slice(y0, y1), slice(x0, x1)), mask, rho


def _is_one_piece(region: np.ndarray) -> bool:
    """True if the pixels of one nucleus form a single 8-connected piece."""
    _, pieces = ndimage.label(region, structure=np.ones((3, 3)))
    return pieces == 1


def _survives_cover(labels: np.ndarray, old: int, box: tuple[slice, slice], mask: np.ndarray) -> bool:
    """True if nucleus `old` stays in one piece once `mask` (at `box`) is painted over it."""
    rows, cols = np.nonzero(labels == old)
    top, left = min(rows.min(), box[0].start), min(cols.min(), box[1].start)
    bottom, right = max(rows.max() + 1, box[0].stop), max(cols.max() + 1, box[1].stop)
    remaining = labels[top:bottom, left:right] == old
    remaining[box[0].start - top : box[0].stop - top, box[1].start - left : box[1].stop - left] &= ~mask
    return _is_one_piece(remaining)


def _place_nuclei(rng: np.random.Generator, style: _Style, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Paint nuclei until the target coverage; returns (labels, noise-free nuclear intensity)."""
    labels = np.zeros(shape, np.int32)
    intensity = np.zeros(shape, np.float32)
    # chromatin grain scales with the nuclei: small-looking nuclei mean a low magnification
    grain_size = style.typical_diameter * rng.uniform(0.04, 0.12)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), grain_size)
    texture *= style.texture / (texture.std() + 1e-6)
    areas: list[int] = [0]  # visible pixels per label; index 0 is background
    drawn_areas: list[int] = [0]  # pixels per label when it was painted
    placed: list[tuple[float, float, float]] = []  # (y, x, diameter) per nucleus
    target_area = style.coverage * shape[0] * shape[1]
    covered = 0
    attempts = int(4 * target_area / (np.pi / 4 * style.typical_diameter**2)) + 20
    for _ in range(attempts):
        if covered >= target_area:
            break
        mitotic = rng.random() < style.mitotic_fraction
        diameter = style.typical_diameter * np.exp(rng.normal(0.0, style.diameter_spread))
        diameter = float(np.clip(diameter * (0.65 if mitotic else 1.0), *DIAMETER_RANGE))
        if placed and rng.random() < style.cluster_fraction:
            # next to an existing nucleus: touching or overlapping a little
            ny, nx, nd = placed[rng.integers(len(placed))]
            gap = (nd + diameter) / 2 * rng.uniform(0.75, 1.0)
            direction = rng.uniform(0.0, 2 * np.pi)
            centre = (ny + gap * np.sin(direction), nx + gap * np.cos(direction))
        else:
            margin = diameter / 4
            centre = (rng.uniform(-margin, shape[0] + margin), rng.uniform(-margin, shape[1] + margin))
        drawn = _nucleus_shape(rng, style, shape, centre, diameter)
        if drawn is None:
            continue
        box, mask, rho = drawn
        below = labels[box] * mask
        area = int(mask.sum())
        shared = np.count_nonzero(below)
        if shared > MAX_OVERLAP * area:
            continue
        if rng.random() < 0.5:  # on top: hides part of the nuclei below
            hidden, counts = np.unique(below[below > 0], return_counts=True)
            if any(areas[old] - count < (1 - MAX_OVERLAP) * drawn_areas[old] for old, count in zip(hidden, counts)):
                continue
            if not all(_survives_cover(labels, old, box, mask) for old in hidden):
                continue
            for old, count in zip(hidden, counts):
                areas[old] -= int(count)
            visible = mask
        else:  # beneath: only shows where nothing is yet
            visible = mask & (labels[box] == 0)
            if not _is_one_piece(visible):
                continue

        brightness = 10.0 ** -rng.uniform(0.0, style.log_dynamic_range) * (rng.uniform(2.0, 6.0) if mitotic else 1.0)
        profile = 1.0 - rng.uniform(-0.1, 0.3) * rho**2  # domed or slightly rim-bright
        grain = np.clip(1.0 + texture[box] * (2.0 if mitotic else 1.0), 0.2, None)
        labels[box][visible] = len(areas)
        intensity[box][visible] = (brightness * profile * grain)[visible]
        areas.append(int(visible.sum()))
        drawn_areas.append(areas[-1])
        placed.append((centre[0], centre[1], diameter))
        covered += area - shared
    return labels, intensity


def _background(rng: np.random.Generator, shape: tuple[int, int], level: float) -> np.ndarray:
    """Smooth background around ``level``: a linear gradient and slow blotches (uneven illumination, haze)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    direction = rng.uniform(0.0, 2 * np.pi)
    ramp = (yy * np.sin(direction) + xx * np.cos(direction)) / max(shape)
    # a coarse random grid, smoothly upsampled: cheap slow variation
    coarse = rng.standard_normal((5, 5)).astype(np.float32)
    blotches = ndimage.zoom(coarse, (shape[0] / 5, shape[1] / 5), order=3, grid_mode=True, mode="grid-constant")
    field = level * (1.0 + rng.uniform(0.0, 0.8) * ramp + rng.uniform(0.0, 0.3) * blotches)
    return np.clip(field, 0.0, None)


def _optics(rng: np.random.Generator, nuclei: np.ndarray, typical_diameter: float) -> np.ndarray:
    """The microscope's blur: a sharp core plus a faint wide glow (scatter, out-of-focus light) that haloes bright nuclei."""
    # the blur is fixed in microns, so in pixels it scales with the nuclei too
    sigma = max(0.3, typical_diameter * rng.uniform(0.02, 0.07))
    glow = rng.uniform(0.0, 0.15)
    return (1 - glow) * ndimage.gaussian_filter(nuclei, sigma) + glow * ndimage.gaussian_filter(nuclei, 4 * sigma + 2)


def _photons_to_show(dimmest: float, background: float, read_noise: float, snr: float) -> float:
    """Photons per unit brightness at which the dimmest nucleus rises ``snr`` noise sigmas above the background.

    Solves dimmest * P = snr * sqrt((background + dimmest) * P + read_noise**2) for P;
    brightness and background are relative, read noise is in photons.
    """
    s2, total = snr**2, background + dimmest
    return (s2 * total + np.sqrt((s2 * total) ** 2 + 4 * dimmest**2 * s2 * read_noise**2)) / (2 * dimmest**2)


def make_sample(rng: np.random.Generator, shape: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclear-stain image and its instance labels.

    Returns ``(image, labels)``: ``image`` float32 (H, W) of non-negative camera
    counts below 65536 (castable to uint16), ``labels`` int32 (H, W) with 0 for
    background and 1..N for nuclei. Nuclei are 8-40 px across, touch and
    overlap slightly, vary in shape, texture and brightness (up to ~16x within
    one image, more for the few bright mitotic ones); background, blur and
    noise vary between calls, but even the dimmest nucleus stays visible above
    the noise, as a person labelling real images would see it. The result
    depends only on the state of ``rng``.
    """
    style = _draw_style(rng)
    labels, nuclei = _place_nuclei(rng, style, shape)
    level = rng.uniform(0.01, 0.4)
    optical = _optics(rng, nuclei, style.typical_diameter) + _background(rng, shape, level)
    read_noise = rng.uniform(0.5, 4.0)  # photons
    dimmest = 10.0**-style.log_dynamic_range
    needed = _photons_to_show(dimmest, 1.5 * level, read_noise, snr=rng.uniform(2.0, 5.0))
    photons = max(needed, np.exp(rng.uniform(np.log(20.0), np.log(3000.0))))
    gain = rng.uniform(0.5, 4.0)  # counts per photon
    counts = rng.poisson(optical * photons) + rng.normal(0.0, read_noise, shape)
    camera = counts * gain + rng.uniform(0.0, 200.0)
    return np.clip(camera, 0.0, CAMERA_MAX).astype(np.float32), labels
