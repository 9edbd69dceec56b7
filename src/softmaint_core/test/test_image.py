"""Image conversion: every encoding, row padding and byte order; clear errors; area resize; SNR."""
from types import SimpleNamespace

import numpy as np
import pytest
from softmaint_core.image import (array_to_image, ENCODINGS, frame_snr, image_msg_to_rgb,
                                  ImageError, resize_area, to_rgb_float)


def _msg(pixels, encoding, bigendian=False, padding=0):
    step, data = array_to_image(pixels, encoding, bigendian, padding)
    return SimpleNamespace(encoding=encoding, height=pixels.shape[0], width=pixels.shape[1],
                           step=step, is_bigendian=int(bigendian), data=data)


def _expected_rgb(pixels, encoding):
    """Float RGB written out per encoding, independent of the code under test."""
    scale = {'rgb8': 255.0, 'bgr8': 255.0, 'mono8': 255.0, 'mono16': 65535.0, '32FC1': 1.0}
    rgb = pixels.astype(np.float32) / np.float32(scale[encoding])
    if encoding == 'bgr8':
        rgb = rgb[:, :, [2, 1, 0]]
    if rgb.shape[2] == 1:
        rgb = np.concatenate([rgb] * 3, axis=2)
    return np.clip(rgb, 0.0, 1.0)


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('padding', [0, 5])
def test_every_encoding_padding_and_byte_order(encoding, bigendian, padding):
    rng = np.random.default_rng(3)
    dtype, channels, full_scale = ENCODINGS[encoding]
    if encoding == '32FC1':   # include out-of-range values: clipped to [0, 1]
        pixels = rng.uniform(-0.2, 1.2, (6, 7, 1)).astype(np.float32)
    else:
        pixels = rng.integers(0, int(full_scale) + 1, (6, 7, channels)).astype(dtype)
    msg = _msg(pixels, encoding, bigendian, padding)
    assert msg.step == 7 * channels * np.dtype(dtype).itemsize + padding
    rgb = image_msg_to_rgb(msg)
    assert rgb.dtype == np.float32 and rgb.shape == (6, 7, 3)
    np.testing.assert_array_equal(rgb, _expected_rgb(pixels, encoding))


def test_bgr_and_rgb_of_the_same_scene_agree():
    rgb = np.random.default_rng(4).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    np.testing.assert_array_equal(image_msg_to_rgb(_msg(rgb, 'rgb8')),
                                  image_msg_to_rgb(_msg(rgb[:, :, ::-1], 'bgr8')))


def test_single_channel_arrays_without_channel_axis_convert_alike():
    """cv_bridge returns mono images as [h, w]; the numpy path as [h, w, 1]."""
    mono = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    np.testing.assert_array_equal(to_rgb_float(mono, 'mono16'),
                                  to_rgb_float(mono[..., None], 'mono16'))


@pytest.mark.parametrize('change, reason, text', [
    ({'encoding': 'rgba8'}, 'encoding', "unsupported encoding 'rgba8'"),
    ({'height': 0}, 'empty', 'empty image'),
    ({'step': 20}, 'size', 'step 20 < width 8 x 3'),
    ({'data': bytes(10)}, 'size', 'data has 10 bytes, expected step 24 x height 4'),
    ({'width': 9}, 'size', 'step 24 < width 9'),
])
def test_bad_messages_raise_a_clear_error_with_its_kind(change, reason, text):
    msg = _msg(np.zeros((4, 8, 3), np.uint8), 'rgb8')
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageError, match=text) as err:
        image_msg_to_rgb(msg)
    assert err.value.reason == reason


def test_non_finite_float_images_are_refused():
    pixels = np.full((2, 3, 1), 0.5, np.float32)
    pixels[1, 2] = np.nan
    with pytest.raises(ImageError, match='NaN or inf') as err:
        image_msg_to_rgb(_msg(pixels, '32FC1'))
    assert err.value.reason == 'non_finite'
    with pytest.raises(ImageError, match=r'mono8 needs \[h, w, 1\]'):
        array_to_image(np.zeros((2, 2, 3)), 'mono8')


def _reference_resize(image, height, width):
    """Target pixel = mean of the source pixels mapped to it, added one by one (np.add.at)."""
    src_h, src_w = image.shape[:2]
    rows = (np.arange(src_h) * height) // src_h
    cols = (np.arange(src_w) * width) // src_w
    summed = np.zeros((height, width) + image.shape[2:])
    np.add.at(summed, (rows[:, None], cols[None, :]), image)
    counts = np.bincount(rows, minlength=height)[:, None] * np.bincount(cols, minlength=width)
    return (summed / counts[..., None]).astype(np.float32)


@pytest.mark.parametrize('shape', [(64, 64), (480, 640), (75, 100), (33, 47)])
def test_resize_area_averages_the_covered_pixels(shape):
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, shape + (3,)).astype(np.float32) / 255.0
    # 8-bit images: exact sums, so bit-identical to adding pixel by pixel.
    np.testing.assert_array_equal(resize_area(frame, 32, 32), _reference_resize(frame, 32, 32))
    floats = rng.random(shape + (3,)).astype(np.float32)
    np.testing.assert_allclose(resize_area(floats, 32, 32), _reference_resize(floats, 32, 32),
                               rtol=1e-6)
    blocks = resize_area(frame, 1, 1)
    np.testing.assert_allclose(blocks[0, 0], frame.mean(axis=(0, 1), dtype=np.float64),
                               rtol=1e-6)


def test_resize_area_upsamples_by_repeating_nearest_pixels():
    small = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    big = resize_area(small, 4, 6)
    np.testing.assert_array_equal(big, small.repeat(2, axis=0).repeat(2, axis=1))


def _halves(shape, contrast=50.0):
    """Frames [..., H, W]: left half dark, right half bright (one edge a row): std contrast/2."""
    frames = np.full(shape, 100.0)
    frames[..., shape[-1] // 2:] += contrast
    return frames


@pytest.mark.parametrize('sigma, rtol', [(5.0, 0.1), (25.0, 0.1), (100.0, 0.2)])
def test_frame_snr_reads_the_signal_and_noise_it_was_made_of(sigma, rtol):
    scene = _halves((2, 10, 3, 32, 32))      # spatial std 25
    snr = frame_snr(scene + np.random.default_rng(1).normal(0.0, sigma, scene.shape))
    assert snr.shape == (2,)
    np.testing.assert_allclose(snr, 25.0 / sigma, rtol=rtol)


def test_frame_snr_of_blank_dark_saturated_and_noiseless_frames():
    rng = np.random.default_rng(2)
    blank = np.full((10, 3, 32, 32), 17, np.uint8)   # lens cap
    assert frame_snr(blank) == 0.0
    assert frame_snr(blank + rng.normal(0, 3.0, blank.shape)) < 0.2
    # nearly black or saturated 8-bit frames: most neighbour differences are exactly 0, which
    # must not read as a noiseless sharp image (the noise is at least one level)
    for level in (-1.0, 0.0, 255.0, 256.0):
        frames = np.clip(np.rint(level + rng.normal(0, 2.0, blank.shape)), 0, 255)
        assert frame_snr(frames.astype(np.uint8)) < 1.0, level
    assert frame_snr(_halves((10, 3, 32, 32))) == pytest.approx(np.sqrt(25.0 ** 2 - 1.0))
    assert frame_snr(np.zeros((0, 10, 3, 32, 32), np.uint8)).shape == (0,)
