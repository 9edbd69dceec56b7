"""Model metadata: JSON round trip, SHA-256 verification, ONNX I/O check, clear errors."""
import json

import pytest
from softmaint_core.metadata import (check_onnx_io, load_verified, MetadataError, ModelMetadata,
                                     sha256_file)
from softmaint_core.spec import FIELD_SPEC, OUTPUTS


def _write_model(tmp_path, content=b'onnx bytes'):
    model = tmp_path / 'student.onnx'
    model.write_bytes(content)
    meta = ModelMetadata(model_id='student-test', sha256=sha256_file(model),
                         input_spec=FIELD_SPEC, members=3, temperature_damage=1.5,
                         metrics={'damage_f1': 0.8})
    (tmp_path / 'student.json').write_text(meta.to_json())
    return model, meta


def _refused(model, data: dict, message: str) -> None:
    """Write `data` as the model's card; loading it must fail with `message`."""
    model.with_suffix('.json').write_text(json.dumps(data))
    with pytest.raises(MetadataError, match=message):
        load_verified(model)


def test_round_trip_and_verification(tmp_path):
    model, meta = _write_model(tmp_path)
    loaded = load_verified(model)
    assert loaded == meta
    assert loaded.input_spec.spec_id == FIELD_SPEC.spec_id


def test_corrupted_model_is_refused(tmp_path):
    model, _ = _write_model(tmp_path)
    model.write_bytes(b'onnx bytez')
    with pytest.raises(MetadataError, match='does not match the metadata'):
        load_verified(model)


def test_missing_files_and_bad_fields_say_what_is_wrong(tmp_path):
    with pytest.raises(MetadataError, match='not found'):
        load_verified(tmp_path / 'absent.onnx')
    model, _ = _write_model(tmp_path)
    meta_file = tmp_path / 'student.json'
    data = json.loads(meta_file.read_text())
    data['members'] = 0
    meta_file.write_text(json.dumps(data))
    with pytest.raises(MetadataError, match='members must be >= 1'):
        load_verified(model)
    data['members'], data['format_version'] = 3, 99
    meta_file.write_text(json.dumps(data))
    with pytest.raises(MetadataError, match='re-export'):
        load_verified(model)
    meta_file.write_text('{not json')
    with pytest.raises(MetadataError, match='not valid JSON'):
        load_verified(model)


def test_per_class_thresholds_round_trip_and_are_checked(tmp_path):
    model, meta = _write_model(tmp_path)
    meta_file = tmp_path / 'student.json'
    data = json.loads(meta_file.read_text())
    data['conformal_damage'] = [0.8, 0.7, 0.9, 0.85, 1.0]
    meta_file.write_text(json.dumps(data))
    assert load_verified(model).conformal_damage == (0.8, 0.7, 0.9, 0.85, 1.0)
    for bad, message in (([0.8, 0.7], '2 per-class thresholds for 5 classes'),
                         ([0.8, 0.7, 0.9, 0.85, 1.5], 'q-hat in'), ('0.9', 'q-hat in'),
                         (-0.1, 'q-hat in')):
        _refused(model, {**data, 'conformal_damage': bad}, message)


def test_damage_miss_threshold_round_trips_and_is_checked(tmp_path):
    model, meta = _write_model(tmp_path)
    assert meta.damage_miss_threshold is None            # a model without it: sets unchanged
    meta_file = tmp_path / 'student.json'
    data = json.loads(meta_file.read_text())
    data.update(damage_miss_alpha=0.005, damage_miss_threshold=0.044)
    meta_file.write_text(json.dumps(data))
    assert load_verified(model).damage_miss_threshold == 0.044
    for alpha, threshold, message in ((0.005, None, 'come together'),
                                      (0.0, 0.04, 'damage_miss_alpha must be in'),
                                      (0.005, 1.5, 'damage_miss_threshold')):
        _refused(model, {**data, 'damage_miss_alpha': alpha, 'damage_miss_threshold': threshold},
                 message)


def test_values_that_would_end_the_node_later_are_refused_at_load(tmp_path):
    """An infinite size overflowed int(); a non-string id aborted the process in rclpy's C."""
    model, _ = _write_model(tmp_path)
    meta_file = tmp_path / 'student.json'
    good = json.loads(meta_file.read_text())
    infinite_steps = json.loads(meta_file.read_text())
    infinite_steps['input_spec']['modalities'][0]['steps'] = 1e999        # Infinity in JSON
    for data, message in ((infinite_steps, 'input spec is malformed'),
                          ({**good, 'model_id': 7}, 'model_id must be a non-empty string'),
                          ({**good, 'damage_classes': ['none', 5]}, 'class names must be')):
        _refused(model, data, message)


def test_classes_the_policy_cannot_act_on_are_refused(tmp_path):
    model, _ = _write_model(tmp_path)
    meta_file = tmp_path / 'student.json'
    data = json.loads(meta_file.read_text())
    for change, message in (({'fatigue_classes': ['low', 'medium', 'high', 'severe']},
                             'fatigue classes must be levels'),
                            ({'fatigue_classes': ['low', 'medium']}, 'including medium and high'),
                            ({'damage_classes': ['crack_tear', 'puncture_leak']},
                             "damage classes must include 'none'")):
        _refused(model, {**data, **change}, message)


def test_onnx_io_must_match_the_spec(tmp_path):
    _, meta = _write_model(tmp_path)
    check_onnx_io(list(FIELD_SPEC.names) + ['mask'], OUTPUTS, meta)
    with pytest.raises(MetadataError, match='do not match the input spec'):
        check_onnx_io(['camera', 'mask'], OUTPUTS, meta)
    with pytest.raises(MetadataError, match="lacks outputs \\['urgency'\\]"):
        check_onnx_io(list(FIELD_SPEC.names) + ['mask'],
                      [o for o in OUTPUTS if o != 'urgency'], meta)
