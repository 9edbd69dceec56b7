"""The committed default model loads in onnxruntime with its metadata and gives valid output."""
import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from softmaint_core.metadata import check_onnx_io, load_verified
from softmaint_core.postprocess import postprocess
from softmaint_core.spec import FIELD_SPEC, MODALITIES, OUTPUTS

MODEL = Path(__file__).resolve().parents[2] / 'models' / 'student.onnx'


@pytest.fixture(scope='module')
def committed():
    assert MODEL.is_file(), f'{MODEL} is missing: run softmaint-train reproduce'
    meta = load_verified(MODEL)                     # checks the SHA-256 too
    sess = ort.InferenceSession(str(MODEL), providers=['CPUExecutionProvider'])
    check_onnx_io([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()],
                  meta)
    return meta, sess


def test_model_is_small_and_metadata_complete(committed):
    meta, _ = committed
    assert MODEL.stat().st_size < 5_000_000
    assert meta.members >= 3
    assert meta.input_spec.spec_id == FIELD_SPEC.with_normalisation({
        m.name: (m.mean, m.std) for m in meta.input_spec.modalities}).spec_id
    for m in meta.input_spec.modalities:
        assert len(m.mean) == m.channels and all(s > 0 for s in m.std)
    assert meta.conformal_alpha == pytest.approx(0.1)
    assert 0 < meta.conformal_damage <= 1 and 0 < meta.conformal_fatigue <= 1
    assert 'test.damage.macro_f1' in meta.metrics and 'parity_max_abs_diff' in meta.metrics
    assert len(meta.dataset_card_sha256) == 64
    assert meta.training_config['student']['members'] == meta.members


def test_every_mask_gives_a_valid_calibrated_prediction(committed):
    meta, sess = committed
    rng = np.random.default_rng(0)
    for mask in itertools.product([False, True], repeat=len(MODALITIES)):
        if not any(mask):
            continue
        feeds = {m.name: rng.standard_normal((2,) + m.shape).astype(np.float32)
                 * float(ok) for m, ok in zip(meta.input_spec.modalities, mask)}
        feeds['mask'] = np.tile(np.asarray(mask, np.float32), (2, 1))
        outputs = dict(zip(OUTPUTS, sess.run(list(OUTPUTS), feeds)))
        assert outputs['damage_logits'].shape == (2, meta.members, 5)
        pred = postprocess(outputs, mask, meta)
        assert pred.damage_probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert pred.fatigue_probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= pred.urgency <= 1.0 and 0.0 <= pred.uncertainty <= 1.0
        assert len(pred.damage_set) >= 1 and len(pred.fatigue_set) >= 1
        assert set(pred.reconstructed) == {n for n, ok in zip(MODALITIES, mask) if not ok}
        assert all(v.shape == (meta.input_spec.embedding,) for v in pred.reconstructed.values())


def test_committed_checkpoint_rebuilds_the_committed_graph(committed):
    # the torch checkpoint beside the ONNX file must still load with today's code (configs of
    # older models lack newer switches, whose defaults are the old behaviour) and give the
    # same outputs as the graph
    from softmaint_train.export import check_parity
    from softmaint_train.train import load_checkpoint
    student, ckpt = load_checkpoint(MODEL.with_suffix('.pt'))
    assert ckpt['kind'] == 'student'
    assert check_parity(student, MODEL) < 1e-4


def test_shipped_config_is_the_one_the_committed_model_was_trained_with():
    """`softmaint-train reproduce --config config/train/shipped.yaml` rebuilds models/."""
    from dataclasses import asdict
    import json

    from softmaint_train.config import config_from_dict, load_config
    recorded = json.loads(MODEL.with_suffix('.json').read_text())['training_config']
    shipped = load_config(MODEL.parents[1] / 'config' / 'train' / 'shipped.yaml')
    assert asdict(shipped) == asdict(config_from_dict(recorded))
