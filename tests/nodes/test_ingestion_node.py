"""
Ingestion node as a real process: windows and diagnostics from synthetic sensor messages.

The test drives the node's clock (use_sim_time, /clock) and publishes sensor messages whose
values are constant within each time step of the model's grid, so every binned value of a
window is known exactly whatever the message timing. Bad messages of every kind are mixed in;
they must be counted on /diagnostics and change nothing in the windows.
"""
import math
import time

import numpy as np
import pytest
from ros_helpers import spin_until

T0 = 100                  # sim time [s] the sensors start at
LEAD = 0.3                # sensor messages go out this long before the clock reaches them
SPEED = 1.5               # sim seconds per wall-clock second
STATS = {'camera': ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3]),
         'tactile': ([0.5 + 0.1 * i for i in range(8)], [1.0 + 0.2 * i for i in range(8)]),
         'proprio': ([0.1, -0.1, 0.2, 0.0, 8.0, 6.0, 7.5, 5.5], [0.3] * 4 + [4.0] * 4),
         'environment': ([25.0, 0.5, 900.0, 100.0], [8.0, 0.2, 400.0, 2.0])}
ENCODINGS = ('rgb8', 'bgr8', 'mono8', 'mono16', '32FC1')   # cycled over camera steps
CAMERA_HW = (48, 64)
SOURCES = ('camera', 'tactile', 'joint_states', 'actuation', 'environment')


# ------------------------------------------------------------------ values on the model grid

def tactile_value(slot):
    """Taxel forces of 0.1 s slot `slot` (since T0)."""
    return np.array([1.0 + 0.1 * ((7 * slot + i) % 13) for i in range(8)], np.float32)


def joint_value(slot):
    """Return the bend angles of 0.1 s slot `slot`."""
    return np.array([0.01 * ((3 * slot + i) % 17) - 0.05 for i in range(4)], np.float32)


def actuation_value(slot):
    """Return commands then achieved forces of 0.1 s slot `slot`."""
    return np.array([5.0 + (slot + i) % 9 for i in range(4)], np.float32)


def environment_value(slot):
    """Return temperature, humidity, CO2, pressure of 1 s slot `slot`."""
    return np.array([20.0 + slot, 0.5, 800.0 + 10 * slot, 101.0 - 0.1 * slot], np.float32)


def camera_levels(slot):
    """8-bit RGB of the frames of 0.2 s slot `slot`; grey for the mono encodings."""
    rgb = np.array([(37 * slot) % 200 + 20, (53 * slot) % 200 + 20, (11 * slot) % 200 + 20])
    return rgb if ENCODINGS[slot % 5] in ('rgb8', 'bgr8') else np.repeat(rgb[:1], 3)


