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
# Most pixels a frame may have (a 16-megapixel camera); more is a size field gone wrong.
MAX_IMAGE_PIXELS = 4096 * 4096


class ImageError(ValueError):
    """An image message that cannot be converted; the text says why, `reason` names the kind."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason   # 'encoding', 'size', 'empty', 'too_large' or 'non_finite'


def _layout(encoding: str):
    """(dtype, channels, full scale) of a supported encoding."""
    if encoding not in ENCODINGS:
        raise ImageError(f'unsupported encoding {encoding[:40]!r}; use one of '
                         f'{sorted(ENCODINGS)}', 'encoding')
    return ENCODINGS[encoding]


def check_layout(encoding: str, height: int, width: int, step: int, size: int) -> int:
    """Raise ImageError unless the fields describe `size` bytes of an image; return pixel bytes."""
    dtype, channels, _ = _layout(encoding)
    if height < 1 or width < 1:
        raise ImageError(f'empty image {width}x{height}', 'empty')
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageError(f'{width}x{height} image: more than {MAX_IMAGE_PIXELS} pixels',
                         'too_large')
    pixel = np.dtype(dtype).itemsize * channels
    if step < width * pixel:
        raise ImageError(f'step {step} < width {width} x {pixel} bytes per pixel', 'size')
    if size != step * height:
        raise ImageError(f'data has {size} bytes, expected step {step} x height {height}', 'size')
    return pixel


def image_to_array(encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                   data) -> np.ndarray:
    """Return the image as a native-order array [height, width, channels] of its own dtype."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    pixel = check_layout(encoding, height, width, step, buffer.size)
    dtype, channels, _ = ENCODINGS[encoding]
    rows = buffer.reshape(height, step)[:, :width * pixel]
    order = '>' if is_bigendian else '<'
    typed = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order))
    return typed.reshape(height, width, channels).astype(np.dtype(dtype).newbyteorder('='),
                                                         copy=False)


