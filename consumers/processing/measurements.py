"""Per-nucleus measurements of a result, as a CSV table a biologist can open."""

import csv
import io

import numpy as np
from skimage.measure import regionprops_table

_PROPERTIES = ("label", "centroid", "area", "intensity_mean", "bbox")
_BOX = (("bbox_min_y", "bbox-0"), ("bbox_min_x", "bbox-1"), ("bbox_max_y", "bbox-2"), ("bbox_max_x", "bbox-3"))


def measurements(labels: np.ndarray, intensity: np.ndarray, pixel_size_um: float | None) -> list[dict[str, float]]:
    """One row per nucleus of (F, H, W) `labels`, measured on the (F, H, W, C) raw `intensity`.

    Columns: frame, label, centroid_y/x (px), area_px, area_um2 (only when the pixel
    size is known), mean and integrated intensity (the sum over the nucleus) per
    channel (suffixed _c0, _c1... when there are several), and the bounding box
    (min inclusive, max exclusive, px).
    """
    if labels.shape != intensity.shape[:3]:
        raise ValueError(f"labels {labels.shape} and intensity {intensity.shape} do not match")
    return [row for index, (frame_labels, frame_intensity) in enumerate(zip(labels, intensity))
            for row in _frame_rows(index, frame_labels, frame_intensity, pixel_size_um)]


def measurements_csv(labels: np.ndarray, intensity: np.ndarray, pixel_size_um: float | None) -> bytes:
    """`measurements` as UTF-8 CSV bytes, with a header row even when no nucleus was found."""
    rows = measurements(labels, intensity, pixel_size_um)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(intensity.shape[-1], pixel_size_um), lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: _text(value) for name, value in row.items()} for row in rows)
    return buffer.getvalue().encode()


def _columns(channels: int, pixel_size_um: float | None) -> list[str]:
    suffixes = [f"_c{channel}" for channel in range(channels)] if channels > 1 else [""]
    return ["frame", "label", "centroid_y", "centroid_x", "area_px", *(["area_um2"] if pixel_size_um else []),
            *(f"{kind}_intensity{suffix}" for suffix in suffixes for kind in ("mean", "integrated")),
            *(name for name, _ in _BOX)]


def _frame_rows(index: int, labels: np.ndarray, intensity: np.ndarray,
                pixel_size_um: float | None) -> list[dict[str, float]]:
    table = regionprops_table(labels, intensity.astype(np.float64, copy=False), properties=_PROPERTIES)
    channels = intensity.shape[-1]
    rows = []
    for row in range(len(table["label"])):
        area = int(table["area"][row])
        values: dict[str, float] = {"frame": index, "label": int(table["label"][row]),
                                    "centroid_y": table["centroid-0"][row], "centroid_x": table["centroid-1"][row],
                                    "area_px": area}
        if pixel_size_um:
            values["area_um2"] = area * pixel_size_um**2
        for channel in range(channels):
            suffix = f"_c{channel}" if channels > 1 else ""
            mean = table[f"intensity_mean-{channel}"][row]
            values[f"mean_intensity{suffix}"] = mean
            values[f"integrated_intensity{suffix}"] = mean * area
        values.update({name: int(table[key][row]) for name, key in _BOX})
        rows.append(values)
    return rows


def _text(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"
