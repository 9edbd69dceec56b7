"""Post-processing of raw outputs: temperature, ensemble mean, uncertainty, reconstruction."""
import numpy as np
import pytest
from softmaint_core.metadata import ModelMetadata
from softmaint_core.postprocess import entropy, postprocess
from softmaint_core.spec import FIELD_SPEC


def _meta(**kwargs):
    return ModelMetadata(model_id='m', sha256='0' * 64, input_spec=FIELD_SPEC, members=2,
                         **kwargs)


def _outputs(fatigue, damage, urgency, reconstruction=None):
    k = len(urgency)
    if reconstruction is None:
        reconstruction = np.ones((k, 4, FIELD_SPEC.embedding))
    return {'fatigue_logits': np.array([fatigue], dtype=np.float32),
            'damage_logits': np.array([damage], dtype=np.float32),
            'urgency': np.array([urgency], dtype=np.float32),
            'reconstruction': np.array([reconstruction], dtype=np.float32)}


def test_confident_agreeing_members():
    out = _outputs([[10, 0, 0], [10, 0, 0]], [[0, 12, 0, 0, 0]] * 2, [0.3, 0.3])
    pred = postprocess(out, [True] * 4, _meta(conformal_fatigue=0.5, conformal_damage=0.5))
    assert pred.fatigue_set == [0] and pred.damage_set == [1]
    assert pred.urgency == pytest.approx(0.3) and pred.urgency_std == pytest.approx(0.0)
    assert pred.uncertainty < 0.01 and pred.fatigue_disagreement < 1e-6
    assert pred.reconstructed == {}


def test_disagreeing_members_raise_mutual_information_and_uncertainty():
    out = _outputs([[10, 0, 0], [0, 0, 10]], [[0, 12, 0, 0, 0]] * 2, [0.1, 0.9])
    pred = postprocess(out, [True] * 4, _meta(conformal_fatigue=0.6))
    assert pred.fatigue_probs == pytest.approx([0.5, 0.0, 0.5], abs=1e-4)
    assert pred.fatigue_disagreement == pytest.approx(np.log(2), abs=1e-3)
    assert pred.fatigue_set == [0, 2]
    assert pred.urgency_std == pytest.approx(0.4)
    assert pred.uncertainty == pytest.approx(1.0)


def test_temperature_softens_probabilities():
    logits = [[2.0, 0.0, 0.0]] * 2
    sharp = postprocess(_outputs(logits, [[0] * 5] * 2, [0.5, 0.5]), [True] * 4, _meta())
    soft = postprocess(_outputs(logits, [[0] * 5] * 2, [0.5, 0.5]), [True] * 4,
                       _meta(temperature_fatigue=4.0))
    assert soft.fatigue_probs[0] < sharp.fatigue_probs[0]
    assert soft.fatigue_entropy > sharp.fatigue_entropy
    assert sharp.damage_entropy == pytest.approx(entropy(np.full(5, 0.2)))


def test_missing_modalities_get_reconstructions_with_agreement():
    rec = np.zeros((2, 4, FIELD_SPEC.embedding))
    rec[:, 0, 0] = 1.0            # camera: members agree
    rec[0, 1, 0], rec[1, 1, 1] = 1.0, 1.0   # tactile: orthogonal members
    out = _outputs([[0, 0, 0]] * 2, [[0] * 5] * 2, [0.5, 0.5], rec)
    pred = postprocess(out, [False, False, True, True], _meta())
    assert set(pred.reconstructed) == {'camera', 'tactile'}
    assert pred.reconstruction_confidence['camera'] == pytest.approx(1.0)
    assert pred.reconstruction_confidence['tactile'] == pytest.approx(0.0)
    assert pred.reconstructed['tactile'][:2] == pytest.approx([0.5, 0.5])


def test_per_class_thresholds_decide_membership_class_by_class():
    out = _outputs([[10, 0, 0]] * 2, [[2, 1, 0, 0, 0]] * 2, [0.3, 0.3])
    damage = np.exp([2, 1, 0, 0, 0]) / np.exp([2, 1, 0, 0, 0]).sum()   # 0.61 0.22 0.08 ...
    # class 1 needs q-hat >= 1 - 0.22; classes 2-4 stay out at q-hat 0.5
    pred = postprocess(out, [True] * 4, _meta(conformal_damage=(0.5, 0.8, 0.5, 0.5, 0.5)))
    assert pred.damage_probs == pytest.approx(damage, abs=1e-6)
    assert pred.damage_set == [0, 1]
    pred = postprocess(out, [True] * 4, _meta(conformal_damage=(0.5, 0.7, 0.95, 0.5, 0.5)))
    assert pred.damage_set == [0, 2]


def test_damage_miss_threshold_adds_the_likely_damage_to_a_none_set():
    out = _outputs([[10, 0, 0]] * 2, [[2, 0.5, 1, 0, 0]] * 2, [0.3, 0.3])
    # p(none) 0.56: {none} alone at q-hat 0.5; P(damage) 0.44, most probable class 2
    assert postprocess(out, [True] * 4, _meta(conformal_damage=0.5)).damage_set == [0]
    meta = _meta(conformal_damage=0.5, damage_miss_alpha=0.01, damage_miss_threshold=0.4)
    assert postprocess(out, [True] * 4, meta).damage_set == [0, 2]
    meta = _meta(conformal_damage=0.5, damage_miss_alpha=0.01, damage_miss_threshold=0.5)
    assert postprocess(out, [True] * 4, meta).damage_set == [0]
