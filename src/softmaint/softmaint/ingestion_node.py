"""
Sensor ingestion node: turns the field sensors into time-aligned windows for the student.

Subscribes (sensor-data QoS, overridable with qos_overrides.<topic>.subscription.* parameters;
names remappable) to the camera image, tactile array, joint states (bend sensors by name),
actuator state and environment reading. Every message is checked (softmaint_core.messages and
.window say what); a bad one is counted by reason, logged (throttled, cut short) and dropped.
Every hop of the model's input spec (from the metadata JSON beside the
model) it publishes a SensorWindow on softmaint/window, and once a second one diagnostic status
per sensor on /diagnostics. Timers run on the node clock, so use_sim_time replays work.
A sensor whose values leave the model's training range (more than max_training_std training
standard deviations from its mean, softmaint_core.window) is still used, but its diagnostics
turn WARN and name the channels, and the node logs it once when it starts and when it ends.
A camera whose frames are too dark or turbid for the model (UNREADABLE: signal-to-noise below
the spec's min_snr) is left out of the window; it turns its diagnostics WARN and is logged
the same way.
Window ends fall on the global grid k * hop of the node clock (not on the node's start time), so
offline bag evaluation can rebuild the same windows: every multiple of hop in the bag.

The buffering, health checks and binning live in softmaint_core.window (shared with offline bag
evaluation); this node only moves messages in and out.

SensorWindow layout (the inference node's contract):
  header.stamp      window end: the latest multiple of hop on the node clock
  header.frame_id   parameter frame_id
  start             end - spec.window
  sequence          windows published since start (0, 1, ...)
  spec_id           InputSpec.spec_id of the metadata's input spec (with its normalisation)
  modalities[i]     one ModalityTensor per modality of the spec, in spec order:
                      name, status (AVAILABLE/STALE/INVALID/FROZEN/ABSENT/UNREADABLE),
                      shape = [steps, *features], data = float32 row-major, normalised,
                      zeros unless AVAILABLE, coverage [0, 1], rate [Hz]
                    FIELD_SPEC: camera [10, 3, 32, 32] (RGB); tactile [20, 8] [N];
                    proprio [20, 8] = bend_0..3 [rad], command chamber_0..1, achieved
                    chamber_0..1 [kPa]; environment [2, 4] = temperature, humidity, co2, pressure
  available[i]      status == AVAILABLE, same order
  last_input_stamp  newest accepted sample stamp in the window (zero when there is none)
"""
import array
import functools
from pathlib import Path
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from sensor_msgs.msg import Image
from softmaint_core import topics
from softmaint_core.image import (array_to_image, check_layout, ENCODINGS, image_msg_to_rgb,
                                  to_rgb_float)
from softmaint_core.inputs import brief
from softmaint_core.messages import message_readers, push_message
from softmaint_core.metadata import MetadataError, ModelMetadata
from softmaint_core.spec import SpecError
from softmaint_core.window import (HealthConfig, InputError, MAX_FROZEN_MIN_SAMPLES,
                                   NOT_HELD_AGAINST, REJECT_REASONS, Status, WindowAssembler)
from softmaint_interfaces.msg import ModalityTensor, SensorWindow
from softmaint_ros.diagnostics import declare_diagnostics_parameters, hardware_id, key_values
from softmaint_ros.message_types import message_class
from softmaint_ros.node_main import run_node
from softmaint_ros.parameters import descriptor
from softmaint_ros.stamps import time_msg

from .bringup import model_for

NODE_NAME = 'softmaint_ingestion'
HEALTH_PARAMETERS = ('stale_timeout', 'stale_periods', 'frozen_epsilon', 'frozen_min_samples',
                     'max_future_stamp', 'max_reject_fraction', 'min_coverage',
                     'max_training_std')
FRAME_PREFIX = 'expected_frame_ids.'

# source -> (message type, topic)
SUBSCRIPTIONS = {source: (message_class(msgtype), topic)
                 for source, (msgtype, topic) in topics.SENSORS.items()}


