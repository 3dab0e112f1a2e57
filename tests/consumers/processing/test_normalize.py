"""normalize: each channel scaled to [0, 1] between its 1st and 99.8th percentiles."""

import numpy as np
import pytest

from consumers.processing.normalize import HIGH_PERCENTILE, LOW_PERCENTILE, normalize


def test_percentiles_map_to_0_and_1_and_values_between_scale_linearly():
    ramp = np.arange(10_000, dtype=np.uint16).reshape(100, 100, 1)
    low, high = np.percentile(ramp, [LOW_PERCENTILE, HIGH_PERCENTILE])
    out = normalize(ramp)
    assert out.dtype == np.float32 and out.shape == ramp.shape
    assert (LOW_PERCENTILE, HIGH_PERCENTILE) == (1.0, 99.8)
    np.testing.assert_allclose(out[..., 0], np.clip((ramp[..., 0] - low) / (high - low), 0, 1), atol=1e-6)
    assert (out[ramp < low] == 0).all() and (out[ramp > high] == 1).all()
    assert 0 < out[50, 0, 0] < 1


def test_hot_pixels_and_a_dim_background_do_not_dominate():
    rng = np.random.default_rng(0)
    image = rng.normal(1000, 50, (128, 128, 1))
    image[:2, :2] = 60_000  # 4 hot pixels: far fewer than the top 0.2 %
    out = normalize(image)
    assert out[:2, :2].min() == 1
    assert 0.4 < np.median(out) < 0.6  # the cells' range spreads over [0, 1], not squashed near 0


def test_each_channel_is_scaled_on_its_own():
    rng = np.random.default_rng(1)
    image = np.stack([rng.uniform(0, 10, (64, 64)), rng.uniform(0, 50_000, (64, 64))], axis=-1)
    out = normalize(image)
    for channel in range(2):
        assert out[..., channel].min() == 0 and out[..., channel].max() == 1
        np.testing.assert_allclose(out[..., channel], normalize(image[..., channel:channel + 1])[..., 0])


@pytest.mark.parametrize("value", [0, 7, 65535])
def test_a_flat_channel_maps_to_zero_without_dividing_by_zero(value):
    image = np.stack([np.full((32, 32), value, np.uint16), np.arange(1024, dtype=np.uint16).reshape(32, 32)],
                     axis=-1)
    with np.errstate(all="raise"):
        out = normalize(image)
    assert (out[..., 0] == 0).all() and np.isfinite(out).all()
    assert out[..., 1].max() == 1


def test_only_h_w_c_images_are_accepted():
    with pytest.raises(ValueError, match="expected an"):
        normalize(np.zeros((32, 32)))
