"""OME-Zarr (NGFF 0.4 and 0.5): a zipped image read lazily, and labels written as a multiscale labels image.

Reading goes through zarr's ZipStore and ome-zarr-models (which validates the
metadata); writing through ome-zarr-py, which builds the pyramid with dask chunk
by chunk from the on-disk label array.
"""

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import dask.array
import ome_zarr_models
import zarr
import zarr.storage
from ome_zarr.writer import write_labels
from ome_zarr_models.v04.image import Image as ImageV04
from ome_zarr_models.v05.image import Image as ImageV05

from consumers.errors import JobInputError
from consumers.processing.messages import dimensions

LABELS_NAME = "nuclei"  # the labels image: <stem>_labels.ome.zarr/labels/nuclei
PYRAMID_SMALLEST = 1024  # px: a labels pyramid halves until its longest side is at most this
CHUNK = 512  # px: the labels' chunks at every level
MAX_CHUNK_BYTES = 256 * 1024**2  # a chunk is decoded whole: larger ones are refused
_METADATA_FILES = ("zarr.json", ".zattrs")
# µm per unit of the UDUNITS length names NGFF uses
_MICROMETRES = {"nanometer": 1e-3, "micrometer": 1.0, "millimeter": 1e3, "centimeter": 1e4, "meter": 1e6}


@dataclass(frozen=True)
class ZarrImage:
    """The full-resolution level of an OME-Zarr image.

    pixels: the lazily read array; axes: its axes' names (lowercase NGFF names:
    t, c, z, y, x); pixel_size_um: µm per pixel along x, if the metadata says;
    channel_names: the omero channel labels as given (the source keeps them only if one per channel).
    """

    pixels: zarr.Array
    axes: str
    pixel_size_um: float | None
    channel_names: tuple[str, ...]


def open_zipped_image(path: Path, name: str) -> tuple[zarr.storage.ZipStore, ZarrImage]:
    """Open the zipped OME-Zarr image at `path` (uploaded as `name`); the caller closes the store.

    The zip's root is the image's group, or a single top folder is (a zipped `.zarr` folder).
    Raises JobInputError for anything else, invalid metadata, and planes in z or t.
    """
    unreadable = f"the file '{name}' is not a readable zipped OME-Zarr image"
    try:
        with zipfile.ZipFile(path) as archive:
            root = _root(archive.namelist())
    except zipfile.BadZipFile:
        raise JobInputError(f"{unreadable} (it may be truncated or corrupt)") from None
    if root is None:
        raise JobInputError(f"{unreadable}: it holds no Zarr group")
    store = zarr.storage.ZipStore(path, mode="r")
    try:
        group = zarr.open_group(store, mode="r", path=root)
        try:
            model = ome_zarr_models.open_ome_zarr(group)
        except Exception as error:
            raise JobInputError(f"{unreadable}: {_first_line(error)}") from None
        if not isinstance(model, ImageV04 | ImageV05):
            raise JobInputError(f"{unreadable}: it is an OME-Zarr {type(model).__name__}, not an image")
        return store, _image(group, model, name)
    except BaseException:
        store.close()
        raise


def _root(names: list[str]) -> str | None:
    """The shallowest folder of the zip holding Zarr group metadata ('' for the zip's root)."""
    folders = [str(PurePosixPath(member).parent) for member in names if PurePosixPath(member).name in _METADATA_FILES]
    folders = ["" if folder == "." else folder for folder in folders]
    return min(folders, key=lambda folder: (folder.count("/") + bool(folder), folder), default=None)


def _image(group: zarr.Group, model: ImageV04 | ImageV05, name: str) -> ZarrImage:
    multiscale = model.ome_attributes.multiscales[0]
    axes = "".join(axis.name.lower() for axis in multiscale.axes)
    level = multiscale.datasets[0]
    pixels = group[level.path]
    if not {"y", "x"} <= set(axes) or len(axes) != pixels.ndim or set(axes) - set("tczyx"):
        raise JobInputError(f"the OME-Zarr image '{name}' has axes '{axes}'; it needs y and x, and only "
                            "t, c, z besides")
    if pixels.dtype.kind not in "buif":
        raise JobInputError(f"the OME-Zarr image '{name}' holds {pixels.dtype} pixels; only integer and real "
                            "pixel values are supported")
    planes = {axis: size for axis, size in zip(axes, pixels.shape) if axis in "tz" and size > 1}
    if planes:
        found = ", ".join(f"{size} along {axis}" for axis, size in planes.items())
        raise JobInputError(f"the OME-Zarr image '{name}' has planes ({found}); only 2-D images (with "
                            "channels) are supported: export one plane")
    if math.prod(pixels.chunks) * pixels.dtype.itemsize > MAX_CHUNK_BYTES:
        raise JobInputError(f"the OME-Zarr image '{name}' has chunks of {dimensions(pixels.chunks)}; "
                            f"at most {MAX_CHUNK_BYTES // 1024**2} MiB per chunk are supported: rechunk it")
    x = axes.index("x")
    scale = next((t.scale[x] for t in level.coordinateTransformations if t.type == "scale"), None)
    unit = _MICROMETRES.get(multiscale.axes[x].unit or "")
    pixel_size = scale * unit if scale and unit else None
    return ZarrImage(pixels, axes, pixel_size, _channel_names(group))


def _channel_names(group: zarr.Group) -> tuple[str, ...]:
    attributes = group.attrs.asdict()
    omero = attributes.get("ome", attributes).get("omero") or {}
    return tuple(str(channel.get("label") or "").strip() for channel in omero.get("channels") or ())


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def write_label_pyramid(labels: zarr.Array, folder: Path, pixel_size_um: float | None) -> None:
    """Write 2-D `labels` as the OME-Zarr (0.5) labels image `folder`/labels/nuclei: full size, then
    halved (nearest) until the longest side is at most `PYRAMID_SMALLEST`, in `CHUNK`² chunks."""
    levels = max(0, math.ceil(math.log2(max(labels.shape) / PYRAMID_SMALLEST)))
    size = pixel_size_um or 1.0
    units = {"y": "micrometer", "x": "micrometer"} if pixel_size_um else None
    root = zarr.open_group(folder, mode="w")
    write_labels(dask.array.from_zarr(labels), root, name=LABELS_NAME, scaler=None,
                 scale_factors=[2**level for level in range(1, levels + 1)], axes="yx",
                 scale={"y": size, "x": size}, axes_units=units, storage_options={"chunks": (CHUNK, CHUNK)})