def cv_bridge_decoder():
    """
    Return a decoder that uses cv_bridge, or None when cv_bridge is missing or disagrees.

    Layouts are checked the same way as on the numpy path, so both reject the same messages; a
    probe image in every encoding must convert identically, else the numpy path is used (the
    PyPI cv-bridge is a ROS 1 port that fails on ROS 2 messages).
    """
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    bridge = CvBridge()

    def decode(msg: Image):
        check_layout(msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
        return to_rgb_float(bridge.imgmsg_to_cv2(msg, desired_encoding='passthrough'),
                            msg.encoding)

    try:
        for probe in _probe_images():
            if not np.array_equal(decode(probe), image_msg_to_rgb(probe)):
                return None
    except Exception:  # noqa: B902 - any failure of the probe means: do not use cv_bridge
        return None
    return decode


def _probe_images():
    """Small padded images in every supported encoding and byte order."""
    rng = np.random.default_rng(0)
    for encoding, (_, channels, full_scale) in ENCODINGS.items():
        pixels = rng.random((3, 5, channels)) * full_scale
        for bigendian in (False, True):
            step, data = array_to_image(pixels, encoding, bigendian, padding=3)
            yield Image(encoding=encoding, height=3, width=5, step=step,
                        is_bigendian=bigendian, data=data)


class IngestionNode(Node):
    """Buffers the field sensors and publishes windows and per-sensor diagnostics."""

    def __init__(self):
        super().__init__(NODE_NAME)
        self._declare_parameters()
        path = Path(self.get_parameter('model_metadata').value).expanduser()
        try:
            spec = ModelMetadata.from_json(path.read_text()).input_spec
        except OSError as err:
            raise MetadataError(f'cannot read model metadata {path}: {err}') from err
        self.assembler = WindowAssembler(spec, self._health_config())
        self._fitted = self._fitted_sensors([s.name for s in self.assembler.sources])
        self._modality_of = {s.name: s.modality for s in self.assembler.sources}
        self._out_of_range = {}     # modality -> {channel: largest |z|} of the latest window
        self._unreadable = {}       # modality -> why the latest window could not use it
        self._names = {'joint_states': tuple(self.get_parameter('joint_names').value),
                       'actuation': tuple(self.get_parameter('actuator_names').value)}
        if len(self._names['joint_states']) != spec.joints or \
                len(self._names['actuation']) != spec.actuators:
            raise SpecError(f'the model needs {spec.joints} joint_names and {spec.actuators} '
                            f'actuator_names, got {self._names}')
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        bridge = cv_bridge_decoder()
        self._decode_image = bridge or image_msg_to_rgb
        self._readers = message_readers(self.assembler, self._names['joint_states'],
                                        self._names['actuation'], self._decode_image)
        self._sensor_subscriptions = [   # not _subscriptions: rclpy's Node owns that name
            self.create_subscription(
                SUBSCRIPTIONS[source.name][0], SUBSCRIPTIONS[source.name][1],
                functools.partial(self._on_message, source.name), qos_profile_sensor_data,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
            for source in self.assembler.sources if source.name in self._fitted]
        self._window_pub = self.create_publisher(
            SensorWindow, topics.WINDOW, 10,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self._sequence = 0
        self._suppressed = dict.fromkeys(self._readers, 0)
        self._last_log = dict.fromkeys(self._readers, -float('inf'))
        self._hop_ns = round(spec.hop * 1e9)
        self._last_end_ns = -1
        self._window_timer = self.create_timer(self._until_next_hop(), self._publish_window)
        self._diagnostics_timer = self.create_timer(
            self.get_parameter('diagnostics_period').value, self._publish_diagnostics)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1)),
            post_callback=self._on_clock_jump)
        self.get_logger().info(
            f'ready: {path.name} spec {spec.spec_id}, window {spec.window} s every {spec.hop} s, '
            f'sensors {sorted(self._fitted)}, images via '
            f'{"cv_bridge" if bridge else "numpy"}')

    def _fitted_sensors(self, read_by_model) -> frozenset:
        """Sensors of parameter `sensors` that the model reads; SpecError on unknown names."""
        fitted = self.get_parameter('sensors').value
        unknown = sorted(set(fitted) - set(SUBSCRIPTIONS))
        if unknown or not fitted:
            raise SpecError(f'parameter sensors: {unknown or "empty"}; name one or more of '
                            f'{list(SUBSCRIPTIONS)}')
        return frozenset(fitted) & frozenset(read_by_model)

    def _declare_parameters(self) -> None:
        default = str(model_for().with_suffix('.json'))
        self.declare_parameter('model_metadata', default, ParameterDescriptor(
            description='model metadata JSON; its input spec sets window, hop, shapes and '
                        'normalisation', read_only=True))
        self.declare_parameter('sensors', list(SUBSCRIPTIONS), ParameterDescriptor(
            description='sensors this robot has; the others are not subscribed, their data '
                        "is always unavailable and their diagnostics say OK 'not fitted' "
                        'instead of STALE', read_only=True))
        self.declare_parameter('frame_id', 'base_link', ParameterDescriptor(
            description='frame_id of the published windows'))
        self.declare_parameter('joint_names', list(topics.BEND_JOINTS), ParameterDescriptor(
            description='joint_states names of the bend sensors, in proprio order',
            read_only=True))
        self.declare_parameter('actuator_names', list(topics.ACTUATORS), ParameterDescriptor(
            description='actuation names of the actuators, in proprio order', read_only=True))
        defaults = HealthConfig()
        self.declare_parameter('stale_timeout', defaults.stale_timeout, descriptor(
            'a sensor silent this long [s] (or stale_periods periods, if longer) is STALE',
            floats=(0.0, 60.0)))
        self.declare_parameter('stale_periods', defaults.stale_periods, descriptor(
            'silence in nominal sample periods of the modality before STALE',
            floats=(0.1, 100.0)))
        self.declare_parameter('frozen_epsilon', defaults.frozen_epsilon, descriptor(
            'largest change that counts as no change (FROZEN detection)', floats=(0.0, 1e3)))
        self.declare_parameter('frozen_min_samples', defaults.frozen_min_samples, descriptor(
            'equal samples needed to call a sensor FROZEN', ints=(2, MAX_FROZEN_MIN_SAMPLES)))
        self.declare_parameter('max_future_stamp', defaults.max_future_stamp, descriptor(
            'stamps further ahead of the node clock than this [s] are rejected',
            floats=(0.0, 60.0)))
        self.declare_parameter('max_reject_fraction', defaults.max_reject_fraction, descriptor(
            'a sensor with more rejects than this fraction of a window is INVALID',
            floats=(0.0, 0.99)))
        self.declare_parameter('min_coverage', defaults.min_coverage, descriptor(
            "a sensor with samples in fewer of the window's time steps is STALE",
            floats=(0.0, 1.0)))
        self.declare_parameter('max_training_std', defaults.max_training_std, descriptor(
            "a value further from the model's training mean than this many training standard "
            'deviations is outside what the model was trained on (diagnostics WARN; still used)',
            floats=(1e-3, 1e9)))
        for source in SUBSCRIPTIONS:
            self.declare_parameter(FRAME_PREFIX + source, '', ParameterDescriptor(
                description=f'header.frame_id that {source} messages must carry; others are '
                            "rejected (reason frame_id). '' = any"))
        declare_diagnostics_parameters(self)
        self.declare_parameter('log_throttle', 5.0, descriptor(
            'at most one rejection log per sensor this often [s]', floats=(0.0, 3600.0)))

    def _health_config(self, overrides=()) -> HealthConfig:
        values = {name: self.get_parameter(name).value for name in HEALTH_PARAMETERS}
        values.update({p.name: p.value for p in overrides if p.name in HEALTH_PARAMETERS})
        frames = {source: self.get_parameter(FRAME_PREFIX + source).value
                  for source in SUBSCRIPTIONS}
        frames.update({p.name[len(FRAME_PREFIX):]: p.value for p in overrides
                       if p.name.startswith(FRAME_PREFIX)})
        config = HealthConfig(**values, expected_frame_ids={
            source: frame for source, frame in frames.items() if frame})
        config.validate()
        return config

    def _validate_parameters(self, parameters) -> SetParametersResult:
        try:
            self._health_config(parameters)
        except (TypeError, ValueError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters) -> None:
        if any(p.name in HEALTH_PARAMETERS or p.name.startswith(FRAME_PREFIX)
               for p in parameters):
            self.assembler.config = self._health_config()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_message(self, source: str, msg) -> None:
        now = self._now()
        if now <= 0.0:   # use_sim_time before the first /clock: no time to place it against
            return
        error = push_message(self.assembler, self._readers, source, msg, now)
        if error is not None and error.reason not in NOT_HELD_AGAINST:
            self._log_reject(source, error)

    def _log_reject(self, source: str, error: InputError) -> None:
        """Log a rejection at most once per log_throttle per sensor, with the count skipped."""
        wall = time.monotonic()
        if wall - self._last_log[source] < self.get_parameter('log_throttle').value:
            self._suppressed[source] += 1
            return
        skipped = self._suppressed[source]
        self._last_log[source], self._suppressed[source] = wall, 0
        more = f' ({skipped} more rejected since the last report)' if skipped else ''
        self.get_logger().warning(f'{source}: message rejected ({error.reason}): '
                                  f'{brief(error)}{more}')

    def _on_clock_jump(self, jump) -> None:
        # A bag replayed in a loop, or a switch between system and sim time: the buffered
        # stamps belong to another timeline.
        self.get_logger().warning('clock jumped back or changed: forgetting buffered samples')
        self.assembler.reset()
        self._last_end_ns = -1

    def _until_next_hop(self) -> float:
        """Seconds from now to the next multiple of hop on the node clock."""
        return (self._hop_ns - self.get_clock().now().nanoseconds % self._hop_ns) * 1e-9

    def _publish_window(self) -> None:
        """Publish the window ending at the latest multiple of hop, then aim at the next one."""
        now_ns = self.get_clock().now().nanoseconds
        end_ns = now_ns - now_ns % self._hop_ns
        # Timers keep the phase of their start (arbitrary, or wherever the first /clock of a
        # replay landed): reschedule every call for the next grid point instead.
        self._window_timer.timer_period_ns = self._hop_ns - now_ns % self._hop_ns
        self._window_timer.reset()
        if end_ns <= self._last_end_ns:   # a late call already published this grid point
            return
        self._last_end_ns = end_ns
        window = self.assembler.assemble(end_ns * 1e-9)
        self._note_training_range({m.name: m.out_of_range for m in window.modalities})
        self._note_readability(window.modalities)
        msg = SensorWindow()
        msg.header.stamp = Time(nanoseconds=end_ns).to_msg()
        msg.header.frame_id = self.get_parameter('frame_id').value
        msg.start = time_msg(window.start)
        msg.sequence = self._sequence
        msg.spec_id = window.spec_id
        msg.modalities = [_tensor(m) for m in window.modalities]
        msg.available = [bool(a) for a in window.mask]
        if window.last_input_stamp is not None:
            msg.last_input_stamp = time_msg(window.last_input_stamp)
        self._window_pub.publish(msg)
        self._sequence += 1

    def _note_training_range(self, out_of_range) -> None:
        """Keep the latest window's channels outside the training range; log when they change."""
        limit = self.assembler.config.max_training_std
        for modality, channels in out_of_range.items():
            if set(channels) == set(self._out_of_range.get(modality, {})):
                continue
            if channels:
                worst = ', '.join(f'{k} at {v:,.0f}' for k, v in channels.items())
                self.get_logger().warning(
                    f'{modality}: {worst} training standard deviations from the training mean '
                    f'(limit {limit:g}): the student was not trained on such inputs, its '
                    'predictions may not hold')
            else:
                self.get_logger().info(f'{modality}: back within the training range')
        self._out_of_range = out_of_range

    def _note_readability(self, modalities) -> None:
        """Keep why the latest window's modalities were UNREADABLE; log when that changes."""
        unreadable = {
            m.name: (f'frames too dark or turbid to read: signal-to-noise {m.snr:.2f} below '
                     f'{self.assembler.spec.modality(m.name).min_snr:.2f}, where nearly all '
                     'the model was trained on lie; the model reads the other sensors')
            for m in modalities if m.status == Status.UNREADABLE}
        for name in unreadable.keys() - self._unreadable.keys():
            self.get_logger().warning(f'{name}: {unreadable[name]}')
        status = {m.name: m.status for m in modalities}
        for name in self._unreadable.keys() - unreadable.keys():
            if status[name] == Status.AVAILABLE:   # else its health check says what it is now
                self.get_logger().info(f'{name}: readable again')
        self._unreadable = unreadable

    def _publish_diagnostics(self) -> None:
        health = self.assembler.health(self._now())
        hardware = hardware_id(self)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [_diagnostic(f'{self.get_name()}: {name}', hardware, item,
                                  self.assembler.timeout(name), name in self._fitted,
                                  self._out_of_range.get(self._modality_of[name], {}),
                                  self._unreadable.get(self._modality_of[name], ''))
                      for name, item in health.items()]
        self._diagnostics_pub.publish(msg)


