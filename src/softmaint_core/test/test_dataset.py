"""Dataset layout: atomic shards, resumable listing, memory-mapped gathering across shards."""
import json

import numpy as np
import pytest
from softmaint_core import dataset


def _shard(start, n):
    return {'episode': np.arange(start, start + n), 'urgency': np.linspace(0, 1, n),
            'field_camera': np.full((n, 2, 3, 4, 4), start, dtype=np.uint8)}


def test_shards_are_gathered_across_boundaries(tmp_path):
    (tmp_path / dataset.CARD).write_text(json.dumps({'episodes': 7}))
    dataset.write_shard(tmp_path, 0, _shard(0, 4))
    dataset.write_shard(tmp_path, 1, _shard(4, 3))
    data = dataset.Dataset(tmp_path)
    assert len(data) == 7
    assert data.take('episode', [6, 0, 4, 3]).tolist() == [6, 0, 4, 3]
    camera = data.take('field_camera', np.array([3, 4]))
    assert camera.shape == (2, 2, 3, 4, 4) and camera[0].max() == 0 and camera[1].min() == 4
    assert data.array('episode').tolist() == list(range(7))
    with pytest.raises(IndexError):
        data.take('episode', [7])
    with pytest.raises(dataset.DatasetError, match="array 'fatigue' missing"):
        data.take('fatigue', [0])


def test_partial_shards_are_invisible_and_removable(tmp_path):
    dataset.write_shard(tmp_path, 0, _shard(0, 2))
    partial = tmp_path / dataset.SHARDS / '.tmp-shard-00001-999'
    partial.mkdir()
    (partial / 'episode.npy').write_bytes(b'truncated')
    assert dataset.completed_shards(tmp_path) == [0]
    assert dataset.remove_partial_shards(tmp_path) == 1
    assert not partial.exists()


def test_unequal_lengths_and_missing_card_are_refused(tmp_path):
    with pytest.raises(dataset.DatasetError, match='differ in length'):
        dataset.write_shard(tmp_path, 0, {'episode': np.arange(3), 'urgency': np.zeros(2)})
    assert dataset.completed_shards(tmp_path) == []
    with pytest.raises(dataset.DatasetError, match='generate the dataset first'):
        dataset.Dataset(tmp_path)


def test_rewriting_a_finished_shard_keeps_the_first_copy(tmp_path):
    dataset.write_shard(tmp_path, 0, _shard(0, 2))
    dataset.write_shard(tmp_path, 0, _shard(10, 2))
    (tmp_path / dataset.CARD).write_text('{}')
    assert dataset.Dataset(tmp_path).array('episode').tolist() == [0, 1]
