"""
Camera frames: memory and time of ingestion's per-frame path, by frame size.

One frame through what the ingestion node does with a sensor_msgs/Image (decode to float RGB,
health checks, area resize to the model's frame size, in `WindowAssembler.push`), measured
in-process: peak memory traced by tracemalloc (numpy's buffers included) as a ratio to the
message's own bytes, and the median time of a push.

    softmaint-bench-frames [--repeats 5] [--json frames.json]
"""
import argparse
import json
from pathlib import Path
import statistics
import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
from softmaint_core.image import ENCODINGS
from softmaint_core.messages import read_image
from softmaint_core.spec import FIELD_SPEC
from softmaint_core.window import WindowAssembler

# (name, width, height): common camera sizes, one not a multiple of the model's 32 px frame,
# and the largest frame ingestion accepts (image.MAX_IMAGE_PIXELS).
SIZES = (('VGA', 640, 480), ('HD', 1280, 720), ('odd', 1283, 967), ('4K', 3840, 2160),
         ('16MP', 4096, 4096))
BENCH_ENCODINGS = ('rgb8', 'mono8')


def frame_message(encoding: str, width: int, height: int, seed: int = 0) -> SimpleNamespace:
    """Return a random frame with the fields of a sensor_msgs/Image."""
    dtype, channels, _ = ENCODINGS[encoding]
    data = np.random.default_rng(seed).integers(0, 256, height * width * channels, dtype=dtype)
    return SimpleNamespace(encoding=encoding, width=width, height=height, is_bigendian=False,
                           step=width * channels * np.dtype(dtype).itemsize, data=data.tobytes())


def push_frame(assembler: WindowAssembler, msg, stamp: float) -> None:
    """Decode, check and store one frame as the ingestion node does; raise if it is refused."""
    error = assembler.push('camera', stamp, read_image(msg), now=stamp)
    if error is not None:
        raise RuntimeError(f'the benchmark frame was refused ({error.reason}): {error}')


def measure(encoding: str, width: int, height: int, repeats: int) -> dict:
    """Peak traced memory of one push, and the median time of `repeats` pushes."""
    msg = frame_message(encoding, width, height)
    assembler = WindowAssembler(FIELD_SPEC)
    tracemalloc.start()
    push_frame(assembler, msg, 0.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for i in range(repeats):
        msg = frame_message(encoding, width, height, seed=i + 1)  # a frozen frame is refused
        start = time.perf_counter()
        push_frame(assembler, msg, 0.2 * (i + 1))
        times.append(time.perf_counter() - start)
    return {'encoding': encoding, 'width': width, 'height': height,
            'message_mib': len(msg.data) / 2 ** 20, 'peak_mib': peak / 2 ** 20,
            'peak_to_message': peak / len(msg.data), 'push_ms': 1e3 * statistics.median(times)}


def main(argv=None) -> int:
    """Print the table (and optionally write JSON) of every size and encoding."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=5, help='timed pushes per size')
    parser.add_argument('--json', type=Path, help='also write every number to this JSON file')
    args = parser.parse_args(argv)
    rows = []
    print(f'{"frame":>5} {"size":>9} {"encoding":>8} {"message":>10} {"peak":>10} '
          f'{"peak/message":>12} {"push":>9}')
    for name, width, height in SIZES:
        for encoding in BENCH_ENCODINGS:
            row = dict(measure(encoding, width, height, args.repeats), frame=name)
            rows.append(row)
            print(f'{name:>5} {width:>4}x{height:<4} {encoding:>8} {row["message_mib"]:>6.1f} MiB '
                  f'{row["peak_mib"]:>6.1f} MiB {row["peak_to_message"]:>11.1f}x '
                  f'{row["push_ms"]:>6.1f} ms', flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + '\n')
    return 0
