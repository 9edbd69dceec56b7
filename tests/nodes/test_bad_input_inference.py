"""
Bad input to the inference node (issue #17): 20 or more classes each of window and reload.

All go through one node process serving the committed student, signed with the session's key.
A window case publishes a good window, the bad one and another good one; a reload case asks
to load a bad model, then publishes a good window. The node must stay up, count the case
under its reason in /diagnostics (`rejected.window.<reason>`, `rejected.reload_model.<reason>`),
answer no bad window, and give the good windows the very predictions onnxruntime gives here:
nothing it was sent changed what it serves.
"""
from array import array
import json
import math
from pathlib import Path
import shutil
import time

from bad_input import Case, params, Record
import numpy as np
import pytest
from ros_helpers import spin_until
from tamper import tampered_models

REPO = Path(__file__).resolve().parents[2]
WINDOW, RELOAD = 'softmaint/window', 'softmaint/reload_model'


# ------------------------------------------------------------------ windows

def _tensor(modality, rng, available=True):
    from softmaint_interfaces.msg import ModalityTensor
    data = (rng.standard_normal(modality.shape) if available
            else np.zeros(modality.shape)).astype(np.float32)
    return ModalityTensor(name=modality.name, shape=list(modality.shape),
                          data=array('f', data.tobytes()), coverage=1.0, rate=modality.rate,
                          status=ModalityTensor.AVAILABLE if available else ModalityTensor.STALE)


