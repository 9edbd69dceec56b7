"""
Bad input to the ingestion node (issue #17): 20 or more classes of message per sensor topic.

All go through one node process. Each case publishes a good message, the bad one and another
good one on the same topic (reliable, in order). The node must stay up, count exactly one
rejection under the case's reason in the sensor's /diagnostics status, accept both good
messages, and publish only windows whose available data are finite and plausible. The node
runs with every sensor's expected frame_id set (so a wrong frame is a fault) and health
thresholds that let a few samples make a modality available, so a poisoned sample would show
in the windows.
"""
import math
import time

from bad_input import Case, params, Record
import numpy as np
import pytest
from ros_helpers import spin_until

FRAME = 'arm_base'
STATS = {'camera': ([0.5] * 3, [0.25] * 3), 'tactile': ([1.5] * 8, [1.0] * 8),
         'proprio': ([0.0] * 4 + [10.0] * 4, [0.2] * 4 + [3.0] * 4),
         'environment': ([22.5, 0.5, 700.0, 101.0], [2.0, 0.1, 150.0, 1.0])}
TOPICS = {'camera': 'camera/image_raw', 'tactile': 'tactile', 'joint_states': 'joint_states',
          'actuation': 'actuation', 'environment': 'environment'}
SOURCES = {topic: source for source, topic in TOPICS.items()}
JOINTS = ['bend_0', 'bend_1', 'bend_2', 'bend_3']
# Largest |normalised value| a window may hold: the good messages stay within 3 std.
PLAUSIBLE = 10.0
RNG = np.random.default_rng(17)


# ------------------------------------------------------------------ good messages

