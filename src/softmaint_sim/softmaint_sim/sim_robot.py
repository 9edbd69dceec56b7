"""
The simulated soft arm as a ROS 2 robot: publishes the field robot's sensor topics live.

    sim_robot --ros-args -p scenario:=default -p rate_factor:=1.0 -p duration:=90.0

Runs a scenario (config/scenarios/<name>.yaml or a path) through LiveSim and publishes camera
(sensor_msgs/Image rgb8), tactile (TactileArray 8x1, N, NaN = dead taxel), the bend sensors
(sensor_msgs/JointState, rad), actuation (ActuatorState, kPa), environment (EnvironmentReading)
and, for evaluation only, ground truth (GroundTruth). Header stamps are acquisition times on
the node clock. With publish_clock the node also publishes /clock (simulated time), so nodes
with use_sim_time follow it whatever rate_factor the CPU reaches. It serves the robot's
emergency stop (std_srvs/Trigger `emergency_stop`, what the agent calls on a shutdown): the
arm stops moving, both chambers held at base pressure, and wears no further; its sensors go on.
"""
import sys
import time

from builtin_interfaces.msg import Time
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.task import Future
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image, JointState
from softmaint_core import topics
from softmaint_interfaces.msg import (ActuatorState, EnvironmentReading, GroundTruth,
                                      TactileArray)
from softmaint_ros.node_main import run_node
from softmaint_ros.parameters import descriptor
from std_srvs.srv import Trigger

from .arm import PRESSURE_UNITS
from .live import FORCE_UNITS, LiveSim, Pacer, Reading, SAMPLE_PERIOD, taxel_pitch
from .scenario import load, ScenarioError

TICK = 0.01              # pacing timer period [s of wall time]
MAX_STEPS_PER_TICK = 50  # sensor periods per tick at most, so the executor stays responsive
# Fastest the pacing can run: MAX_STEPS_PER_TICK sensor periods per tick (50x real time);
# asked for more, it fell behind, skipped ahead and ran slower than asked (18x at 100).
MAX_RATE_FACTOR = MAX_STEPS_PER_TICK * SAMPLE_PERIOD / TICK
MAX_LAG = 1.0            # [s of sim time] behind schedule: skip ahead instead of catching up
CLOCK_STEPS = 5          # publish /clock at least every 5 sensor periods (50 ms simulated)
GROUND_TRUTH_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _time_msg(stamp_ns: int) -> Time:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