def _window(feeder, stamp=None, available=(True, True, True, False)):
    """Return a good window of random normalised data (one modality missing), stamped now."""
    from builtin_interfaces.msg import Time
    from softmaint_interfaces.msg import SensorWindow
    feeder.sequence += 1
    ns = time.time_ns() if stamp is None else round(stamp * 1e9)
    msg = SensorWindow(sequence=feeder.sequence, spec_id=feeder.spec.spec_id)
    msg.header.stamp = Time(sec=ns // 10**9, nanosec=ns % 10**9)
    msg.header.frame_id = 'base_link'
    msg.modalities = [_tensor(m, feeder.rng, ok)
                      for m, ok in zip(feeder.spec.modalities, available)]
    msg.available = list(available)
    return msg


def _seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def _changed(change):
    """Make a good window, then let change(window, previous good window) spoil it."""
    def make(feeder, previous):
        msg = _window(feeder)
        change(msg, previous)
        return msg
    return make


def _set(**fields):
    return _changed(lambda msg, previous: [setattr(msg, k, v) for k, v in fields.items()])


def _tensor_set(index, **fields):
    return _changed(lambda msg, previous: [setattr(msg.modalities[index], k, v)
                                           for k, v in fields.items()])


def _stamp(seconds_of):
    """Stamp the window at seconds_of(previous good window's stamp) [s]."""
    def change(msg, previous):
        from builtin_interfaces.msg import Time
        ns = round(seconds_of(_seconds(previous.header.stamp)) * 1e9)
        msg.header.stamp = Time(sec=ns // 10**9, nanosec=ns % 10**9)
    return _changed(change)


def _raw_stamp(sec, nanosec):
    def change(msg, previous):
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    return _changed(change)


def _values(index, value, at=7):
    """Put `value` into the data of modality `index`."""
    def change(msg, previous):
        data = msg.modalities[index].data
        data[at] = value
    return _changed(change)


def _replayed(feeder, previous):
    return previous          # the very same message again


def _swapped(msg, previous):
    msg.modalities[0], msg.modalities[1] = msg.modalities[1], msg.modalities[0]


def _renamed(msg, previous):
    msg.modalities[2].name = 'sonar'


def _extra(msg, previous):
    msg.modalities.append(msg.modalities[0])


def _same_stamp(msg, previous):
    msg.header.stamp = previous.header.stamp    # another sequence number, the same time


def _contradicted(msg, previous):
    msg.available[3] = True              # but its status says STALE


WINDOW_CASES = [
    Case(WINDOW, 'other_spec', 'spec_mismatch', _set(spec_id='0123456789ab')),
    Case(WINDOW, 'empty_spec_id', 'spec_mismatch', _set(spec_id='')),
    Case(WINDOW, 'oversize_spec_id', 'spec_mismatch', _set(spec_id='s' * 100_000)),
    Case(WINDOW, 'zero_stamp', 'bad_stamp', _raw_stamp(0, 0)),
    Case(WINDOW, 'nanosec_overflow', 'bad_stamp', _raw_stamp(1_700_000_000, 2**32 - 1)),
    Case(WINDOW, 'no_modalities', 'modalities', _set(modalities=[], available=[])),
    Case(WINDOW, 'modalities_swapped', 'modalities', _changed(_swapped)),
    Case(WINDOW, 'unknown_modality', 'modalities', _changed(_renamed)),
    Case(WINDOW, 'extra_modality', 'modalities', _changed(_extra)),
    Case(WINDOW, 'short_mask', 'mask', _set(available=[True, True, True])),
    Case(WINDOW, 'mask_contradicts_status', 'mask', _changed(_contradicted)),
    Case(WINDOW, 'unknown_status', 'status', _tensor_set(3, status=17)),
    Case(WINDOW, 'wrong_shape', 'shape', _tensor_set(1, shape=[8, 20])),
    Case(WINDOW, 'shape_overflow', 'shape', _tensor_set(1, shape=[2**32 - 1, 8])),
    Case(WINDOW, 'wrong_rank', 'shape', _tensor_set(1, shape=[160])),
    Case(WINDOW, 'data_short', 'size', _tensor_set(1, data=array('f', [0.5] * 159))),
    Case(WINDOW, 'data_long', 'size', _tensor_set(1, data=array('f', [0.5] * 161))),
    Case(WINDOW, 'huge_data', 'size', _tensor_set(1, data=array('f', bytes(4 * 2**20)))),
    Case(WINDOW, 'nan', 'non_finite', _values(1, math.nan)),
    Case(WINDOW, 'inf', 'non_finite', _values(2, -math.inf)),
    Case(WINDOW, 'value_1e30', 'out_of_range', _values(0, 1e30)),
    Case(WINDOW, 'data_behind_mask', 'masked_data', _values(3, 5.0, at=0)),
    Case(WINDOW, 'nan_behind_mask', 'masked_data', _values(3, math.nan, at=0)),
    Case(WINDOW, 'replayed_window', 'duplicate', _replayed),
    Case(WINDOW, 'repeated_stamp', 'duplicate', _changed(_same_stamp)),
    Case(WINDOW, 'stamp_going_back', 'out_of_order', _stamp(lambda t: t - 0.5)),
    Case(WINDOW, 'clock_back_1h', 'out_of_order', _stamp(lambda t: t - 3600.0)),
    Case(WINDOW, 'stamp_5s_ahead', 'future_stamp', _stamp(lambda t: time.time() + 5.0)),
    Case(WINDOW, 'stamp_year_2038', 'future_stamp', _raw_stamp(2**31 - 1, 0)),
]


# ------------------------------------------------------------------ models to reload

def _copy(good, root, case):
    """Copy the signed good model with its metadata and signature into root/case/."""
    folder = root / case
    shutil.copytree(good.parent, folder)
    return folder / good.name


def bad_models(good, root, sign):
    """Return case -> path of signed bad models: each gets past the signature check."""
    from softmaint_core.metadata import sha256_file

    def meta_of(path):
        return path.with_suffix('.json')

    def resigned(case, model_bytes=None, meta_change=None, meta_bytes=None):
        path = _copy(good, root, case)
        if model_bytes is not None:
            path.write_bytes(model_bytes)
        meta = json.loads(meta_of(path).read_text())
        meta['sha256'] = sha256_file(path)
        if meta_change:
            meta_change(meta)
        meta_of(path).write_bytes(meta_bytes or json.dumps(meta).encode())
        sign(path)
        return path

    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(good))
    weights = next(w for w in graph.graph.initializer
                   if numpy_helper.to_array(w).dtype == np.float32)
    weights.CopyFrom(numpy_helper.from_array(
        np.full_like(numpy_helper.to_array(weights), np.nan), weights.name))

    def set_field(key, value):
        return lambda meta: meta.__setitem__(key, value)

    def camera_64(meta):
        meta['input_spec']['modalities'][0]['features'] = [3, 64, 64]

    def other_stats(meta):
        meta['input_spec']['modalities'][1]['std'] = [9.0] * 8

    missing_meta = _copy(good, root, 'metadata_missing')
    meta_of(missing_meta).unlink()
    return {
        'garbage_onnx': resigned('garbage_onnx', b'\x08\x07 not a protobuf ' * 64),
        'empty_model': resigned('empty_model', b''),
        'nan_weights': resigned('nan_weights', graph.SerializeToString()),
        'graph_mismatch': resigned('graph_mismatch', meta_change=camera_64),
        'wrong_member_count': resigned('wrong_member_count',
                                       meta_change=set_field('members', 7)),
        'other_input_spec': resigned('other_input_spec', meta_change=other_stats),
        'metadata_not_json': resigned('metadata_not_json', meta_bytes=b'{nope'),
        'metadata_a_list': resigned('metadata_a_list', meta_bytes=b'[1, 2]'),
        'metadata_binary': resigned('metadata_binary', meta_bytes=b'\xff\xfe\x00\x01'),
        'metadata_wrong_type': resigned('metadata_wrong_type',
                                        meta_change=set_field('members', 'three')),
        'metadata_wrong_sha256': resigned('metadata_wrong_sha256',
                                          meta_change=set_field('sha256', 'ab' * 32)),
        'metadata_missing': missing_meta,
    }


def _path(text):
    return lambda models: text


RELOAD_CASES = [
    Case(RELOAD, case, reason, lambda models, case=case: str(models[case]))
    for case, reason in (('unsigned', 'unsigned'), ('another_key', 'signature'),
                         ('truncated', 'signature'), ('altered', 'signature'),
                         ('altered_metadata', 'signature'), ('garbage_signature', 'signature'),
                         ('garbage_onnx', 'onnx'), ('empty_model', 'onnx'),
                         ('nan_weights', 'test_inference'), ('graph_mismatch', 'graph'),
                         ('wrong_member_count', 'test_inference'),
                         ('other_input_spec', 'spec_change'), ('metadata_not_json', 'metadata'),
                         ('metadata_a_list', 'metadata'), ('metadata_binary', 'metadata'),
                         ('metadata_wrong_type', 'metadata'),
                         ('metadata_wrong_sha256', 'metadata'),
                         ('metadata_missing', 'signature'))
] + [
    Case(RELOAD, 'empty_path', 'path', _path('')),
    Case(RELOAD, 'blank_path', 'path', _path('   ')),
    # ROS strings end at a NUL: the node looks for /tmp/student
    Case(RELOAD, 'nul_byte', 'not_found', _path('/tmp/student\0.onnx')),
    Case(RELOAD, 'path_too_long', 'path', _path('/' + 'p' * 100_000)),
    Case(RELOAD, 'name_too_long', 'path', _path('/tmp/' + 'n' * 300 + '.onnx')),
    Case(RELOAD, 'missing_file', 'not_found', _path('/nonexistent/student.onnx')),
    Case(RELOAD, 'a_directory', 'not_found', _path('/tmp')),
    Case(RELOAD, 'dev_zero', 'not_found', _path('/dev/zero')),
    Case(RELOAD, 'relative_path', 'not_found', _path('student.onnx')),
    Case(RELOAD, 'home_of_no_user', 'path', _path('~no_such_user_here/student.onnx')),
]


# ------------------------------------------------------------------ the node and the rig

class Feeder:
    """Test-side node: publishes windows, calls reload, keeps predictions and diagnostics."""

    def __init__(self, context, proc, spec):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from softmaint_interfaces.msg import MaintenancePrediction, SensorWindow
        from softmaint_interfaces.srv import ReloadModel
        self.proc, self.spec = proc, spec
        self.rng = np.random.default_rng(5)
        self.sequence = 0
        self.node = rclpy.create_node('bad_input_inference_feeder', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(SensorWindow, WINDOW, reliable)
        self.predictions, self.values = [], {}
        self.node.create_subscription(MaintenancePrediction, 'softmaint/prediction',
                                      self.predictions.append, reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.reload = self.node.create_client(ReloadModel, RELOAD)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == 'softmaint_inference: model':
                self.values = {v.key: v.value for v in status.values}

    def ready(self):
        return self.publisher.get_subscription_count() > 0 and self.values and \
            self.reload.service_is_ready()

    def count(self, case):
        name = case.input_name.split('/')[-1]
        return int(self.values[f'rejected.{name}.{case.reason}'])

    def answers(self, window):
        """Return the predictions of `window` (sequence and stamp)."""
        return [p for p in self.predictions if p.window_sequence == window.sequence
                and p.header.stamp == window.header.stamp]

    def spin_until(self, condition, timeout=20.0):
        return spin_until(self.executor, lambda: condition() or self.proc.poll() is not None,
                          timeout) and self.proc.poll() is None

    def call_reload(self, path):
        from softmaint_interfaces.srv import ReloadModel
        future = self.reload.call_async(ReloadModel.Request(model_path=path))
        assert self.spin_until(future.done), 'reload timed out'
        return future.result()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope='module')
def served(tmp_path_factory, sign):
    """Sign the committed student with the session key; return it and bad models by case."""
    root = tmp_path_factory.mktemp('bad_input_inference')
    good = root / 'good' / 'student.onnx'
    good.parent.mkdir()
    for suffix in ('.onnx', '.json'):
        shutil.copyfile(REPO / 'models' / f'student{suffix}', good.with_suffix(suffix))
    sign(good)
    models = {case: path for case, (path, _) in tampered_models(good, root / 'tamper').items()}
    models.update(bad_models(good, root / 'bad', sign))
    return good, models


@pytest.fixture(scope='module')
def local(served):
    """Load the same student here: what the node must answer for a good window."""
    from softmaint_core.student import StudentModel
    return StudentModel(served[0])


@pytest.fixture(scope='module')
def feeder(module_spawn, module_ros_context, served, signing_keys, local):
    """One inference node for every case, and the record written when the module ends."""
    args = ['-m', 'softmaint.inference_node', '--ros-args', '--params-file',
            str(REPO / 'config' / 'softmaint.yaml'), '-p', 'diagnostics_period:=0.1',
            '-p', f'model_path:={served[0]}', '-p', f'model_public_key:={signing_keys.public}',
            '-p', 'qos_overrides./softmaint/window.subscription.reliability:=reliable',
            '-p', 'qos_overrides./softmaint/window.subscription.depth:=100']
    proc = module_spawn(args, wait_for_line='serving')
    feeder = Feeder(module_ros_context, proc, local.spec)
    feeder.record = Record('inference')
    try:
        assert feeder.spin_until(feeder.ready), 'the inference node is not ready'
        yield feeder
    finally:
        feeder.close()
        feeder.record.write(crashed=proc.poll() not in (None, 0))


def _check_answer(feeder, local, window):
    """Check that the node's prediction of `window` is the served model's here."""
    [got] = feeder.answers(window)
    feeds = {t.name: np.frombuffer(t.data, np.float32).reshape((1,) + tuple(t.shape))
             for t in window.modalities}
    expected, _ = local.predict(feeds, list(window.available))
    assert got.model_sha256 == local.meta.sha256
    assert list(got.fatigue_probs) == pytest.approx(expected.fatigue_probs, abs=1e-5)
    assert list(got.damage_probs) == pytest.approx(expected.damage_probs, abs=1e-5)
    assert got.urgency == pytest.approx(expected.urgency, abs=1e-5)


@pytest.mark.parametrize('case', params(WINDOW_CASES))
def test_bad_window_is_counted_and_changes_nothing(feeder, local, case):
    before = feeder.count(case)
    first = _window(feeder)
    feeder.publisher.publish(first)
    bad = case.make(feeder, first)
    feeder.publisher.publish(bad)
    second = _window(feeder)
    feeder.publisher.publish(second)
    assert feeder.spin_until(lambda: feeder.count(case) == before + 1 and feeder.answers(second)
                             and feeder.answers(first)), (case, feeder.count(case))
    assert feeder.answers(first) == [feeder.answers(first)[0]]      # answered once
    assert bad is first or not feeder.answers(bad)
    _check_answer(feeder, local, second)
    feeder.record.handled_case(case)


@pytest.mark.parametrize('case', params(RELOAD_CASES))
def test_bad_reload_is_refused_counted_and_changes_nothing(feeder, local, served, case):
    before = feeder.count(case)
    answer = feeder.call_reload(case.make(served[1]))
    assert not answer.success, answer.message
    assert answer.model_id == local.meta.model_id and 'still serving' in answer.message
    assert feeder.spin_until(lambda: feeder.count(case) == before + 1), answer.message
    window = _window(feeder)
    feeder.publisher.publish(window)
    assert feeder.spin_until(lambda: feeder.answers(window))
    _check_answer(feeder, local, window)
    feeder.record.handled_case(case)


def test_every_input_gets_20_classes_or_more():
    assert len(WINDOW_CASES) >= 20 and len(RELOAD_CASES) >= 20


def test_counts_add_up_and_the_node_stops_cleanly(feeder):
    values = feeder.values
    refused = sum(int(v) for k, v in values.items() if k.startswith('rejected.window.'))
    assert refused == int(values['dropped_windows']) >= len(WINDOW_CASES)
    assert values['lost_in_transit'] == '0'          # refused windows are not lost ones
    assert int(values['reloads_refused']) >= len(RELOAD_CASES) and values['reloads'] == '0'
    feeder.proc.terminate()
    output = feeder.proc.communicate(timeout=10)[0]
    assert feeder.proc.returncode == 0 and 'Traceback' not in output, output
