"""Input specs: validation names the bad field, JSON round trip, stable ids."""
import hashlib
import json

import pytest
from softmaint_core.spec import FIELD_SPEC, InputSpec, ModalitySpec, SpecError, TEACHER_SPEC


def test_default_specs_are_valid_and_round_trip():
    for spec in (FIELD_SPEC, TEACHER_SPEC):
        spec.validate()
        assert InputSpec.from_dict(spec.to_dict()) == spec
    assert FIELD_SPEC.spec_id != TEACHER_SPEC.spec_id
    assert FIELD_SPEC.modality('proprio').features == (4 + 2 * 2,)


def test_normalisation_changes_the_id_and_is_validated():
    stats = {'tactile': ([0.5] * 8, [2.0] * 8)}
    normalised = FIELD_SPEC.with_normalisation(stats)
    assert normalised.modality('tactile').mean == (0.5,) * 8
    assert normalised.spec_id != FIELD_SPEC.spec_id
    with pytest.raises(SpecError, match='tactile: mean/std need 8 channels'):
        FIELD_SPEC.with_normalisation({'tactile': ([0.0] * 3, [1.0] * 3)}).validate()


def test_nan_and_infinite_sizes_and_statistics_are_refused():
    """A bare `<= 0` test lets NaN through: a NaN window made the ingestion buffers grow."""
    import dataclasses
    import math
    for bad in (math.nan, math.inf, 0.0):
        for field in ('window', 'hop'):
            with pytest.raises(SpecError, match='window and hop must be finite'):
                dataclasses.replace(FIELD_SPEC, **{field: bad}).validate()
        with pytest.raises(SpecError, match='rate must be finite'):
            dataclasses.replace(FIELD_SPEC.modality('tactile'), rate=bad).validate()
        with pytest.raises(SpecError, match='std must be finite and > 0'):
            FIELD_SPEC.with_normalisation({'tactile': ([0.0] * 8, [1.0] * 7 + [bad])}).validate()
    with pytest.raises(SpecError, match='mean finite'):
        FIELD_SPEC.with_normalisation({'tactile': ([math.nan] * 8, [1.0] * 8)}).validate()


def test_camera_min_snr_round_trips_and_leaves_older_specs_their_id():
    older = FIELD_SPEC.to_dict()          # as exports wrote it before min_snr existed
    assert 'min_snr' not in older['modalities'][0]
    digest = hashlib.sha256(json.dumps(older, sort_keys=True).encode()).hexdigest()[:12]
    assert InputSpec.from_dict(older).spec_id == FIELD_SPEC.spec_id == digest
    gated = FIELD_SPEC.with_min_snr(1.25)
    assert gated.modality('camera').min_snr == 1.25
    assert gated.modality('tactile').min_snr == 0.0
    assert InputSpec.from_dict(json.loads(json.dumps(gated.to_dict()))) == gated
    assert gated.spec_id != FIELD_SPEC.spec_id    # its windows differ: the id must too


@pytest.mark.parametrize('change, message', [
    ({'name': 'sonar'}, "modality name 'sonar'"),
    ({'steps': 0}, 'camera.steps must be >= 1'),
    ({'rate': -1.0}, 'camera.rate must be finite and > 0'),
    ({'features': (3, 0, 32)}, 'camera.features must be positive'),
    ({'min_snr': -1.0}, 'camera.min_snr must be finite and >= 0'),
    ({'min_snr': float('nan')}, 'camera.min_snr must be finite'),
    ({'min_snr': float('inf')}, 'camera.min_snr must be finite'),   # JSON cannot hold it
    ({'name': 'tactile', 'features': (8,), 'min_snr': 1.0}, 'tactile.min_snr must be finite'),
])
def test_bad_modality_fields_are_named(change, message):
    good = FIELD_SPEC.modality('camera')
    fields = {**good.__dict__, **change}
    with pytest.raises(SpecError, match=message):
        ModalitySpec(**fields).validate()


def test_malformed_dict_gives_spec_error():
    data = FIELD_SPEC.to_dict()
    del data['window']
    with pytest.raises(SpecError, match='malformed'):
        InputSpec.from_dict(data)
    data = FIELD_SPEC.to_dict()
    data['joints'] = 5
    with pytest.raises(SpecError, match=r'proprio.features must be \(9,\)'):
        InputSpec.from_dict(data)