def _tensor(modality) -> ModalityTensor:
    values = array.array('f')
    values.frombytes(modality.data.astype('<f4', copy=False).tobytes())
    return ModalityTensor(name=modality.name, status=int(modality.status),
                          shape=list(modality.data.shape), data=values,
                          coverage=float(modality.coverage), rate=float(modality.rate))


def _level(health, fitted: bool) -> bytes:
    if not fitted:
        return DiagnosticStatus.OK
    if health.status == Status.AVAILABLE:
        return DiagnosticStatus.WARN if health.rejected_in_window else DiagnosticStatus.OK
    if health.status in (Status.STALE, Status.ABSENT):
        return DiagnosticStatus.STALE
    return DiagnosticStatus.ERROR


def _diagnostic(name: str, hardware_id: str, health, timeout: float,
                fitted: bool, out_of_range=None, unreadable: str = '') -> DiagnosticStatus:
    values = {
        'status': health.status.name,
        'fitted': str(fitted),
        'rate_hz': f'{health.rate:.2f}',
        'coverage': f'{health.coverage:.3f}',
        'age_s': f'{health.age:.3f}',
        'stale_timeout_s': f'{timeout:.3f}',
        'accepted': str(health.accepted),
        'rejected': str(sum(health.rejected.values())),
        'rejected_in_window': str(health.rejected_in_window),
    }
    values.update({f'rejected_{reason}': str(health.rejected[reason])
                   for reason in REJECT_REASONS})
    values['out_of_training_range'] = ', '.join(
        f'{k}={v:.1f}' for k, v in (out_of_range or {}).items()) or 'none'
    values['unreadable'] = unreadable or 'no'
    message = health.detail if fitted else 'not fitted on this robot (parameter sensors)'
    level = _level(health, fitted)
    warnings = ([f"outside the model's training range: {values['out_of_training_range']} std"]
                if out_of_range else []) + ([unreadable] if unreadable else [])
    if fitted and warnings:
        message = '; '.join([message] + warnings)
        level = DiagnosticStatus.WARN if level == DiagnosticStatus.OK else level
    return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id,
                            message=message,
                            values=key_values(values))


def main(args=None):
    """Run the ingestion node until Ctrl-C or SIGTERM; return 1 on an unusable spec."""
    return run_node(IngestionNode, NODE_NAME, args, fatal=(MetadataError, SpecError))


if __name__ == '__main__':
    raise SystemExit(main())
