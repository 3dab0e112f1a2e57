"""Blocks of a large image: cores tile it, and each nucleus is kept by exactly one block."""

import numpy as np

from consumers.processing.blocks import Block, blocks, merge, owned


def test_cores_tile_the_image_and_crops_add_the_halo():
    plan = list(blocks((250, 130), 100, 20))
    assert len(plan) == 6
    covered = np.zeros((250, 130), int)
    for block in plan:
        top, bottom, left, right = block.core
        covered[top:bottom, left:right] += 1
    assert (covered == 1).all()
    assert plan[3] == Block((100, 200, 100, 130), (80, 220, 80, 130))


def test_a_nucleus_cut_by_a_block_edge_is_kept_by_the_block_holding_its_centroid():
    image = np.zeros((40, 80), np.int32)
    image[10:20, 36:48] = 1  # centroid column 41.5: right of the edge at 40
    left, right = Block((0, 40, 0, 40), (0, 40, 0, 60)), Block((0, 40, 40, 80), (0, 40, 20, 80))
    assert not owned(image[left.slices], left).any()
    assert (owned(image[right.slices], right) == image[right.slices]).all()


def test_merge_numbers_from_the_offset_and_the_first_written_keeps_its_pixels():
    existing = np.zeros((4, 4), np.uint32)
    existing[0, 0] = 7
    labels = np.array([[3, 3, 0, 0], [0, 0, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]])
    merged, offset = merge(existing, labels, 10)
    assert offset == 12
    assert merged[0, 0] == 7 and merged[0, 1] == 11 and (merged[2:, 2:] == 12).all()
