"""Fixtures of the simulator tests: one small generated dataset shared by a session."""
import pytest


@pytest.fixture(scope='session')
def small_dataset(tmp_path_factory):
    """Twelve episodes (seed 3, half field-shifted) in shards of five, generated in-process."""
    from softmaint_sim import dataset_cli
    root = tmp_path_factory.mktemp('sim') / 'data'
    dataset_cli.generate(root, episodes=12, seed=3, workers=1, field_fraction=0.5,
                         shard_size=5, progress=False)
    return root
