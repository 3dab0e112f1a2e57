"""Training targets of NuclearSegmentation, computed from instance labels."""

import numpy as np
from scipy import ndimage


def foreground(labels: np.ndarray) -> np.ndarray:
    """Float32 (H, W): 1 inside any nucleus, 0 on background."""
    return (labels > 0).astype(np.float32)


def inner_distance(labels: np.ndarray) -> np.ndarray:
    """Float32 (H, W): per nucleus, the distance to its own outline scaled to (0, 1].

    Each nucleus is measured alone, so a touching neighbour counts as outside:
    the map peaks at 1 in every nucleus centre and dips to the floor at every
    contact line, which is what lets the watershed split touching nuclei.
    Background is 0.
    """
    distance = np.zeros(labels.shape, np.float32)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        own = labels[box] == index
        # padding makes the image border count as outside too
        own_distance = ndimage.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]
        distance[box][own] = own_distance[own] / own_distance.max()
    return distance
