"""Shared result files that several tests and benchmarks write keys into (read-merge-write)."""
import fcntl
import json
import os
from pathlib import Path
import tempfile

REPO = Path(__file__).resolve().parents[1]
RELIABILITY_SUMMARY = REPO / 'docs' / 'reports' / 'reliability' / 'summary.json'


def merge_summary(path: Path, values: dict) -> dict:
    """
    Set `values` in the JSON object at path, keeping every other writer's keys; return it all.

    A value that is an object is merged into the object already there (one level), so writers
    can each fill their own keys of it (malformed_classes: input -> count). Writers in other
    processes are serialised by a lock on the folder (no lock file left behind), and the file
    is replaced atomically, so a reader never sees half of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        merged = json.loads(path.read_text()) if path.is_file() else {}
        for key, value in values.items():
            old = merged.get(key)
            merged[key] = {**old, **value} if isinstance(old, dict) and isinstance(
                value, dict) else value
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
        with os.fdopen(fd, 'w') as stream:
            stream.write(json.dumps(merged, indent=2, sort_keys=True) + '\n')
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        return merged
    finally:
        os.close(folder)      # releases the lock