def to_rgb_float(image: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an image_to_array (or cv_bridge) result to float32 RGB [h, w, 3] in [0, 1]."""
    dtype, _, full_scale = _layout(encoding)
    if image.ndim == 2:   # cv_bridge returns single-channel images without a channel axis
        image = image[..., None]
    rgb = image.astype(np.float32)
    rgb /= np.float32(full_scale)   # in place: one 4-byte copy of a VGA frame, not two
    if not np.issubdtype(dtype, np.integer):   # integers scale into [0, 1]: no scans needed
        if not np.isfinite(rgb).all():
            raise ImageError('image holds NaN or inf', 'non_finite')
        np.clip(rgb, 0.0, 1.0, out=rgb)
    if encoding == 'bgr8':
        return rgb[..., ::-1]
    if rgb.shape[-1] == 1:   # a read-only view: three float copies of a 16 MP frame are 192 MB
        return np.broadcast_to(rgb, rgb.shape[:-1] + (3,))
    return rgb


def image_msg_to_rgb(msg) -> np.ndarray:
    """Float32 RGB [h, w, 3] in [0, 1] of a sensor_msgs/Image (or any object with its fields)."""
    image = image_to_array(msg.encoding, msg.height, msg.width, msg.step,
                           bool(msg.is_bigendian), msg.data)
    return to_rgb_float(image, msg.encoding)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """
    Downsample [h, w, c] by averaging over the source pixels each target pixel covers.

    Exact area averaging for integer factors; for other sizes each target pixel averages the
    block of source pixels whose centres fall in it. Upsampling repeats nearest pixels.
    Sums are taken in float64 (exact for 8-bit images), so the result does not depend on the
    order of summation.
    """
    src_h, src_w = image.shape[:2]
    if src_h < height or src_w < width:  # upsampling: fill from the nearest source pixel
        return image[(np.arange(height) * src_h) // height][:, (np.arange(width) * src_w) // width]
    if src_h % height == 0 and src_w % width == 0:
        return _block_mean(image, src_h // height, src_w // width)
    rows = (np.arange(src_h) * height) // src_h
    cols = (np.arange(src_w) * width) // src_w
    # Source rows (columns) of one target row (column) are contiguous: sum them block-wise.
    row_starts = np.searchsorted(rows, np.arange(height))
    col_starts = np.searchsorted(cols, np.arange(width))
    # Row blocks one at a time: a float64 copy of a whole 16 MP frame would be 384 MB.
    row_ends = np.append(row_starts[1:], src_h)
    summed = np.stack([image[start:end].sum(axis=0, dtype=np.float64)
                       for start, end in zip(row_starts, row_ends)])
    summed = np.add.reduceat(summed, col_starts, axis=1)
    counts = np.bincount(rows, minlength=height)[:, None] * np.bincount(cols, minlength=width)
    counts = counts.reshape(counts.shape + (1,) * (image.ndim - 2))
    return (summed / counts).astype(np.float32)


def _block_mean(image: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean over fy x fx blocks: reshapes instead of reduceat, 3.5x faster on 640x480 -> 32x32."""
    h, w = image.shape[0] // fy, image.shape[1] // fx
    rest = image.shape[2:]
    summed = image.reshape((h, fy, image.shape[1]) + rest).sum(axis=1, dtype=np.float64)
    summed = summed.reshape((h, w, fx) + rest).sum(axis=2)
    return (summed / (fy * fx)).astype(np.float32)


MIN_NOISE_LEVELS = 1.0   # noise floor of frame_snr [8-bit levels]
SNR_CHUNK = 256          # windows per frame_snr pass: bounds its float32 copies (~12 MB each)


def frame_snr(frames: np.ndarray) -> np.ndarray:
    """
    Signal-to-noise ratio of camera windows [..., T, C, H, W] in 8-bit levels: one per window.

    Per frame and channel, the noise sigma is the median absolute deviation of horizontal
    neighbour differences * 1.4826 / sqrt(2) (a difference of two pixels carries sqrt(2) sigma
    of white noise; edges are few, so the median ignores them: the MAD estimator of Donoho and
    Johnstone, Biometrika 1994, on differences instead of wavelet coefficients), but at least
    MIN_NOISE_LEVELS: a camera's read noise is never below one level, and a mostly black or
    saturated frame, whose differences are nearly all 0, is not thereby noiseless. The signal is
    the frame's spatial standard deviation without that noise: sqrt(max(var - sigma^2, 0)).
    The window's figure is the median of signal / sigma over its frames and channels. A uniform,
    black or saturated frame reads 0.
    """
    frames = np.asarray(frames)
    lead = frames.shape[:-4]
    flat = frames.reshape((-1,) + frames.shape[-4:])
    out = np.empty(len(flat))
    for start in range(0, len(flat), SNR_CHUNK):
        x = flat[start:start + SNR_CHUNK].astype(np.float32)
        steps = np.diff(x, axis=-1)
        spread = np.abs(steps - np.median(steps, axis=(-2, -1), keepdims=True))
        sigma = np.maximum(np.median(spread, axis=(-2, -1)) * (1.4826 / np.sqrt(2.0)),
                           MIN_NOISE_LEVELS)
        signal = np.sqrt(np.maximum(x.var(axis=(-2, -1)) - sigma ** 2, 0.0))
        out[start:start + SNR_CHUNK] = np.median((signal / sigma).reshape(len(x), -1), axis=-1)
    return out.reshape(lead)


def array_to_image(image: np.ndarray, encoding: str, is_bigendian: bool = False,
                   padding: int = 0):
    """
    Inverse of image_to_array: (step, data bytes) of an image message in `encoding`.

    `image` is [h, w, channels] (or [h, w] for one channel) of any numeric dtype; values are
    cast to the encoding's dtype; each row gets `padding` zero bytes at its end.
    """
    dtype, channels, _ = _layout(encoding)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise ImageError(f'{encoding} needs [h, w, {channels}], got {image.shape}', 'size')
    typed = image.astype(np.dtype(dtype).newbyteorder('>' if is_bigendian else '<'))
    row_bytes = image.shape[1] * channels * np.dtype(dtype).itemsize
    rows = np.ascontiguousarray(typed).view(np.uint8).reshape(image.shape[0], row_bytes)
    padded = np.zeros((image.shape[0], rows.shape[1] + padding), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return padded.shape[1], padded.tobytes()
