"""Checks of what the nodes receive: each refusal with its reason, nothing bad let through."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from softmaint_core.inputs import (ActionRequestAudit, check_acknowledgement,
                                   check_inspect_goal, check_list_request, model_path,
                                   prediction_summary, RejectCounts, Rejected, StreamOrder,
                                   TEXT_LIMIT, window_feeds, WindowStream)
from softmaint_core.spec import FIELD_SPEC


def _reason(call, *args):
    with pytest.raises(Rejected) as err:
        call(*args)
    assert len(str(err.value)) <= TEXT_LIMIT + 40      # cut short, says how long it was
    return err.value.reason


def test_stream_order_refuses_the_future_repeats_and_the_past_until_the_clock_goes_back():
    order = StreamOrder()
    order.check(100.0, now=100.5)
    order.accept(100.0)
    assert _reason(order.check, 102.0, 100.5) == 'future_stamp'
    assert _reason(order.check, 100.0, 101.0) == 'duplicate'
    assert _reason(order.check, 99.0, 101.0) == 'out_of_order'
    order.check(101.0, 101.2)
    order.check(5.0, now=5.5)          # the receiver's clock went back: a new timeline
    order.accept(5.0)
    assert _reason(order.check, 5.0, 5.6) == 'duplicate'
    # a stamp a little ahead of the receiver's clock keeps the checks on
    order.check(6.4, now=5.7)
    order.accept(6.4)
    assert _reason(order.check, 6.4, 5.8) == 'duplicate'
    assert _reason(order.check, 4.0, 5.9) == 'out_of_order'


def test_window_stream_counts_lost_windows_but_not_refused_or_invented_ones():
    stream = WindowStream()
    assert stream.accept_window(10.0, 0, hop=1.0) == 0
    assert stream.accept_window(13.0, 3, hop=1.0) == 2                # two never arrived
    stream.rejected()
    assert stream.accept_window(15.0, 5, hop=1.0) == 0                # one refused, not lost
    assert stream.accept_window(16.0, 2**32 - 1, hop=1.0) == 0        # no time for any
    assert stream.accept_window(17.0, 0, hop=1.0) == 0                # ingestion restarted
    # the receiver's clock went back (a looped bag): its first window there is refused as
    # ahead of the clock, the next one (a sequence gap) starts the new timeline
    stream.check(18.0, now=18.2)
    assert stream.accept_window(18.0, 1, hop=1.0) == 0
    assert _reason(stream.check, 3.0, 1.0) == 'future_stamp'
    stream.rejected()
    stream.check(3.0, now=3.1)
    assert stream.accept_window(3.0, 3, hop=1.0) == 0
    stream.check(5.0, now=5.1)
    assert stream.accept_window(5.0, 5, hop=1.0) == 1                 # counted again after it


def _window(**change):
    """Return a window of FIELD_SPEC stamped 100 s (camera missing, the rest zeros), changed."""
    tensors = [SimpleNamespace(name=m.name, shape=list(m.shape), status=int(m.name == 'camera'),
                               data=np.zeros(m.shape, np.float32).ravel())
               for m in FIELD_SPEC.modalities]
    window = SimpleNamespace(spec_id=FIELD_SPEC.spec_id, modalities=tensors,
                             available=[m.name != 'camera' for m in FIELD_SPEC.modalities],
                             header=SimpleNamespace(stamp=SimpleNamespace(sec=100, nanosec=0)))
    for key, value in change.items():
        index, field = key.split('__') if '__' in key else (None, key)
        setattr(tensors[int(index[1:])] if index else window, field, value)
    return window


def test_window_feeds_and_what_they_refuse():
    stamp, feeds, mask = window_feeds(_window(), FIELD_SPEC, StreamOrder(), 100.5)
    assert stamp == 100.0 and mask == [False, True, True, True]
    assert feeds['tactile'].shape == (1, 20, 8)
    nan = np.zeros(FIELD_SPEC.modality('camera').shape, np.float32).ravel()
    nan[0] = math.nan            # NaN * 0 is NaN: a masked NaN would still reach the model
    huge = np.zeros(160, np.float32)
    huge[3] = 1e30
    for change, reason in (({'spec_id': 'x' * 10_000}, 'spec_mismatch'),
                           ({'m0__data': nan}, 'masked_data'),
                           ({'m0__status': 17}, 'status'),
                           ({'m1__data': huge}, 'out_of_range'),
                           ({'m1__data': np.zeros(159)}, 'size'),
                           ({'m2__shape': [2**32 - 1, 8]}, 'shape'),
                           ({'available': [True] * 4}, 'mask'),
                           ({'header': SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0))},
                            'bad_stamp')):
        assert _reason(window_feeds, _window(**change), FIELD_SPEC, StreamOrder(), 100.5) == \
            reason, change


def _prediction(**change):
    msg = SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=0)),
        model_id='student-test', model_sha256='ab' * 32, urgency=0.2, uncertainty=0.1,
        urgency_std=0.01, fatigue_classes=['low', 'medium', 'high'],
        damage_classes=['none', 'crack_tear'], fatigue_probs=[0.8, 0.1, 0.1],
        damage_probs=[0.9, 0.1], fatigue_set=[0], damage_set=[0],
        input_modalities=['tactile', 'proprio'],
        reconstructed=[SimpleNamespace(name='camera'), SimpleNamespace(name='environment')])
    for key, value in change.items():
        setattr(msg, key, value)
    return msg


def test_prediction_summary_names_the_field_that_is_wrong():
    order = StreamOrder()
    stamp, summary = prediction_summary(_prediction(), order, 6.0)
    assert stamp == 5.0 and summary.available == ('tactile', 'proprio')
    assert summary.modalities == 4
    for change, reason in (({'urgency': math.nan}, 'urgency'),
                           ({'uncertainty': 1.5}, 'uncertainty'),
                           ({'urgency_std': -1.0}, 'urgency_std'),
                           ({'fatigue_probs': [0.5] * 100_000}, 'fatigue_probs'),
                           ({'damage_set': [7]}, 'damage_set'),
                           ({'fatigue_classes': ['low', 'low', 'high']}, 'classes'),
                           ({'fatigue_classes': ['low', 'medium', 'severe']}, 'classes'),
                           ({'damage_classes': ['crack_tear', 'puncture_leak']}, 'classes'),
                           ({'input_modalities': ['sonar']}, 'modalities'),
                           ({'input_modalities': ['tactile', 'tactile']}, 'modalities'),
                           ({'model_sha256': 'not hex'}, 'model'),
                           ({'model_id': 'm' * 100_000}, 'model')):
        assert _reason(prediction_summary, _prediction(**change), order, 6.0) == reason, change
    order.accept(stamp)
    assert _reason(prediction_summary, _prediction(), order, 6.0) == 'duplicate'


def _acknowledgement(**change):
    request = SimpleNamespace(request_id='req-1', operator_name='ada', note='seen\n\tok',
                              action=2, fatigue_label=-1, damage_label=-1,
                              urgency_label=math.nan)
    for key, value in change.items():
        setattr(request, key, value)
    return request


def test_acknowledgements_lists_goals_and_paths_are_checked():
    check_acknowledgement(_acknowledgement())
    for change, reason in (({'request_id': 'r' * 1000}, 'request_id'),
                           ({'operator_name': 'ada\n[INFO] forged'}, 'operator_name'),
                           ({'note': 'n' * 10_000}, 'note'), ({'note': 'a\x1b[2J'}, 'note'),
                           ({'action': 200}, 'action'), ({'urgency_label': math.inf},
                                                         'urgency_label')):
        assert _reason(check_acknowledgement, _acknowledgement(**change)) == reason, change
    check_list_request(SimpleNamespace(history_limit=10, history_kinds=['decision']))
    for limit, kinds, reason in ((1001, [], 'history_limit'),
                                 (10, ["decision' OR 1=1 --"], 'history_kinds'),
                                 (10, ['decision'] * 100, 'history_kinds')):
        assert _reason(check_list_request, SimpleNamespace(history_limit=limit,
                                                           history_kinds=kinds)) == reason
    check_inspect_goal(1.0, 1, 10.0)
    for duration, windows, reason in ((math.nan, 1, 'duration'), (math.inf, 1, 'duration'),
                                      (-0.0, 1, 'duration'), (1.0, 0, 'min_windows')):
        assert _reason(check_inspect_goal, duration, windows, 10.0) == reason
    for text, reason in (('', 'path'), ('/' + 'p' * 5000, 'path'),
                         ('/tmp/' + 'n' * 300, 'path'), ('/tmp', 'not_found'),
                         ('~no_such_user_here/student.onnx', 'path')):
        assert _reason(model_path, text) == reason, text[:20]


def test_reject_counts_show_every_known_reason_and_count_any():
    counts = RejectCounts({'window': ('size', 'mask')})
    counts.count('window', 'size')
    counts.count('window', 'novel')
    assert counts.values() == {'rejected.window.size': '1', 'rejected.window.mask': '0',
                               'rejected.window.novel': '1'}
    assert counts.total('window') == 2


def test_action_request_audit_names_what_an_action_server_refuses_by_itself():
    audit = ActionRequestAudit()
    status = {b'a': 2, b'b': 2}                 # two goals executing
    for goal_id in status:
        audit.accepted(goal_id, lambda goal_id=goal_id: status[goal_id])
    everything = bytes(16)
    assert audit.goal_refusal(b'a') == 'duplicate_goal_id' and audit.goal_refusal(b'c') is None
    assert audit.cancel_refusal(b'a') is None and audit.cancel_refusal(everything) is None
    assert audit.cancel_refusal(b'c') == 'cancel_unknown_goal'
    status[b'a'] = 3                            # canceling
    assert audit.cancel_refusal(b'a') == 'cancel_repeated'
    status[b'a'], status[b'b'] = 5, 4           # canceled, succeeded
    assert audit.cancel_refusal(b'a') == 'cancel_finished_goal'
    assert audit.cancel_refusal(everything) == 'cancel_nothing'
    assert audit.result_refusal(b'c') == 'result_unknown_goal'
    assert audit.result_refusal(b'a') is None
    # a fetched result expires quietly, an unfetched one was abandoned, an unknown id is no one's
    assert audit.expired(b'a') is None and audit.expired(b'b') == 'abandoned_goal'
    assert audit.expired(b'c') is None
    assert audit.goal_refusal(b'a') is None and audit.cancel_refusal(b'b') == 'cancel_unknown_goal'
