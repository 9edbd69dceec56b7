"""softmaint-bench-frames: every size and encoding measured, and a refused frame stops it."""
import json
import subprocess

import pytest
from softmaint_bench.frames import BENCH_ENCODINGS, frame_message, push_frame, SIZES
from softmaint_core.spec import FIELD_SPEC
from softmaint_core.window import WindowAssembler


def test_the_command_measures_every_size_and_encoding(tmp_path):
    out = tmp_path / 'frames.json'
    result = subprocess.run(['softmaint-bench-frames', '--repeats', '1', '--json', str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [(r['frame'], r['encoding']) for r in rows] == \
        [(name, enc) for name, _, _ in SIZES for enc in BENCH_ENCODINGS]
    for row in rows:
        # The float32 copy of the frame (4 bytes per 8-bit sample; mono's RGB is a view) is
        # traced: a peak below it would mean the measurement misses numpy's buffers.
        assert row['peak_to_message'] >= 4.0 and row['push_ms'] > 0.0
    assert result.stdout.count('MiB') == 2 * len(rows)


def test_a_refused_frame_is_an_error_not_a_number():
    assembler = WindowAssembler(FIELD_SPEC)
    msg = frame_message('rgb8', 64, 48)
    push_frame(assembler, msg, 1.0)
    with pytest.raises(RuntimeError, match='duplicate_stamp'):
        push_frame(assembler, frame_message('rgb8', 64, 48, seed=1), 1.0)
