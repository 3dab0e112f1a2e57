"""What an OME-TIFF's OME-XML says about its first image: the Pixels element and its channels' names."""

import xml.etree.ElementTree as ElementTree

import tifffile


def ome_pixels(tif: tifffile.TiffFile) -> ElementTree.Element | None:
    """The first image's `Pixels` element of an OME-TIFF; None if the file has no (parseable) OME-XML."""
    if not tif.is_ome or not tif.ome_metadata:
        return None
    try:
        root = ElementTree.fromstring(tif.ome_metadata)
    except ElementTree.ParseError:
        return None
    return next((element for element in root.iter() if element.tag.endswith("}Pixels")), None)


def ome_channel_names(tif: tifffile.TiffFile) -> tuple[str, ...] | None:
    """The channels' names an OME-TIFF declares (Channel/@Name, in order, blank where unnamed); None without OME-XML."""
    pixels = ome_pixels(tif)
    if pixels is None:
        return None
    names = tuple((channel.get("Name") or "").strip()
                  for channel in pixels if channel.tag.endswith("}Channel"))
    return names
