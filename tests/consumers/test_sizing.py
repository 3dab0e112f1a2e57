"""A consumer refuses, at once and saying why, an image its memory or scratch space cannot take."""

import pytest

from consumers import sizing
from consumers.errors import JobInputError
from consumers.settings import ConsumerSettings


def test_the_pixel_limit_follows_the_memory_limit():
    settings = ConsumerSettings(metrics_port=0, max_image_pixels=10**10)
    assert sizing.pixel_limit(settings) == 10**10  # no memory limit known: the setting alone
    limited = ConsumerSettings(metrics_port=0, max_image_pixels=10**10, memory_limit_mib=4096)
    limit = sizing.pixel_limit(limited)
    assert limit == sizing.streamable_pixels(4096) < 10**10
    assert sizing.memory_needed_mib(limit, 0) <= 4096 < sizing.memory_needed_mib(limit + 10**8, 0)
    side = int((limit * 1.1) ** 0.5)
    with pytest.raises(JobInputError) as refused:
        sizing.check_size("slide.tif", side, side, 1, limited)
    assert str(refused.value).endswith("(what a consumer with 4,096 MiB of memory can stream)")
    sizing.check_size("slide.tif", side, side, 1, settings)


def test_an_image_too_big_for_the_scratch_space_is_refused_before_its_download(tmp_path):
    sizing.check_scratch("small.tif", 10**6, 10**6)
    with pytest.raises(JobInputError, match=r"^the image 'slide.tif' \(200 gigapixels\) needs about "
                                            r"700\.0 GB of scratch space; a consumer has [\d.]+ GB free$"):
        sizing.check_scratch("slide.tif", 2 * 10**11, 10**11)  # more than these machines' disks
