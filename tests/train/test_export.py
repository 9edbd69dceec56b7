"""ONNX export: contract, parity (and its failure on a perturbed model), metadata, signature."""
import json

import numpy as np
import onnx
import pytest
from softmaint_core.metadata import load_verified, MetadataError
from softmaint_core.postprocess import postprocess
from softmaint_core.spec import FIELD_SPEC, MODALITIES, OUTPUTS
from softmaint_train.config import TrainConfig
from softmaint_core.signing import sign_export
from softmaint_train.export import (all_masks, check_parity, example_inputs, export_onnx,
                                    ParityError, session, write_metadata)
from softmaint_train.checkpoints import build_student
import torch

CALIB = {'temperature_fatigue': 1.3, 'temperature_damage': 0.9, 'conformal_alpha': 0.1,
         'conformal_fatigue': 0.7, 'conformal_damage': 0.8}
STATS = {'camera': ([0.4, 0.5, 0.6], [0.2, 0.2, 0.2]), 'tactile': ([0.0] * 8, [1.0] * 8),
         'proprio': ([1.0] * 8, [0.3] * 8), 'environment': ([20, 50, 400, 1013], [3, 10, 50, 5])}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    torch.manual_seed(0)
    student = build_student(TrainConfig()).eval()
    path = export_onnx(student, tmp_path_factory.mktemp('onnx') / 'student.onnx')
    return student, path


def test_graph_follows_the_contract(exported):
    _, path = exported
    model = onnx.load(str(path))
    inputs = {i.name: i for i in model.graph.input}
    assert set(inputs) == set(MODALITIES) | {'mask'}
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    cam = inputs['camera'].type.tensor_type.shape.dim
    assert cam[0].dim_param == 'batch'
    assert [d.dim_value for d in cam[1:]] == list(FIELD_SPEC.modality('camera').shape)
    sess = session(path)
    out = sess.run(None, example_inputs(7))
    assert out[0].shape == (7, 3, 3) and out[1].shape == (7, 3, 5)
    assert out[2].shape == (7, 3) and out[3].shape == (7, 3, 4, FIELD_SPEC.embedding)


def test_parity_holds_for_every_mask(exported):
    student, path = exported
    assert check_parity(student, path) < 1e-4
    out = session(path).run(None, example_inputs(16, masks=all_masks()))
    assert all(np.isfinite(o).all() for o in out)


def test_parity_fails_on_a_perturbed_model(exported):
    student, path = exported
    perturbed = build_student(TrainConfig()).eval()
    perturbed.load_state_dict(student.state_dict())
    with torch.no_grad():
        perturbed.members[1].heads.damage.bias.add_(1e-2)
    with pytest.raises(ParityError, match='damage_logits'):
        check_parity(perturbed, path)


def test_metadata_hash_and_postprocess(exported, tmp_path):
    _, path = exported
    copy = tmp_path / 'student.onnx'
    copy.write_bytes(path.read_bytes())
    meta = write_metadata(copy, 'student-test', STATS, 3, CALIB, {'test.damage.macro_f1': 0.5},
                          'ab' * 32, TrainConfig().__dict__ and {'seed': 0})
    loaded = load_verified(copy)
    assert loaded.sha256 == meta.sha256
    assert loaded.temperature_damage == pytest.approx(0.9)
    assert loaded.input_spec.modality('camera').mean == (0.4, 0.5, 0.6)
    assert loaded.input_spec.spec_id == FIELD_SPEC.with_normalisation(STATS).spec_id
    feeds = example_inputs(1, masks=[[1, 0, 1, 1]])
    outputs = dict(zip(OUTPUTS, session(copy).run(None, feeds)))
    pred = postprocess(outputs, [True, False, True, True], loaded)
    assert pred.damage_probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert set(pred.reconstructed) == {'tactile'}
    # a modified file no longer matches its metadata
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(MetadataError, match='SHA-256'):
        load_verified(copy)
    # and a metadata file with a broken field is refused
    bad = json.loads(copy.with_suffix('.json').read_text())
    bad['members'] = 0
    copy.with_suffix('.json').write_text(json.dumps(bad))
    with pytest.raises(MetadataError):
        load_verified(copy)


def test_export_is_signed_with_a_key_and_unsigned_without(exported, tmp_path, signing_keys):
    from softmaint_core.signing import (load_private_key, load_public_key, signature_path,
                                        UnsignedModelError, verify_model)
    _, path = exported
    copy = tmp_path / 'student.onnx'
    copy.write_bytes(path.read_bytes())
    write_metadata(copy, 'student-test', STATS, 3, CALIB, {}, 'ab' * 32, {'seed': 0})
    public = load_public_key(signing_keys.public)
    assert sign_export(copy, load_private_key(signing_keys.private)) == verify_model(copy, public)
    # re-exported without a key: the old signature goes, the model reads as unsigned
    assert sign_export(copy, None) is None
    assert not signature_path(copy).exists()
    with pytest.raises(UnsignedModelError, match='sign it with softmaint-sign sign'):
        verify_model(copy, public)
