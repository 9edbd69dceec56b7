"""The Inspect action's window collection (no DDS: the goal thread's side of it)."""
from softmaint.inspection_action import Inspection
from softmaint_core.decisions import PredictionSummary
from softmaint_core.taxonomy import DAMAGE_TYPES


def _summary(damage_classes=DAMAGE_TYPES):
    damage = [0.0] * len(damage_classes)
    damage[0] = 1.0
    return PredictionSummary(urgency=0.2, uncertainty=0.1, fatigue_probs=(0.8, 0.1, 0.1),
                             damage_probs=tuple(damage), fatigue_set=(0,), damage_set=(0,),
                             available=('tactile', 'proprio'), modalities=4,
                             damage_classes=tuple(damage_classes))


def test_windows_of_a_model_with_other_classes_are_left_out():
    """A reload mid-inspection: averaging 5 classes with 3 raised inside the goal thread."""
    inspection = Inspection()
    inspection.add(_summary())
    inspection.add(_summary(('none', 'crack_tear', 'puncture_leak')))
    inspection.add(_summary())
    assert len(inspection.wait_beyond(1, 1.0)) == 2
    assert all(s.damage_classes == DAMAGE_TYPES for s in inspection.summaries)
