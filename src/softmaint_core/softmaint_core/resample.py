"""
Resampling of irregular, stamped sensor samples onto a window's fixed time grid.

Used by the ingestion node on live messages and by the simulator to build dataset views, so a
model sees the same thing in training and on the robot.
"""
from typing import Tuple

import numpy as np


def bin_to_steps(stamps: np.ndarray, values: np.ndarray, start: float, window: float,
                 steps: int, reduce: str = 'mean') -> Tuple[np.ndarray, np.ndarray]:
    """
    Resample samples to `steps` equal bins covering [start, start + window).

    Each bin takes the mean (or the last) of the samples that fall in it. Bins with no sample
    hold the previous bin's value (the first filled bin's value before it), which is what a
    zero-order-hold sensor reports; `filled` tells which bins really had data.

    Returns (binned [steps, *values.shape[1:]] float32, filled [steps] bool). With no sample in
    the window at all, binned is zeros and filled is all False.
    """
    if reduce not in ('mean', 'last'):
        raise ValueError(f"reduce must be 'mean' or 'last', got {reduce!r}")
    stamps = np.asarray(stamps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float32)
    if stamps.shape[0] != values.shape[0]:
        raise ValueError(f'{stamps.shape[0]} stamps for {values.shape[0]} samples')
    feature_shape = values.shape[1:]
    index = np.floor((stamps - start) * (steps / window)).astype(np.int64)
    inside = (index >= 0) & (index < steps)
    index, values = index[inside], values[inside]
    flat = values.reshape(len(values), -1)
    binned = np.zeros((steps, flat.shape[1]), dtype=np.float64)
    counts = np.bincount(index, minlength=steps)
    filled = counts > 0
    if reduce == 'mean':
        np.add.at(binned, index, flat)
        binned[filled] /= counts[filled, None]
    else:
        binned[index] = flat  # later samples overwrite earlier ones (stamps ascend)
    if filled.any():
        source = np.maximum.accumulate(np.where(filled, np.arange(steps), -1))
        source[source < 0] = np.argmax(filled)
        binned = binned[source]
    return binned.astype(np.float32).reshape((steps,) + feature_shape), filled
