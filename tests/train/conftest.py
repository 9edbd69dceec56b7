"""Fixtures of the offline-tool tests: synthetic datasets (never the simulator) and configs."""
from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import make_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small synthetic dataset shared by the tests of one session."""
    return make_dataset(tmp_path_factory.mktemp('synthetic') / 'data', episodes=60, windows=4)


def tiny_config(root, tmp_path, **changes):
    """A validated config that trains in seconds on a synthetic dataset."""
    from softmaint_train.config import apply_override, config_from_dict
    import yaml
    data = yaml.safe_load((REPO / 'config/train/default.yaml').read_text())
    base = {'data.root': str(root), 'runs_dir': str(tmp_path / 'runs'),
            'export.out': str(tmp_path / 'models/student.onnx'), 'teacher.epochs': 3,
            'teacher.batch_size': 16, 'student.epochs': 4, 'student.batch_size': 16,
            'student.min_labelled_steps': 40, 'student.members': 2}
    for key, value in {**base, **changes}.items():
        apply_override(data, key, value)
    return config_from_dict(data)
