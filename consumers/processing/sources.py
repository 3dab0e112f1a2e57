"""Large images read region by region: a single-frame TIFF (also BigTIFF, tiled or
pyramidal OME-TIFF) through tifffile's Zarr view, or a zipped OME-Zarr image."""

from pathlib import Path

import numpy as np
import tifffile
import zarr
import zarr.storage

from consumers.filetypes import is_ome_zarr_name
from consumers.jobs import JobRequest
from consumers.model_client import ModelSpec
from consumers.processing.channels import select_channels
from consumers.processing.imageio import Image, names_if_one_per_channel
from consumers.processing.messages import blame_input
from consumers.processing.ngff import open_zipped_image
from consumers.processing.ome_xml import ome_channel_names
from consumers.processing.pixel_size import tiff_pixel_size


class RegionSource:
    """An image on local disk whose regions are read as (h, w, C) pixels of the model's channels.

    shape: (H, W) of the full-resolution image; pixel_size_um: µm per pixel, if the
    file says; channel_names: the file's channel names, if it names them.
    """

    def __init__(self, pixels: zarr.Array, axes: str, colour: bool, pixel_size_um: float | None,
                 channel_names: tuple[str, ...] | None, request: JobRequest, spec: ModelSpec,
                 unreadable: str) -> None:
        self._pixels, self._axes, self._colour = pixels, axes.upper(), colour
        self.shape = (pixels.shape[self._axes.index("Y")], pixels.shape[self._axes.index("X")])
        channels = int(np.prod([size for axis, size in zip(self._axes, pixels.shape) if axis not in "YX"]))
        self.pixel_size_um = pixel_size_um
        self.channel_names = names_if_one_per_channel(channel_names, channels)
        self._request, self._spec, self._unreadable = request, spec, unreadable

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The model's channels of a region, in the file's dtype."""
        axes = self._axes
        index = tuple(rows if axis == "Y" else cols if axis == "X" else slice(None) for axis in axes)
        with blame_input(self._unreadable):  # a local scratch copy: a failure is the file's
            region = self._pixels[index]
        order = [axes.index("Y"), axes.index("X"), *(i for i, axis in enumerate(axes) if axis not in "YX")]
        region = np.transpose(region, order)
        region = region.reshape(*region.shape[:2], -1)
        if self._colour:
            region = region[..., :3]
        image = Image(region[None], self._colour, axes, self.pixel_size_um, self.channel_names)
        return select_channels(image, list(self._request.channels) or None, self._spec.channels or 1,
                               model_name=self._request.model_name)[0]

    def close(self) -> None:
        """Release the file."""


class TiffSource(RegionSource):
    """The first series of a TIFF, at full resolution."""

    def __init__(self, path: Path, request: JobRequest, spec: ModelSpec) -> None:
        unreadable = (f"the file '{request.original_name}' is not a readable TIFF image "
                      "(it may be truncated or corrupt)")
        with blame_input(unreadable):
            self._tif = tifffile.TiffFile(path)
        series = self._tif.series[0]
        colour = "S" in series.axes and series.keyframe.photometric in (tifffile.PHOTOMETRIC.RGB,
                                                                        tifffile.PHOTOMETRIC.YCBCR)
        pixels = zarr.open_array(series.aszarr(level=0), mode="r")
        super().__init__(pixels, series.axes, colour, tiff_pixel_size(self._tif), ome_channel_names(self._tif),
                         request, spec, unreadable)

    def close(self) -> None:
        self._tif.close()


class ZarrSource(RegionSource):
    """The full-resolution level of a zipped OME-Zarr image."""

    def __init__(self, path: Path, request: JobRequest, spec: ModelSpec) -> None:
        self._store, image = open_zipped_image(path, request.original_name)
        unreadable = (f"the file '{request.original_name}' is not a readable zipped OME-Zarr image "
                      "(a chunk may be truncated or corrupt)")
        super().__init__(image.pixels, image.axes, False, image.pixel_size_um, image.channel_names,
                         request, spec, unreadable)

    def close(self) -> None:
        self._store.close()


def open_source(path: Path, request: JobRequest, spec: ModelSpec) -> RegionSource:
    """The region source for the upload `request` names, downloaded to `path`."""
    kind = ZarrSource if is_ome_zarr_name(request.original_name) else TiffSource
    return kind(path, request, spec)
