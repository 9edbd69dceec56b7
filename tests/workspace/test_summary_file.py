"""Shared summary files: writers in parallel processes keep each other's keys."""
import json
import os
from pathlib import Path
import subprocess
import sys

from summary_file import merge_summary

TESTS = Path(__file__).resolve().parents[1]
WRITER = """
import sys
from summary_file import merge_summary
for i in range(30):
    merge_summary(sys.argv[1], {sys.argv[2]: i})
"""


def test_parallel_writers_keep_every_key(tmp_path):
    path = tmp_path / 'reports' / 'summary.json'
    merge_summary(path, {'someone_else': 'kept'})
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    writers = [subprocess.Popen([sys.executable, '-c', WRITER, str(path), f'writer_{n}'],
                                env=env) for n in range(4)]
    assert [w.wait(timeout=60) for w in writers] == [0] * 4
    assert json.loads(path.read_text()) == {'someone_else': 'kept',
                                            **{f'writer_{n}': 29 for n in range(4)}}
    assert [p.name for p in path.parent.iterdir()] == ['summary.json']   # no temporary left


def test_objects_are_merged_one_level(tmp_path):
    path = tmp_path / 'summary.json'
    merge_summary(path, {'malformed_classes': {'tactile': 20, 'camera': 3}, 'crashes': 0})
    merged = merge_summary(path, {'malformed_classes': {'camera': 22}, 'crashes': 1})
    assert merged == {'malformed_classes': {'tactile': 20, 'camera': 22}, 'crashes': 1}