class SimRobot(Node):
    """Steps the simulated arm through a scenario and publishes what its sensors read."""

    def __init__(self):
        super().__init__('softmaint_sim')
        self.sim = None   # until the parameters are valid (destroy_node releases it if set)
        self.add_on_set_parameters_callback(self._validate)
        self.declare_parameter('scenario', 'default', descriptor(
            'scenario name in config/scenarios (or $SOFTMAINT_SCENARIOS) or a .yaml path',
            read_only=True))
        self.declare_parameter('rate_factor', 1.0, descriptor(
            'simulated seconds per wall-clock second', floats=(0.05, MAX_RATE_FACTOR)))
        self.declare_parameter('publish_clock', False, descriptor(
            'publish /clock with simulated time (for nodes with use_sim_time)', read_only=True))
        self.declare_parameter('camera_size', 64, descriptor(
            'camera image width and height [px]', read_only=True, ints=(16, 512)))
        self.declare_parameter('camera_rate', 5.0, descriptor(
            'camera frame rate [Hz of simulated time]', read_only=True, floats=(0.5, 30.0)))
        self.declare_parameter('duration', 0.0, descriptor(
            'stop after this many simulated seconds; 0 = run until stopped',
            floats=(0.0, 1.0e7)))
        self.declare_parameter('frame_id', 'softmaint_arm', descriptor(
            'frame_id of every header (the arm base)', read_only=True))
        param = self.get_parameter
        self.scenario = load(param('scenario').value)
        self.sim = LiveSim(self.scenario, param('camera_size').value, param('camera_rate').value)
        self.frame_id = param('frame_id').value
        self.pitch = taxel_pitch(self.scenario)
        overridable = QoSOverridingOptions.with_default_policies()
        self._outputs = {
            key: self.create_publisher(cls, topic, qos, qos_overriding_options=overridable)
            for key, cls, topic, qos in (
                ('camera', Image, topics.CAMERA, qos_profile_sensor_data),
                ('tactile', TactileArray, topics.TACTILE, qos_profile_sensor_data),
                ('joint_states', JointState, topics.JOINT_STATES, qos_profile_sensor_data),
                ('actuation', ActuatorState, topics.ACTUATION, qos_profile_sensor_data),
                ('environment', EnvironmentReading, topics.ENVIRONMENT,
                 qos_profile_sensor_data),
                ('truth', GroundTruth, topics.GROUND_TRUTH, GROUND_TRUTH_QOS))}
        self._clock_publisher = (self.create_publisher(ClockMsg, '/clock', 10)
                                 if param('publish_clock').value else None)
        # Stamps: with /clock, simulated time from a wall-clock epoch; without, the node clock
        # time at which each sample was due (the two agree at rate_factor 1). Set at the
        # first tick (_begin).
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._epoch_ns = self._start = self.pacer = None
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self.finished = Future()
        self._last_truth = None
        self.create_service(Trigger, topics.EMERGENCY_STOP, self._on_emergency_stop)
        self.create_timer(TICK, self._tick, clock=self._steady)
        duration, rate = param('duration').value, param('rate_factor').value
        self.get_logger().info(
            f'running scenario {self.scenario.name!r} ({self.scenario.domain} arm, '
            f'{len(self.scenario.events)} events) at {rate:g}x real time'
            + (f' for {duration:g} s' if duration else ' until stopped')
            + (', publishing /clock' if self._clock_publisher else ''))

    def _wall(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _validate(self, parameters) -> SetParametersResult:
        """Reject values the descriptors cannot express."""
        for p in parameters:
            if p.name == 'scenario':
                try:
                    load(p.value)
                except ScenarioError as err:
                    return SetParametersResult(successful=False, reason=str(err))
            if p.name == 'frame_id' and not p.value:
                return SetParametersResult(successful=False, reason='frame_id must not be empty')
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, parameters) -> None:
        for p in parameters:
            if p.name == 'rate_factor' and self.pacer is not None:
                self.pacer.set_rate(p.value, self._wall(), self.sim.time)
                self.get_logger().info(f'rate factor now {p.value:g}')

    def _on_emergency_stop(self, request, response):
        """Stop the arm (idempotent: a repeated call confirms the stop that holds)."""
        self.sim.emergency_stop()
        response.success = True
        response.message = (f'arm stopped at {self.sim.stopped_at:.2f} s of simulated time: '
                            'chambers at base pressure, no motion')
        self.get_logger().warning(f'emergency stop: {response.message}', once=True)
        return response

    def stamp_ns(self, sim_time: float) -> int:
        """Return the node-clock stamp [ns] of a sample acquired at `sim_time`."""
        if self._clock_publisher:
            return self._epoch_ns + round(sim_time * 1e9)
        return self._epoch_ns + round((self.pacer.wall(sim_time) - self._start) * 1e9)

    def _begin(self) -> None:
        """Anchor simulated time 0 at the first tick (not at construction: no start-up burst)."""
        self._start = self._wall()
        self._epoch_ns = (time.time_ns() if self._clock_publisher
                          else self.get_clock().now().nanoseconds)
        self.pacer = Pacer(self.get_parameter('rate_factor').value, self._start)

    def _tick(self) -> None:
        """Advance the simulation to where the pacer says it should be, publishing as it goes."""
        if self.finished.done():
            return
        if self.pacer is None:
            self._begin()
        now = self._wall()
        if self.pacer.due(now) - self.sim.time > MAX_LAG:
            self.get_logger().warning(
                f'{self.pacer.due(now) - self.sim.time:.1f} s behind at rate factor '
                f'{self.pacer.rate:g}: the CPU is too slow, skipping ahead'
                + (' (nodes following /clock are not affected)' if self._clock_publisher
                   else ''), throttle_duration_sec=10.0)
            self.pacer.set_rate(self.pacer.rate, now, self.sim.time)
        duration = self.get_parameter('duration').value
        end = min(self.pacer.due(now), duration) if duration else self.pacer.due(now)
        readings = []
        for step in range(1, MAX_STEPS_PER_TICK + 1):
            if self.sim.time + SAMPLE_PERIOD > end + 1e-9:
                break
            readings += self.sim.step()
            if step % CLOCK_STEPS == 0:
                self._flush(readings)
                readings = []
        self._flush(readings)
        if duration and self.sim.time >= duration - 1e-9:
            self.get_logger().info(
                f'scenario {self.scenario.name!r} finished after {self.sim.time:.1f} s')
            self.finished.set_result(True)

    def _flush(self, readings) -> None:
        """Publish /clock at the current simulated time first, then the readings (older)."""
        if self._clock_publisher:
            msg = ClockMsg()
            msg.clock = _time_msg(self.stamp_ns(self.sim.time))
            self._clock_publisher.publish(msg)
        for reading in readings:
            self._publish(reading)

    def _header(self, reading: Reading, msg) -> None:
        msg.header.stamp = _time_msg(self.stamp_ns(reading.stamp))
        msg.header.frame_id = self.frame_id

    def _publish(self, reading: Reading) -> None:
        if reading.kind == 'event':
            self.get_logger().info(f'[t={reading.stamp:6.1f} s] {reading.data["text"]}')
            return
        make = getattr(self, f'_{reading.kind}_messages')
        for topic, msg in make(reading.data):
            self._header(reading, msg)
            self._outputs[topic].publish(msg)

    def _camera_messages(self, data):
        image = data['image']
        msg = Image(height=image.shape[0], width=image.shape[1], encoding='rgb8',
                    is_bigendian=0, step=image.shape[1] * 3)
        msg.data = image.tobytes()
        yield 'camera', msg

    def _tactile_messages(self, data):
        yield 'tactile', TactileArray(
            rows=len(data['taxels']), cols=1, pitch=self.pitch, units=FORCE_UNITS,
            range_max=self.sim.range_max, data=data['taxels'].astype(np.float32).tolist())

    def _proprio_messages(self, data):
        yield 'joint_states', JointState(name=list(topics.BEND_JOINTS),
                                         position=data['bend'].tolist())
        yield 'actuation', ActuatorState(name=list(topics.ACTUATORS), units=PRESSURE_UNITS,
                                         command=data['command'].tolist(),
                                         achieved=data['achieved'].tolist())

    def _environment_messages(self, data):
        temperature, humidity, co2, pressure = (float(v) for v in data['values'])
        yield 'environment', EnvironmentReading(temperature=temperature, humidity=humidity,
                                                co2=co2, pressure=pressure)

    def _truth_messages(self, data):
        msg = GroundTruth(**{k: (float(v) if isinstance(v, float) else v)
                             for k, v in data.items()})
        key = (msg.fatigue_level, msg.damage_type, round(msg.urgency, 1))
        if key != self._last_truth:
            self._last_truth = key
            self.get_logger().info(
                f'truth: fatigue {msg.fatigue_level}, damage {msg.damage_name} '
                f'(severity {msg.damage_severity:.2f}), urgency {msg.urgency:.2f}, '
                f'stiffness {msg.stiffness_fraction:.2f}')
        yield 'truth', msg

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until reliable subscribers have the last ground truth (before exiting)."""
        self._outputs['truth'].wait_for_all_acked(Duration(seconds=timeout))

    def destroy_node(self):
        """Release the renderer with the node."""
        if self.sim is not None:
            self.sim.close()
        return super().destroy_node()


def describe_error(err: BaseException) -> str:
    """Why the sim robot cannot run, with a hint for the usual parameter-type mistake."""
    if isinstance(err, InvalidParameterTypeException):
        return f'{err} (write floating-point values with a decimal point, e.g. duration:=90.0)'
    return str(err)


def flush_finished(node: SimRobot) -> None:
    """Publish the last ground truth of a run that reached its duration (not of a stopped one)."""
    if node.finished.done():
        node.flush()


def main(args=None):
    """Run the sim robot until its duration is over, Ctrl-C or SIGTERM; 2 on a bad scenario."""
    return run_node(SimRobot, 'softmaint_sim', args,
                    fatal=(ScenarioError, InvalidParameterValueException,
                           InvalidParameterTypeException),
                    fatal_exit=2, describe=describe_error,
                    until=lambda node: node.finished.done(), finish=flush_finished)


if __name__ == '__main__':
    sys.exit(main())
