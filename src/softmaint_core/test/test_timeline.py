"""Timeline of a run: fault onsets, time to detect and to act, decision durations."""
import json
import math

import pytest
from softmaint_core.settings import Thresholds
from softmaint_core.timeline import Decided, Predicted, summary_json, Timeline, Truth

NONE, LEAK = 0, 1


def _run():
    t = Timeline()
    t.truth = [Truth(10.0 + s, 0, NONE if s < 5 else LEAK, 0.0 if s < 5 else 0.9)
               for s in range(10)]
    t.predictions = [Predicted(10.5 + s, 0, NONE if s < 7 else LEAK, 0.1 if s < 7 else 0.8, 0.2)
                     for s in range(10)]
    t.decisions = [Decided(10.5, 'continue_monitoring'), Decided(14.0, 'request_assistance'),
                   Decided(18.5, 'schedule_maintenance')]
    return t


def test_onset_is_detected_by_the_first_matching_prediction_and_acted_on_later():
    (onset,) = _run().onsets()
    assert (onset.stamp, onset.head, onset.label) == (15.0, 'damage', 'puncture_leak')
    assert onset.detected_after == pytest.approx(2.5)       # prediction at 17.5
    assert onset.acted_after == pytest.approx(3.5)          # assistance is not acting


def test_undetected_fault_has_no_times():
    t = _run()
    t.predictions = [p for p in t.predictions if p.damage == NONE]
    t.decisions = t.decisions[:2]
    (onset,) = t.onsets()
    assert onset.detected_after is None and onset.acted_after is None


def test_decision_durations_hold_until_the_next_decision():
    durations = _run().decision_durations(end=20.0)
    assert durations['continue_monitoring'] == pytest.approx(3.5)
    assert durations['request_assistance'] == pytest.approx(4.5)
    assert durations['schedule_maintenance'] == pytest.approx(1.5)
    assert durations['immediate_shutdown'] == 0.0


def test_urgency_error_uses_the_latest_truth_before_each_prediction():
    t = _run()
    # truth urgency 0.0 until 15, 0.9 from 15; predictions 0.1 until 16.5, then 0.8
    expected = (5 * 0.1 + 2 * 0.8 + 3 * 0.1) / 10
    assert t.urgency_mae() == pytest.approx(expected)
    assert math.isnan(Timeline().urgency_mae())
    summary = t.summary()
    assert summary['start'] == 10.0 and summary['predictions'] == 10
    assert summary['onsets'][0]['label'] == 'puncture_leak'


def test_decisions_are_judged_against_the_truth_for_as_long_as_they_hold():
    # truth: healthy (continue) until 15, then a leak at urgency 0.9 (shutdown by default)
    t = _run()
    t.decisions[1].level = 'continue_monitoring'      # asking while held at continue
    judged = t.against_truth(Thresholds(), end=20.0)
    seconds = judged['seconds']
    assert seconds['continue_monitoring']['continue_monitoring'] == pytest.approx(3.5)
    assert seconds['continue_monitoring']['request_assistance'] == pytest.approx(1.0)
    assert seconds['immediate_shutdown']['request_assistance'] == pytest.approx(3.5)
    assert seconds['immediate_shutdown']['schedule_maintenance'] == pytest.approx(1.5)
    assert judged['judged_seconds'] == pytest.approx(9.5)
    assert judged['right_seconds'] == pytest.approx(3.5)
    assert judged['critical_seconds'] == pytest.approx(5.0)
    # the leak while asking at continue_monitoring is missed; scheduling is not
    assert judged['missed_critical_seconds'] == pytest.approx(3.5)
    t.decisions[1].level = 'schedule_maintenance'
    assert t.against_truth(Thresholds(), end=20.0)['missed_critical_seconds'] == 0.0
    assert 'decisions_against_truth' in t.summary(Thresholds())
    assert 'decisions_against_truth' not in t.summary()


def test_time_before_the_first_truth_is_not_judged_and_truth_is_taken_in_stamp_order():
    t = _run()
    shuffled = Timeline(truth=t.truth[5:] + t.truth[:5], decisions=t.decisions)
    assert shuffled.against_truth(Thresholds(), end=20.0) == t.against_truth(Thresholds(),
                                                                             end=20.0)
    late = Timeline(truth=t.truth[3:], decisions=t.decisions)   # truth from 13.0
    judged = late.against_truth(Thresholds(), end=20.0)
    assert judged['judged_seconds'] == pytest.approx(7.0)
    assert judged['seconds']['continue_monitoring']['continue_monitoring'] == pytest.approx(1.0)


def test_asking_without_a_held_level_leaves_a_critical_state_missed():
    t = _run()          # the request at 14.0 says nothing of the level it holds
    assert t.decisions[1].level == ''
    assert t.against_truth(Thresholds(), end=20.0)['missed_critical_seconds'] == pytest.approx(
        3.5)


def test_a_run_without_truth_is_not_judged():
    t = _run()
    t.truth = []
    assert 'decisions_against_truth' not in t.summary(Thresholds())


def test_a_run_without_predictions_writes_strict_json_with_null_figures():
    summary = Timeline(truth=[Truth(0.0, 0, 0, 0.0)]).summary()
    assert math.isnan(summary['urgency_mae'])

    def refuse(constant):
        raise ValueError(f'{constant} is not JSON')
    written = json.loads(summary_json(summary), parse_constant=refuse)
    assert written['urgency_mae'] is None
    assert written.keys() == summary.keys()


@pytest.mark.parametrize('action, level, error', [
    ('continue_monitoring', '', ''),
    ('request_assistance', 'immediate_shutdown', ''),
    ('CONTINUE_MONITORING', '', "unknown action 'CONTINUE_MONITORING'"),
    ('', '', "unknown action ''"),
    ('request_assistance', 'hold', "unknown level 'hold'"),
    ('request_assistance', 'request_assistance', "unknown level 'request_assistance'"),
])
def test_decisions_the_timeline_cannot_count_say_why(action, level, error):
    assert Decided(0.0, action, level).error() == error


def test_one_close_up_per_fault_onset(tmp_path):
    from softmaint_core.timeline_plot import plot_faults
    t = _run()
    t.truth.append(Truth(20.0, 1, LEAK, 0.9))             # fatigue turns medium too
    paths = plot_faults(t, tmp_path)
    assert [p.name for p in paths] == ['fault_1_damage_puncture_leak.png',
                                       'fault_2_fatigue_medium.png']
    for path in paths:
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and path.stat().st_size > 10000
    assert plot_faults(Timeline(), tmp_path / 'calm') == []
