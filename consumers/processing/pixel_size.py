"""The physical pixel size (µm) a TIFF declares: OME, ImageJ or resolution tags."""

import math

import tifffile

from consumers.processing.ome_xml import ome_pixels

# µm per unit of the length units that microscopes write
_MICROMETRES = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00b5m": 1.0, "mm": 1e3,
                "cm": 1e4}
_RESOLUTION_UNIT_UM = {tifffile.RESUNIT.CENTIMETER: 1e4, tifffile.RESUNIT.MILLIMETER: 1e3,
                       tifffile.RESUNIT.MICROMETER: 1.0}
PLAUSIBLE_UM = (1e-3, 100.0)  # anything outside is not a microscope's pixel


def tiff_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """µm per pixel along X, from OME-XML, ImageJ metadata or metric resolution tags; None if none is given.

    Inch-based resolutions (72 or 300 dpi: a screen's or a printer's) are not a
    microscope's and are ignored, as are implausible values.
    """
    for reader in (_ome, _imagej, _metric_resolution):
        size = reader(tif)
        if size is not None and PLAUSIBLE_UM[0] <= size <= PLAUSIBLE_UM[1]:
            return size
    return None


def _ome(tif: tifffile.TiffFile) -> float | None:
    pixels = ome_pixels(tif)
    if pixels is None or pixels.get("PhysicalSizeX") is None:
        return None
    unit = _MICROMETRES.get(pixels.get("PhysicalSizeXUnit", "µm"))
    return _positive(pixels.get("PhysicalSizeX"), unit)


def _imagej(tif: tifffile.TiffFile) -> float | None:
    metadata = tif.imagej_metadata or {}
    unit = _MICROMETRES.get(str(metadata.get("unit", "")).strip())
    if unit is None:
        return None
    return _from_resolution(tif, unit)


def _metric_resolution(tif: tifffile.TiffFile) -> float | None:
    unit = _RESOLUTION_UNIT_UM.get(tif.pages.first.resolutionunit)
    return None if unit is None else _from_resolution(tif, unit)


def _from_resolution(tif: tifffile.TiffFile, unit_um: float) -> float | None:
    """µm per pixel from XResolution (pixels per unit)."""
    tag = tif.pages.first.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value
    if not numerator or not denominator:
        return None
    return _positive(denominator / numerator, unit_um)


def _positive(value: object, unit_um: float | None) -> float | None:
    try:
        size = float(value) * unit_um if unit_um is not None else None
    except (TypeError, ValueError):
        return None
    return size if size is not None and math.isfinite(size) and size > 0 else None