def expected_window(end):
    """Normalised arrays of the window ending at sim time `end` (an integer second)."""
    first = round((end - 2 - T0) * 10)          # first 0.1 s slot of the window
    raw = {
        'camera': np.stack([np.broadcast_to(camera_levels(first // 2 + k)[:, None, None] / 255.0,
                                            (3, 32, 32)) for k in range(10)]),
        'tactile': np.stack([tactile_value(first + k) for k in range(20)]),
        'proprio': np.stack([np.r_[joint_value(first + k), actuation_value(first + k)]
                             for k in range(20)]),
        'environment': np.stack([environment_value(first // 10 + k) for k in range(2)]),
    }
    out = {}
    for name, x in raw.items():
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, std = (np.asarray(s, np.float64).reshape(shape) for s in STATS[name])
        out[name] = (x - mean) / std
    return out


# ------------------------------------------------------------------ messages

def _stamp(seconds):
    from builtin_interfaces.msg import Time
    ns = round(seconds * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image_msg(stamp, levels, encoding, height=CAMERA_HW[0], width=CAMERA_HW[1]):
    from sensor_msgs.msg import Image
    from softmaint_core.image import array_to_image
    scale = {'rgb8': 1, 'bgr8': 1, 'mono8': 1, 'mono16': 257, '32FC1': 1 / 255.0}[encoding]
    pixels = np.broadcast_to(np.asarray(levels, np.float64) * scale, (height, width, 3))
    if encoding == 'bgr8':
        pixels = pixels[:, :, ::-1]
    if encoding in ('mono8', 'mono16', '32FC1'):
        pixels = pixels[:, :, :1]
    bigendian = encoding == 'mono16'
    step, data = array_to_image(pixels, encoding, bigendian, padding=4)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                step=step)
    msg.header.stamp = _stamp(stamp)
    msg.data = data
    return msg


def tactile_msg(stamp, values, rows=8, cols=1):
    from softmaint_interfaces.msg import TactileArray
    msg = TactileArray(rows=rows, cols=cols, pitch=0.02, units='N', range_max=4.0,
                       data=[float(v) for v in values])
    msg.header.stamp = _stamp(stamp)
    return msg


def joint_msg(stamp, values):
    from sensor_msgs.msg import JointState
    names = ['tip_roll', 'bend_2', 'bend_0', 'bend_3', 'bend_1']   # any order, extra joints
    by_name = dict(zip(('bend_0', 'bend_1', 'bend_2', 'bend_3'), values), tip_roll=9.0)
    msg = JointState(name=names, position=[float(by_name[n]) for n in names])
    msg.header.stamp = _stamp(stamp)
    return msg


def actuation_msg(stamp, values, names=('chamber_0', 'chamber_1')):
    from softmaint_interfaces.msg import ActuatorState
    msg = ActuatorState(name=list(names), units='kPa', command=[float(v) for v in values[:2]],
                        achieved=[float(v) for v in values[2:]])
    msg.header.stamp = _stamp(stamp)
    return msg


def environment_msg(stamp, values):
    from softmaint_interfaces.msg import EnvironmentReading
    msg = EnvironmentReading(**dict(zip(('temperature', 'humidity', 'co2', 'pressure'),
                                        map(float, values))))
    msg.header.stamp = _stamp(stamp)
    return msg


def good_messages(source, start, stop):
    """(stamp, message) of `source` in [start, stop) sim seconds at its rate."""
    rate = {'camera': 10, 'tactile': 100, 'joint_states': 100, 'actuation': 100,
            'environment': 1}[source]
    out = []
    for k in range(round((start - T0) * rate), round((stop - T0) * rate)):
        stamp = T0 + (k + 0.5) / rate
        if source == 'camera':
            slot = k // 2
            msg = image_msg(stamp, camera_levels(slot), ENCODINGS[slot % 5])
        elif source == 'tactile':   # 10 samples per 0.1 s slot
            msg = tactile_msg(stamp, tactile_value(k // 10))
        elif source == 'joint_states':
            msg = joint_msg(stamp, joint_value(k // 10))
        elif source == 'actuation':
            msg = actuation_msg(stamp, actuation_value(k // 10))
        else:
            msg = environment_msg(stamp, environment_value(k))
        out.append((stamp, msg))
    return out


def _short_image(stamp):
    msg = image_msg(stamp, [10, 20, 30], 'rgb8')
    msg.data = msg.data[:-7]
    return msg


def _nan_joints(stamp):
    values = joint_value(0).copy()
    values[1] = math.nan
    return joint_msg(stamp, values)


# (source, reason, message at a stamp): every kind of bad input. The stamp given is one that
# keeps the stream in order, so each message is refused for its own fault only.
BAD_MESSAGES = [
    ('camera', 'encoding', lambda t: _with_encoding(image_msg(t, [10, 20, 30], 'rgb8'),
                                                    'rgba8')),
    ('camera', 'size', _short_image),
    ('camera', 'empty', lambda t: image_msg(t, [0, 0, 0], '32FC1', height=0)),
    ('tactile', 'non_finite', lambda t: tactile_msg(t, [math.nan] * 8)),
    ('tactile', 'shape', lambda t: tactile_msg(t, [1.0] * 9, rows=3, cols=3)),
    ('tactile', 'empty', lambda t: tactile_msg(t, [])),
    ('joint_states', 'non_finite', _nan_joints),
    ('joint_states', 'out_of_order', lambda t: joint_msg(t - 0.5, joint_value(0))),
    ('actuation', 'missing_name',
     lambda t: actuation_msg(t, actuation_value(0), names=('chamber_0', 'x'))),
    ('environment', 'future_stamp', lambda t: environment_msg(t + 5.0, environment_value(0))),
]


def _with_encoding(msg, encoding):
    msg.encoding = encoding
    return msg


# ------------------------------------------------------------------ the test rig

class Rig:
    """Test-side node: sensor publishers, /clock, and what the ingestion node publishes."""

    def __init__(self, context):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from softmaint_interfaces.msg import (ActuatorState, EnvironmentReading, SensorWindow,
                                              TactileArray)
        self.node = rclpy.create_node('ingestion_test_rig', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        types = {'camera': (Image, 'camera/image_raw'), 'tactile': (TactileArray, 'tactile'),
                 'joint_states': (JointState, 'joint_states'),
                 'actuation': (ActuatorState, 'actuation'),
                 'environment': (EnvironmentReading, 'environment')}
        self.pubs = {s: self.node.create_publisher(t, topic, qos)
                     for s, (t, topic) in types.items()}
        self.clock_pub = self.node.create_publisher(Clock, '/clock', 10)
        self.windows, self.diagnostics = [], []
        self.node.create_subscription(SensorWindow, 'softmaint/window', self.windows.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                      100)
        self.queue = []          # (publish at sim time, source, message)
        self.sim = float(T0 - 1)

    def connected(self):
        return all(p.get_subscription_count() > 0 for p in self.pubs.values()) and \
            self.clock_pub.get_subscription_count() > 0 and \
            self.node.count_publishers('softmaint/window') > 0

    def schedule(self, at, source, msg):
        self.queue.append((at, source, msg))
        self.queue.sort(key=lambda item: item[0])

    def play(self, until):
        """Advance the sim clock to `until` at SPEED, publishing messages when due."""
        from rosgraph_msgs.msg import Clock
        wall0, sim0 = time.monotonic(), self.sim
        while True:
            self.sim = min(until, sim0 + (time.monotonic() - wall0) * SPEED)
            while self.queue and self.queue[0][0] <= self.sim:
                _, source, msg = self.queue.pop(0)
                self.pubs[source].publish(msg)
            self.clock_pub.publish(Clock(clock=_stamp(math.floor(self.sim * 100) / 100)))
            if self.sim >= until:
                return
            self.executor.spin_once(timeout_sec=0.005)

    def window(self, end):
        found = [w for w in self.windows if _seconds(w.header.stamp) == pytest.approx(end)]
        return found[0] if found else None

    def latest_diagnostics(self):
        return {s.name.split(': ')[-1]: s for s in self.diagnostics[-1].status}

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def _seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def _values(status):
    return {kv.key: kv.value for kv in status.values}


@pytest.fixture
def metadata(tmp_path):
    from softmaint_core.metadata import ModelMetadata
    from softmaint_core.spec import FIELD_SPEC
    meta = ModelMetadata(model_id='ingestion-test', sha256='0' * 64, members=1,
                         input_spec=FIELD_SPEC.with_normalisation(STATS))
    path = tmp_path / 'student.json'
    path.write_text(meta.to_json())
    return path, meta.input_spec


def _node_args(metadata_path, **params):
    args = ['-m', 'softmaint.ingestion_node', '--ros-args', '-p',
            f'model_metadata:={metadata_path}']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    return args


def _reliable_overrides():
    """Override QoS to reliable, deep queues on every sensor topic: nothing lost in the test."""
    params = {}
    for topic in ('/camera/image_raw', '/tactile', '/joint_states', '/actuation',
                  '/environment'):
        params[f'qos_overrides.{topic}.subscription.reliability'] = 'reliable'
        params[f'qos_overrides.{topic}.subscription.depth'] = 1000
    return params


@pytest.mark.slow
def test_windows_and_diagnostics_from_live_messages(spawn, ros_context, metadata):
    path, spec = metadata
    args = _node_args(path, use_sim_time='true', max_future_stamp=LEAD + 0.3,
                      max_reject_fraction=0.5, diagnostics_period=0.5, log_throttle=0.0,
                      **_reliable_overrides())
    proc = spawn(args, wait_for_line='ready')
    rig = Rig(ros_context)
    try:
        assert spin_until(rig.executor, rig.connected, 15.0), 'ingestion node not discovered'
        from rclpy.qos import ReliabilityPolicy
        info = rig.node.get_subscriptions_info_by_topic('/tactile')
        assert [i.qos_profile.reliability for i in info] == [ReliabilityPolicy.RELIABLE]

        for source in SOURCES:
            # tactile goes silent; the others run past the last check, whose diagnostics a
            # loaded machine may stamp a little after T0 + 5.5
            stop = T0 + 3.0 if source == 'tactile' else T0 + 6.5
            for stamp, msg in good_messages(source, T0, stop):
                rig.schedule(stamp - LEAD, source, msg)
        expected_rejects = {s: {} for s in SOURCES}
        for k, (source, reason, make) in enumerate(BAD_MESSAGES):
            at = T0 + 1.5 + 0.01 * k
            rig.schedule(at, source, make(at + LEAD))   # stamped like the good ones then
            expected_rejects[source][reason] = 1

        # Before the first /clock the node has no time to judge stamps by: not a reject. (If
        # it arrives after the first /clock, T0 - 1, the stamp is within max_future_stamp.)
        rig.pubs['tactile'].publish(tactile_msg(T0 - 0.5, tactile_value(0)))
        rig.play(T0 + 4.05)
        assert spin_until(rig.executor, lambda: rig.window(T0 + 4) is not None and _seconds(
            rig.diagnostics[-1].header.stamp) >= T0 + 4, 10.0)

        ends = [_seconds(w.header.stamp) for w in rig.windows if _seconds(w.header.stamp) > T0]
        for end in (T0 + 2, T0 + 3, T0 + 4):   # the hop timer's grid on the sim clock
            assert any(e == pytest.approx(end) for e in ends), ends
        _check_window(rig.window(T0 + 2), spec, T0 + 2, stale=())
        _check_window(rig.window(T0 + 3), spec, T0 + 3, stale=())   # bad ones left no trace
        _check_window(rig.window(T0 + 4), spec, T0 + 4, stale=('tactile',))
        sequences = [w.sequence for w in rig.windows]
        assert sequences == list(range(len(sequences)))

        diagnostics = rig.latest_diagnostics()
        assert set(diagnostics) == set(SOURCES)
        for source, status in diagnostics.items():
            values = _values(status)
            for reason in ('empty', 'shape', 'missing_name', 'non_finite', 'out_of_order',
                           'future_stamp', 'encoding', 'size'):
                assert int(values[f'rejected_{reason}']) == \
                    expected_rejects[source].get(reason, 0), (source, reason, values)
            assert status.hardware_id == '/'
        tactile = diagnostics['tactile']
        assert tactile.level == tactile.STALE and _values(tactile)['status'] == 'STALE'
        for source in ('camera', 'joint_states', 'actuation', 'environment'):
            status = diagnostics[source]
            assert status.level == status.OK, (source, status.message)
            assert _values(status)['status'] == 'AVAILABLE'
            assert _values(status)['out_of_training_range'] == 'none'
        assert float(_values(diagnostics['joint_states'])['rate_hz']) == pytest.approx(100, abs=2)
        assert float(_values(diagnostics['camera'])['rate_hz']) == pytest.approx(10.0)
        assert int(_values(diagnostics['environment'])['accepted']) == 4   # 100.5 ... 103.5

        # Parameters: bad values refused, good ones applied while running.
        # A training range of 0.001 std: every sensed value leaves it (WARN, still used).
        results = _set_parameters(rig, model_metadata='/elsewhere.json', max_reject_fraction=1.5,
                                  frozen_min_samples=1, max_training_std=0.0, stale_timeout=5.0,
                                  min_coverage=0.2)
        results += _set_parameters(rig, max_training_std=1e-3)
        assert [r.successful for r in results] == [False, False, False, False, True, True, True]
        assert 'read-only' in results[0].reason
        rig.play(T0 + 4.55)   # tactile silent for 1.5 s, a quarter of the window covered
        assert spin_until(rig.executor, lambda: _seconds(
            rig.diagnostics[-1].header.stamp) >= T0 + 4.5, 10.0)
        assert _values(rig.latest_diagnostics()['tactile'])['status'] == 'AVAILABLE'
        rig.play(T0 + 5.55)   # diagnostics after the window of T0 + 5, the first with it
        assert spin_until(rig.executor, lambda: _seconds(
            rig.diagnostics[-1].header.stamp) >= T0 + 5.5, 10.0)
        environment = rig.latest_diagnostics()['environment']
        assert environment.level == environment.WARN, environment.message
        assert "outside the model's training range: temperature=" in environment.message
        assert _values(environment)['status'] == 'AVAILABLE'
    finally:
        rig.close()
    proc.terminate()   # SIGTERM: ends cleanly
    output = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0 and 'Traceback' not in output, output
    for source, reason, _ in BAD_MESSAGES:   # every rejection logged (log_throttle 0 here)
        assert f'{source}: message rejected ({reason})' in output, output
    assert 'training standard deviations from the training mean (limit 0.001)' in output


def _set_parameters(rig, **values):
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    client = AsyncParameterClient(rig.node, 'softmaint_ingestion')
    assert client.wait_for_services(timeout_sec=10.0)
    results = []
    for name, value in values.items():   # one by one: each succeeds or fails on its own
        future = client.set_parameters([Parameter(name, value=value)])
        assert spin_until(rig.executor, future.done, 10.0)
        results += future.result().results
    return results


def _check_window(window, spec, end, stale):
    from softmaint_interfaces.msg import ModalityTensor
    assert window is not None, f'no window ending at {end}'
    assert window.spec_id == spec.spec_id
    assert window.header.frame_id == 'base_link'
    assert _seconds(window.start) == pytest.approx(end - 2.0)
    expected = expected_window(end)
    assert [m.name for m in window.modalities] == list(spec.names)
    assert list(window.available) == [m.name not in stale for m in window.modalities]
    for tensor, mod in zip(window.modalities, spec.modalities):
        assert tuple(tensor.shape) == mod.shape
        data = np.frombuffer(tensor.data, np.float32).reshape(mod.shape)
        if tensor.name in stale:
            assert tensor.status == ModalityTensor.STALE and not data.any()
            continue
        assert tensor.status == ModalityTensor.AVAILABLE
        assert tensor.coverage == pytest.approx(1.0)
        np.testing.assert_allclose(data, expected[tensor.name], rtol=1e-5, atol=1e-5,
                                   err_msg=f'{tensor.name} of the window ending at {end}')
    assert _seconds(window.last_input_stamp) == pytest.approx(end - 0.005)


def _grid_ends(windows, hop_ns):
    """Window ends [ns]; asserts they are multiples of hop, one hop apart."""
    ends = [w.header.stamp.sec * 10**9 + w.header.stamp.nanosec for w in windows]
    assert all(end % hop_ns == 0 for end in ends), ends
    assert all(b - a == hop_ns for a, b in zip(ends, ends[1:])), ends
    return ends


def test_window_ends_on_the_global_hop_grid_with_a_late_first_clock(spawn, ros_context,
                                                                    metadata):
    path, spec = metadata
    spawn(_node_args(path, use_sim_time='true'), wait_for_line='ready')
    rig = Rig(ros_context)
    try:
        assert spin_until(rig.executor, rig.connected, 15.0), 'ingestion node not discovered'
        rig.sim = T0 + 0.37          # the first /clock lands between grid points
        rig.play(T0 + 3.05)
        hop_ns = round(spec.hop * 1e9)
        assert spin_until(rig.executor, lambda: rig.window(T0 + 3) is not None, 10.0)
        ends = _grid_ends(rig.windows, hop_ns)
        assert ends[-1] == (T0 + 3) * 10**9 and ends[0] <= (T0 + 1) * 10**9, ends
    finally:
        rig.close()


def test_window_ends_on_the_global_hop_grid_of_system_time(spawn, ros_context, metadata):
    path, spec = metadata
    spawn(_node_args(path), wait_for_line='ready')
    rig = Rig(ros_context)
    try:
        assert spin_until(rig.executor, lambda: len(rig.windows) >= 3, 15.0)
        _grid_ends(rig.windows, round(spec.hop * 1e9))
    finally:
        rig.close()


def test_a_camera_the_model_cannot_read_is_unreadable_and_left_out(spawn, ros_context,
                                                                  tmp_path):
    """Uniform frames (signal-to-noise 0) against a model whose camera floor is 1."""
    from softmaint_core.metadata import ModelMetadata
    from softmaint_core.spec import FIELD_SPEC
    from softmaint_interfaces.msg import ModalityTensor
    spec = FIELD_SPEC.with_normalisation(STATS).with_min_snr(1.0)
    path = tmp_path / 'student.json'
    path.write_text(ModelMetadata(model_id='floor-test', sha256='0' * 64, members=1,
                                  input_spec=spec).to_json())
    proc = spawn(_node_args(path, use_sim_time='true', max_future_stamp=LEAD + 0.3,
                            diagnostics_period=0.5, **_reliable_overrides()),
                 wait_for_line='ready')
    rig = Rig(ros_context)
    try:
        assert spin_until(rig.executor, rig.connected, 15.0), 'ingestion node not discovered'
        for source in SOURCES:
            for stamp, msg in good_messages(source, T0, T0 + 3.5):
                rig.schedule(stamp - LEAD, source, msg)
        rig.play(T0 + 3.55)
        assert spin_until(rig.executor, lambda: rig.window(T0 + 3) is not None and _seconds(
            rig.diagnostics[-1].header.stamp) >= T0 + 3.5, 10.0)
        window = rig.window(T0 + 3)
        assert window.spec_id == spec.spec_id
        camera = window.modalities[spec.names.index('camera')]
        assert camera.status == ModalityTensor.UNREADABLE and not any(camera.data)
        assert list(window.available) == [name != 'camera' for name in spec.names]
        status = rig.latest_diagnostics()['camera']
        assert status.level == status.WARN and 'too dark or turbid' in status.message
        assert _values(status)['status'] == 'AVAILABLE'     # the sensor itself is sound
        assert 'signal-to-noise 0.00 below 1.00' in _values(status)['unreadable']
    finally:
        rig.close()
    proc.terminate()
    output = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0 and 'camera: frames too dark or turbid to read' in output, output


def test_node_refuses_to_start_without_metadata(spawn, tmp_path):
    proc = spawn(_node_args(tmp_path / 'none.json'))
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert 'cannot read model metadata' in output and 'none.json' in output


def test_a_sensor_the_robot_lacks_is_not_fitted_rather_than_stale(spawn, ros_context, metadata):
    """A robot without a camera must not look unhealthy forever; a fitted sensor that never
    reports must."""
    path, _ = metadata
    spawn(_node_args(path, sensors='[tactile, joint_states, actuation, environment]',
                     diagnostics_period=0.2), wait_for_line='ready')
    rig = Rig(ros_context)
    try:
        assert spin_until(rig.executor, lambda: rig.diagnostics, 15.0), 'no diagnostics'
        diagnostics = rig.latest_diagnostics()
        camera, tactile = diagnostics['camera'], diagnostics['tactile']
        assert camera.level == camera.OK and 'not fitted' in camera.message
        assert _values(camera)['fitted'] == 'False' and _values(camera)['status'] == 'ABSENT'
        assert tactile.level == tactile.STALE and _values(tactile)['fitted'] == 'True'
        assert rig.node.count_subscribers('camera/image_raw') == 0
        assert rig.node.count_subscribers('tactile') == 1
    finally:
        rig.close()


def test_node_refuses_unknown_sensor_names(spawn, metadata):
    path, _ = metadata
    proc = spawn(_node_args(path, sensors='[camera, sonar]'))
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "parameter sensors: ['sonar']" in output and "'joint_states'" in output
