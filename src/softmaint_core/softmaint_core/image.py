"""
sensor_msgs/Image conversion in numpy, for machines without cv_bridge.

Covers the encodings softmaint accepts (rgb8, bgr8, mono8, mono16, 32FC1) with row padding
(`step` > width * pixel size) and either byte order. Output is float32 RGB in [0, 1].
"""
import numpy as np

# encoding -> (dtype, channels, full-scale value)
ENCODINGS = {
    'rgb8': (np.uint8, 3, 255.0),
    'bgr8': (np.uint8, 3, 255.0),
    'mono8': (np.uint8, 1, 255.0),
    'mono16': (np.uint16, 1, 65535.0),
    '32FC1': (np.float32, 1, 1.0),
}


class ImageError(ValueError):
    """An image message that cannot be converted; the text says why."""


def image_to_array(encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                   data) -> np.ndarray:
    """Return the image as a native-order array [height, width, channels] of its own dtype."""
    if encoding not in ENCODINGS:
        raise ImageError(f'unsupported encoding {encoding!r}; use one of {sorted(ENCODINGS)}')
    dtype, channels, _ = ENCODINGS[encoding]
    if height < 1 or width < 1:
        raise ImageError(f'empty image {width}x{height}')
    pixel = np.dtype(dtype).itemsize * channels
    if step < width * pixel:
        raise ImageError(f'step {step} < width {width} x {pixel} bytes per pixel')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageError(f'data has {buffer.size} bytes, expected step {step} x height {height}')
    rows = buffer.reshape(height, step)[:, :width * pixel]
    order = '>' if is_bigendian else '<'
    typed = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order))
    return typed.reshape(height, width, channels).astype(np.dtype(dtype).newbyteorder('='))


def to_rgb_float(image: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an image_to_array result to float32 RGB [h, w, 3] in [0, 1]."""
    _, _, full_scale = ENCODINGS[encoding]
    rgb = image.astype(np.float32) / full_scale
    if encoding == 'bgr8':
        rgb = rgb[..., ::-1]
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    if not np.isfinite(rgb).all():
        raise ImageError('image holds NaN or inf')
    return np.clip(rgb, 0.0, 1.0)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """
    Downsample [h, w, c] by averaging over the source pixels each target pixel covers.

    Exact area averaging for integer factors; for other sizes each target pixel averages the
    block of source pixels whose centres fall in it. Upsampling repeats nearest pixels.
    """
    src_h, src_w = image.shape[:2]
    rows = (np.arange(src_h) * height) // src_h
    cols = (np.arange(src_w) * width) // src_w
    summed = np.zeros((height, width) + image.shape[2:], dtype=np.float64)
    np.add.at(summed, (rows[:, None], cols[None, :]), image)
    counts = np.bincount(rows, minlength=height)[:, None] * np.bincount(cols, minlength=width)
    if (counts == 0).any():  # upsampling: fill from the nearest source pixel
        return image[(np.arange(height) * src_h) // height][:, (np.arange(width) * src_w) // width]
    counts = counts.reshape(counts.shape + (1,) * (image.ndim - 2))
    return (summed / counts).astype(np.float32)