def _time(seconds):
    from builtin_interfaces.msg import Time
    ns = round(seconds * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def good(source, stamp):
    """Return a plausible message of `source` stamped `stamp` [s], within 3 std of STATS."""
    from sensor_msgs.msg import Image, JointState
    from softmaint_interfaces.msg import ActuatorState, EnvironmentReading, TactileArray
    if source == 'camera':
        level = RNG.integers(80, 176)
        msg = Image(height=64, width=64, encoding='rgb8', step=192,
                    data=bytes([level]) * (192 * 64))
    elif source == 'tactile':
        msg = TactileArray(rows=8, cols=1, pitch=0.02, units='N', range_max=4.0,
                           data=RNG.uniform(0.5, 2.5, 8).tolist())
    elif source == 'joint_states':
        msg = JointState(name=JOINTS + ['tip_roll'], position=RNG.uniform(-0.3, 0.3, 5).tolist())
    elif source == 'actuation':
        msg = ActuatorState(name=['chamber_0', 'chamber_1'], units='kPa',
                            command=RNG.uniform(5, 15, 2).tolist(),
                            achieved=RNG.uniform(5, 15, 2).tolist())
    else:
        msg = EnvironmentReading(temperature=float(RNG.uniform(20, 25)),
                                 humidity=float(RNG.uniform(0.4, 0.6)),
                                 co2=float(RNG.uniform(500, 900)),
                                 pressure=float(RNG.uniform(100, 102)))
    msg.header.stamp = _time(stamp)
    msg.header.frame_id = FRAME
    return msg


# ------------------------------------------------------------------ bad messages

def _changed(source, **fields):
    """Make a good message (stamped just after the previous good one), then set `fields`."""
    def make(previous):
        msg = good(source, previous + 0.001)
        for name, value in fields.items():
            setattr(msg, name, value(msg) if callable(value) else value)
        return msg
    return make


def _stamped(source, sec=None, nanosec=0, shift=None):
    """Give a good message a bad stamp: `shift` s after the previous good one, or sec/nanosec."""
    def make(previous):
        from builtin_interfaces.msg import Time
        msg = good(source, previous)
        msg.header.stamp = _time(previous + shift) if shift is not None else \
            Time(sec=sec, nanosec=nanosec)
        return msg
    return make


def _header_cases(topic):
    source = SOURCES[topic]
    return [
        Case(topic, 'stamp_5s_ahead', 'future_stamp',
             lambda t: _stamped(source, shift=time.time() - t + 5.0)(t)),
        Case(topic, 'stamp_year_2038', 'future_stamp', _stamped(source, sec=2**31 - 1)),
        Case(topic, 'repeated_stamp', 'duplicate_stamp', _stamped(source, shift=0.0)),
        Case(topic, 'stamp_going_back', 'out_of_order', _stamped(source, shift=-0.5)),
        Case(topic, 'clock_back_1h', 'out_of_order', _stamped(source, shift=-3600.0)),
        Case(topic, 'zero_stamp', 'bad_stamp', _stamped(source, sec=0, nanosec=0)),
        Case(topic, 'nanosec_overflow', 'bad_stamp',
             lambda t: _stamped(source, sec=int(t), nanosec=2**32 - 1)(t)),
        Case(topic, 'negative_stamp', 'bad_stamp', _stamped(source, sec=-5)),
        Case(topic, 'wrong_frame_id', 'frame_id', _header(source, 'camera_of_another_robot')),
        Case(topic, 'empty_frame_id', 'frame_id', _header(source, '')),
        Case(topic, 'oversize_frame_id', 'frame_id', _header(source, 'f' * 100_000)),
    ]


def _header(source, frame_id):
    def make(previous):
        msg = good(source, previous + 0.001)
        msg.header.frame_id = frame_id
        return msg
    return make


def _float_image(value):
    """Return the fields of a 32FC1 frame holding `value` in one pixel."""
    from softmaint_core.image import array_to_image
    pixels = np.full((8, 8), 0.5, np.float32)
    pixels[3, 4] = value
    step, data = array_to_image(pixels, '32FC1')
    return {'encoding': '32FC1', 'height': 8, 'width': 8, 'step': step, 'data': data}


def _camera_cases():
    topic = TOPICS['camera']

    def image(**fields):
        return _changed('camera', **fields)
    return _header_cases(topic) + [
        Case(topic, 'unknown_encoding', 'encoding', image(encoding='yuv422')),
        Case(topic, 'empty_encoding', 'encoding', image(encoding='')),
        Case(topic, 'encoding_in_capitals', 'encoding', image(encoding='RGB8')),
        Case(topic, 'oversize_encoding', 'encoding', image(encoding='rgb8' * 20_000)),
        Case(topic, 'zero_height', 'empty', image(height=0)),
        Case(topic, 'zero_width', 'empty', image(width=0)),
        Case(topic, 'step_below_row', 'size', image(step=191)),
        Case(topic, 'data_short', 'size', image(data=lambda m: bytes(m.data[:-7]))),
        Case(topic, 'data_long', 'size', image(data=lambda m: bytes(m.data) + b'\0' * 11)),
        Case(topic, 'no_data', 'size', image(data=b'')),
        Case(topic, 'step_overflow', 'size', image(step=2**32 - 1)),
        Case(topic, 'dimensions_overflow', 'too_large',
             image(height=2**32 - 1, width=2**32 - 1, step=2**32 - 1)),
        Case(topic, 'over_16_megapixels', 'too_large',
             image(height=4097, width=4096, step=3 * 4096)),
        Case(topic, 'nan_pixel', 'non_finite', image(**_float_image(math.nan))),
        Case(topic, 'inf_pixel', 'non_finite', image(**_float_image(math.inf))),
    ]


def _tactile_cases():
    topic = TOPICS['tactile']

    def data(values):
        return _changed('tactile', data=[float(v) for v in values])
    return _header_cases(topic) + [
        Case(topic, 'no_data', 'empty', data([])),
        Case(topic, 'grid_mismatch', 'shape', _changed('tactile', rows=3, cols=3)),
        Case(topic, 'wrong_taxel_count', 'shape', _changed('tactile', rows=3, cols=3,
                                                           data=[1.0] * 9)),
        Case(topic, 'grid_overflow', 'shape', _changed('tactile', rows=2**32 - 1,
                                                       cols=2**32 - 1)),
        Case(topic, 'all_dead', 'non_finite', data([math.nan] * 8)),
        Case(topic, 'inf', 'non_finite', data([1.0] * 7 + [math.inf])),
        Case(topic, 'minus_inf', 'non_finite', data([-math.inf] + [1.0] * 7)),
        Case(topic, 'beyond_range_max', 'out_of_range', data([1.0] * 7 + [1e30])),
        Case(topic, 'huge_negative', 'out_of_range', data([-1e30] + [1.0] * 7)),
        Case(topic, 'huge_array', 'too_large', _changed('tactile', rows=100_000, cols=1,
                                                        data=[1.0] * 100_000)),
        Case(topic, 'wrong_units', 'units', _changed('tactile', units='kPa')),
        Case(topic, 'oversize_units', 'units', _changed('tactile', units='N' * 10_000)),
    ]


def _joint_cases():
    topic = TOPICS['joint_states']

    def joints(names, positions):
        return _changed('joint_states', name=names, position=[float(p) for p in positions])
    return _header_cases(topic) + [
        Case(topic, 'no_names', 'empty', joints([], [])),
        Case(topic, 'fewer_positions', 'shape', joints(JOINTS, [0.1] * 3)),
        Case(topic, 'more_positions', 'shape', joints(JOINTS, [0.1] * 6)),
        Case(topic, 'velocities_only', 'shape', _changed('joint_states', name=JOINTS,
                                                         position=[], velocity=[0.1] * 4)),
        Case(topic, 'missing_joint', 'missing_name', joints(JOINTS[:3], [0.1] * 3)),
        Case(topic, 'names_in_capitals', 'other_device', joints([n.upper() for n in JOINTS],
                                                                [0.1] * 4)),
        Case(topic, 'oversize_name', 'missing_name', joints(JOINTS[:3] + ['b' * 100_000],
                                                            [0.1] * 4)),
        Case(topic, 'repeated_joint', 'duplicate_name', joints(JOINTS + ['bend_0'], [0.1] * 5)),
        Case(topic, 'nan', 'non_finite', joints(JOINTS, [0.1, math.nan, 0.1, 0.1])),
        Case(topic, 'inf', 'non_finite', joints(JOINTS, [0.1, 0.1, math.inf, 0.1])),
        Case(topic, 'float64_max', 'non_finite', joints(JOINTS, [1.7e308, 0.1, 0.1, 0.1])),
        Case(topic, 'beyond_full_turn', 'out_of_range', joints(JOINTS, [7.0, 0.1, 0.1, 0.1])),
        Case(topic, 'huge_array', 'too_large',
             joints(JOINTS + [f'j{i}' for i in range(10_000)], [0.1] * 10_004)),
    ]


def _actuation_cases():
    topic = TOPICS['actuation']
    names = ['chamber_0', 'chamber_1']

    def chambers(name=names, command=(8.0, 9.0), achieved=(7.5, 8.5), **fields):
        return _changed('actuation', name=list(name), command=[float(v) for v in command],
                        achieved=[float(v) for v in achieved], **fields)
    return _header_cases(topic) + [
        Case(topic, 'no_names', 'empty', chambers([], [], [])),
        Case(topic, 'short_command', 'shape', chambers(command=[8.0])),
        Case(topic, 'short_achieved', 'shape', chambers(achieved=[])),
        Case(topic, 'missing_actuator', 'missing_name', chambers(['chamber_0', 'x'])),
        Case(topic, 'repeated_actuator', 'duplicate_name',
             chambers(names + ['chamber_1'], [8.0] * 3, [7.0] * 3)),
        Case(topic, 'nan_command', 'non_finite', chambers(command=[math.nan, 9.0])),
        Case(topic, 'inf_achieved', 'non_finite', chambers(achieved=[7.5, math.inf])),
        Case(topic, 'beyond_100_bar', 'out_of_range', chambers(command=[1e5, 9.0])),
        Case(topic, 'below_vacuum', 'out_of_range', chambers(achieved=[-500.0, 8.5])),
        Case(topic, 'huge_array', 'too_large', chambers([f'c{i}' for i in range(5000)] + names,
                                                        [8.0] * 5002, [7.0] * 5002)),
        Case(topic, 'wrong_units', 'units', chambers(units='psi')),
        Case(topic, 'oversize_units', 'units', chambers(units='kPa' * 10_000)),
    ]


def _environment_cases():
    topic = TOPICS['environment']

    def reading(**fields):
        return _changed('environment', **fields)
    return _header_cases(topic) + [
        Case(topic, 'nothing_sensed', 'non_finite',
             reading(temperature=math.nan, humidity=math.nan, co2=math.nan, pressure=math.nan)),
        Case(topic, 'inf_temperature', 'non_finite', reading(temperature=math.inf)),
        Case(topic, 'minus_inf_pressure', 'non_finite', reading(pressure=-math.inf)),
        Case(topic, 'below_absolute_zero', 'out_of_range', reading(temperature=-300.0)),
        Case(topic, 'hotter_than_the_sun', 'out_of_range', reading(temperature=6000.0)),
        Case(topic, 'humidity_in_percent', 'out_of_range', reading(humidity=55.0)),
        Case(topic, 'negative_co2', 'out_of_range', reading(co2=-5000.0)),
        Case(topic, 'co2_float32_max', 'out_of_range', reading(co2=3.4e38)),
        Case(topic, 'negative_pressure', 'out_of_range', reading(pressure=-50.0)),
    ]


CASES = (_camera_cases() + _tactile_cases() + _joint_cases() + _actuation_cases()
         + _environment_cases())


# ------------------------------------------------------------------ the node and the rig

class Rig:
    """Test-side node: a publisher per sensor topic, the windows and diagnostics it gets."""

    def __init__(self, context, proc):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, JointState
        from softmaint_interfaces.msg import (ActuatorState, EnvironmentReading, SensorWindow,
                                              TactileArray)
        self.proc = proc
        self.node = rclpy.create_node('bad_input_ingestion_rig', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        types = {'camera': Image, 'tactile': TactileArray, 'joint_states': JointState,
                 'actuation': ActuatorState, 'environment': EnvironmentReading}
        self.pubs = {source: self.node.create_publisher(kind, TOPICS[source], qos)
                     for source, kind in types.items()}
        self.windows, self.status = [], {}
        self.checked = 0                     # windows checked so far
        self.available = set()               # modalities seen available (the check bites)
        self.last = {}                       # source -> stamp of its newest good message
        self.node.create_subscription(SensorWindow, 'softmaint/window', self.windows.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 100)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith('softmaint_ingestion: '):
                source = status.name.split(': ', 1)[1]
                self.status[source] = {v.key: v.value for v in status.values}

    def connected(self):
        return all(p.get_subscription_count() > 0 for p in self.pubs.values()) and \
            len(self.status) == len(self.pubs)

    def counts(self, source):
        """Return the accepted and rejected counts of `source` in its newest diagnostics."""
        values = self.status[source]
        return {key: int(value) for key, value in values.items()
                if key == 'accepted' or key.startswith('rejected_')
                and key != 'rejected_in_window'}

    def publish_good(self, source):
        stamp = max(time.time(), self.last.get(source, 0.0) + 0.002)
        self.pubs[source].publish(good(source, stamp))
        self.last[source] = stamp
        return stamp

    def check_windows(self):
        """Every window since the last check: available data finite and plausible, else 0."""
        from softmaint_interfaces.msg import ModalityTensor
        for window in self.windows[self.checked:]:
            for tensor in window.modalities:
                data = np.frombuffer(tensor.data, np.float32)
                if tensor.status == ModalityTensor.AVAILABLE:
                    assert np.isfinite(data).all() and np.abs(data).max() <= PLAUSIBLE, \
                        (window.sequence, tensor.name, np.abs(data).max())
                    self.available.add(tensor.name)
                else:
                    assert not data.any(), (window.sequence, tensor.name)
        self.checked = len(self.windows)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope='module')
def metadata(tmp_path_factory):
    from softmaint_core.metadata import ModelMetadata
    from softmaint_core.spec import FIELD_SPEC
    meta = ModelMetadata(model_id='bad-input-test', sha256='0' * 64, members=1,
                         input_spec=FIELD_SPEC.with_normalisation(STATS))
    path = tmp_path_factory.mktemp('bad_input_ingestion') / 'student.json'
    path.write_text(meta.to_json())
    return path


@pytest.fixture(scope='module')
def rig(module_spawn, module_ros_context, metadata):
    """One ingestion node for every case, and the record written when the module ends."""
    params = {'model_metadata': metadata, 'diagnostics_period': 0.1,
              # a few samples make a modality available: poison would reach a window
              'min_coverage': 0.0, 'stale_timeout': 60.0, 'max_reject_fraction': 0.9}
    for source, topic in TOPICS.items():
        params[f'expected_frame_ids.{source}'] = FRAME
        params[f'qos_overrides./{topic}.subscription.reliability'] = 'reliable'
        params[f'qos_overrides./{topic}.subscription.depth'] = 100
    args = ['-m', 'softmaint.ingestion_node', '--ros-args']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    proc = module_spawn(args, wait_for_line='ready')
    rig = Rig(module_ros_context, proc)
    record = Record('ingestion')
    rig.record = record
    try:
        assert spin_until(rig.executor, rig.connected, 20.0), 'ingestion node not discovered'
        yield rig
    finally:
        rig.close()
        record.write(crashed=proc.poll() not in (None, 0))


@pytest.mark.parametrize('case', params(CASES))
def test_bad_message_is_counted_and_changes_nothing(rig, case):
    source = SOURCES[case.input_name]
    before = rig.counts(source)
    previous = rig.publish_good(source)
    rig.pubs[source].publish(case.make(previous))
    rig.publish_good(source)
    expected = dict(before, accepted=before['accepted'] + 2)
    expected[f'rejected_{case.reason}'] += 1

    def counted():
        return rig.counts(source) == expected or rig.proc.poll() is not None
    assert spin_until(rig.executor, counted, 10.0), (expected, rig.counts(source))
    assert rig.proc.poll() is None, 'the ingestion node died'
    rig.check_windows()
    rig.record.handled_case(case)


def test_every_topic_gets_20_classes_or_more():
    per_input = {topic: sum(c.input_name == topic for c in CASES) for topic in TOPICS.values()}
    assert min(per_input.values()) >= 20, per_input


def test_windows_stayed_plausible_and_the_node_stops_cleanly(rig):
    assert spin_until(rig.executor, lambda: len(rig.windows) > rig.checked, 5.0)
    rig.check_windows()
    assert rig.available == {'camera', 'tactile', 'proprio', 'environment'}, rig.available
    rig.proc.terminate()
    output = rig.proc.communicate(timeout=10)[0]
    assert rig.proc.returncode == 0 and 'Traceback' not in output, output
