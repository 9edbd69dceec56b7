"""
Suite benchmark: field-rate sensor load into the real node suite; what arrives, how late, cost.

    softmaint-bench-suite [--duration 30] [--robots 4] [--baselines transport,light,...]
                          [--dds-profile PATH|none] [--keep-going] [--json PATH]
    softmaint-bench-suite --duration 5 --robots 1                     (quick mode)

starts the suite with softmaint-bringup (one namespace per robot: robot0, robot1, ...) and one
load generator process per robot publishing, with reliable QoS:

    camera/image_raw   sensor_msgs/Image 640x480 rgb8     30 Hz
    tactile            TactileArray, 8 taxels            500 Hz
    joint_states       JointState bend_0..bend_3         200 Hz
    actuation          ActuatorState chamber_0, chamber_1  200 Hz
    environment        EnvironmentReading                 10 Hz

Values are synthetic but valid: every channel moves around the model's normalisation mean by
its standard deviation (so no sensor reads as FROZEN), camera frames are a moving bright arm on
the training images' mean colour with noise. Ingestion's sensor subscriptions are switched to
reliable QoS through its qos_overrides parameters (depth: one second of messages), in a parameter
file derived from the suite's own (config/softmaint.yaml).

Measured per phase, each for `--duration` seconds of load:
  - messages published (load generator) vs received by ingestion (accepted + rejected on its
    /diagnostics);
  - windows lost: gaps in SensorWindow.sequence, skipped hops (window end stamps further apart
    than the hop) and windows without a prediction;
  - latency from each window's last_input_stamp to the window, to its prediction (receive time
    at the benchmark's subscriber, same system clock) and to its decision (the agent's decision
    stamp: the agent publishes a decision only when it changes and every decision_period, so
    the moment it takes the decision is the one every window has);
  - CPU seconds (share of one core) and peak RSS of every node and load generator process, from
    /proc/<pid>/stat and /proc/<pid>/status; the machine's load average and busy share.

Every process gets the Fast DDS profile config/fastdds_profile.xml (16 MiB shared-memory
segment, 4 MiB UDP buffers) through FASTDDS_DEFAULT_PROFILES_FILE unless told otherwise.

Phases: the baselines first, then the sweep. `transport`: the same messages to a bare
subscriber process, no suite (raw DDS cost); `transport_default`: the same with Fast DDS's
default transports (no profile); `transport_events`: the same subscriber spun by rclpy's
EventsExecutor instead of the SingleThreadedExecutor the nodes use. `light`: robot0's suite at
the sim robot's load (64x64 camera at 5 Hz, 100 Hz vectors, 1 Hz environment). Sweep: 1, 2, ...
robots, each with its own suite and load generator, all at full load at once. A robot count
*keeps up* when no message is lost or refused and no window lost, and the p99 window-to-decision
latency is below the hop (each decision before the next window); it *meets the target* when that
p99 is also <= 50 ms. The sweep stops at the first robot count that does not keep up.

    softmaint-bench-suite load --namespace robot0 [--load field|light] [--duration 30]
    softmaint-bench-suite sink --namespace NS [--executor single|events]

are the load generator and the bare subscriber on their own (the load generator also works
against any running suite).
"""
import argparse
from collections import Counter
from dataclasses import asdict, dataclass, field
import heapq
import json
import math
import os
from pathlib import Path
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from . import bringup

# Pass criterion of a robot count.
MAX_P99_DECISION_MS = 50.0
# Reliable history depth of every sensor stream, in seconds of messages.
QUEUE_SECONDS = 1.0
SOURCES = ('camera', 'tactile', 'joint_states', 'actuation', 'environment')
# How long the suite may take to start (imports, model checks) on a busy machine [s].
START_TIMEOUT = 90.0
# How long counts may take to settle after the load stops [s].
SETTLE_TIMEOUT = 15.0
GENERATOR_KEYS = ('refused', 'all_acked', 'late_share', 'late_ms_p99')
BASELINES = ('transport', 'transport_default', 'transport_events', 'light')
NODES = ('softmaint_ingestion', 'softmaint_inference', 'softmaint_agent')
LATENCIES = ('input_to_window', 'input_to_prediction', 'input_to_decision')


@dataclass(frozen=True)
class Load:
    """Rates [Hz] of the five sensor streams of one robot and the camera's size."""

    name: str
    rates: Dict[str, float]
    camera_height: int
    camera_width: int

    def describe(self) -> str:
        """One line: the camera size and every rate."""
        rates = ', '.join(f'{s} {r:g} Hz' for s, r in self.rates.items())
        return f'camera {self.camera_width}x{self.camera_height} rgb8; {rates}'


LOADS = {
    'field': Load('field', {'camera': 30.0, 'tactile': 500.0, 'joint_states': 200.0,
                            'actuation': 200.0, 'environment': 10.0}, 480, 640),
    'light': Load('light', {'camera': 5.0, 'tactile': 100.0, 'joint_states': 100.0,
                            'actuation': 100.0, 'environment': 1.0}, 64, 64),
}


def percentiles(samples: Sequence[float]) -> Dict[str, float]:
    """Return count, p50, p95, p99 and max of samples (NaN when there are none)."""
    if len(samples) == 0:
        return {'n': 0, 'p50': math.nan, 'p95': math.nan, 'p99': math.nan, 'max': math.nan}
    values = np.percentile(np.asarray(samples, dtype=float), [50, 95, 99, 100])
    named = zip(('p50', 'p95', 'p99', 'max'), (float(v) for v in values))
    return {'n': len(samples), **dict(named)}


# ---------------------------------------------------------------------------- /proc


def process_usage(pid: int) -> Optional[Dict[str, float]]:
    """CPU seconds (user + system) and peak and current RSS [MiB] of a process; None if gone."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
        status = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may hold spaces); utime and stime are
    # fields 14 and 15 of proc(5), so 11 and 12 counted from the state field.
    after_name = stat.rsplit(')', 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])
    memory = {}
    for line in status.splitlines():
        key, _, value = line.partition(':')
        if key in ('VmHWM', 'VmRSS'):
            memory[key] = int(value.split()[0]) / 1024.0
    return {'cpu_s': ticks / os.sysconf('SC_CLK_TCK'), 'peak_rss_mib': memory.get('VmHWM', 0.0),
            'rss_mib': memory.get('VmRSS', 0.0)}


def machine_times() -> Tuple[float, float]:
    """Busy and total CPU seconds of the machine since boot (all cores), from /proc/stat."""
    values = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    idle = values[3] + values[4]          # idle + iowait
    total = sum(values[:8])               # guest time is already counted in user
    tick = os.sysconf('SC_CLK_TCK')
    return (total - idle) / tick, total / tick


def load_average() -> Tuple[float, float, float]:
    """Return the 1, 5 and 15 minute load averages."""
    return tuple(float(v) for v in Path('/proc/loadavg').read_text().split()[:3])


# ---------------------------------------------------------------------------- sensor content


class SyntheticSensors:
    """Valid, moving sensor messages around the model's normalisation statistics."""

    FRAMES = 30            # distinct camera frames, cycled
    MOTION_HZ = 0.5        # arm motion frequency

    def __init__(self, load: Load, seed: int = 0):
        from softmaint_core.metadata import ModelMetadata
        metadata = bringup.model_for().with_suffix('.json')
        self.spec = ModelMetadata.from_json(metadata.read_text()).input_spec
        self.rng = np.random.default_rng(seed)
        self.frames = self._frames(load.camera_height, load.camera_width)
        self.load = load
        self._frame = 0

    def _frames(self, height: int, width: int) -> List[bytes]:
        """Camera frames: a bright arm swinging over the training images' mean colour."""
        camera = self.spec.modality('camera')
        background = np.asarray(camera.mean) * 255.0
        rows, cols = np.mgrid[0:height, 0:width]
        frames = []
        for k in range(self.FRAMES):
            angle = 0.6 * math.sin(2 * math.pi * k / self.FRAMES)
            # distance of every pixel from a line through the bottom centre at `angle`
            x, y = cols - width / 2, height - rows
            distance = np.abs(x * math.cos(angle) - y * math.sin(angle))
            arm = np.clip(1.0 - distance / (0.04 * width), 0.0, 1.0)[..., None]
            noise = self.rng.normal(0.0, 4.0, (height, width, 3))
            pixels = background + arm * (200.0 - background) + noise
            frames.append(np.clip(pixels, 0, 255).astype(np.uint8).tobytes())
        return frames

    def _wave(self, modality: str, t: float, low: Optional[float] = None) -> List[float]:
        spec = self.spec.modality(modality)
        phase = np.arange(len(spec.mean)) * 0.7
        values = np.asarray(spec.mean) + np.asarray(spec.std) * (
            0.8 * np.sin(2 * math.pi * self.MOTION_HZ * t + phase)
            + 0.05 * self.rng.standard_normal(len(spec.mean)))
        if low is not None:
            values = np.maximum(values, low)
        return values.tolist()

    def message(self, source: str, stamp, t: float):
        """Return the next message of `source` stamped `stamp` at time t [s since start]."""
        from sensor_msgs.msg import Image, JointState
        from softmaint_core import topics
        from softmaint_interfaces.msg import ActuatorState, EnvironmentReading, TactileArray
        if source == 'camera':
            self._frame = (self._frame + 1) % len(self.frames)
            msg = Image(height=self.load.camera_height, width=self.load.camera_width,
                        encoding='rgb8', step=3 * self.load.camera_width)
            msg.data = self.frames[self._frame]
        elif source == 'tactile':
            taxels = self.spec.modality('tactile').features[0]
            msg = TactileArray(rows=1, cols=taxels, pitch=0.03, units='N', range_max=20.0,
                               data=self._wave('tactile', t, low=0.0))
        elif source == 'joint_states':
            msg = JointState(name=list(topics.BEND_JOINTS),
                             position=self._wave('proprio', t)[:len(topics.BEND_JOINTS)])
        elif source == 'actuation':
            pressures = self._wave('proprio', t, low=0.0)[len(topics.BEND_JOINTS):]
            half = len(pressures) // 2
            msg = ActuatorState(name=list(topics.ACTUATORS), units='kPa',
                                command=pressures[:half], achieved=pressures[half:])
        else:
            temperature, humidity, co2, pressure = self._wave('environment', t, low=0.0)
            msg = EnvironmentReading(temperature=temperature, humidity=min(humidity, 1.0),
                                     co2=co2, pressure=pressure)
        msg.header.stamp = stamp
        msg.header.frame_id = 'base_link'
        return msg


# ---------------------------------------------------------------------------- QoS and params


def reliable_qos(rate: float):
    """Reliable, keep-last QoS holding QUEUE_SECONDS of a stream at `rate`."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      depth=max(10, math.ceil(rate * QUEUE_SECONDS)))


def sensor_topics(namespace: str) -> Dict[str, Tuple[type, str]]:
    """Source -> (message type, fully qualified topic) in `namespace`."""
    from softmaint.ingestion_node import SUBSCRIPTIONS
    prefix = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return {source: (msg_type, f'{prefix}/{topic}')
            for source, (msg_type, topic) in SUBSCRIPTIONS.items()}


def bench_parameters(base_file: Path, namespaces: Sequence[str], log_dir: Path) -> dict:
    """
    Return the suite's parameters for the benchmark.

    The base file's values for every namespace, plus reliable QoS on ingestion's sensor
    subscriptions and a private maintenance log per robot. The base file is keyed by bare node
    names, which rcl matches only without a namespace; keys become /**/<node> so that the same
    values reach the nodes in every namespace.
    """
    base = yaml.safe_load(base_file.read_text()) or {}
    params = {f'/**/{name.lstrip("/")}': section for name, section in base.items()}
    max_rates = {s: max(load.rates[s] for load in LOADS.values()) for s in SOURCES}
    for namespace in namespaces:
        overrides = {}
        for source, (_, topic) in sensor_topics(namespace).items():
            qos = reliable_qos(max_rates[source])
            overrides[topic] = {'subscription': {'reliability': 'reliable',
                                                 'history': 'keep_last', 'depth': qos.depth}}
        params[f'/{namespace}/softmaint_ingestion'] = {
            'ros__parameters': {'qos_overrides': overrides}}
        params[f'/{namespace}/softmaint_agent'] = {
            'ros__parameters': {'log_path': str(log_dir / f'{namespace}.db')}}
    return params


def default_dds_profile() -> Optional[Path]:
    """config/fastdds_profile.xml of the installed package or the source tree, if present."""
    for root in (bringup.share_dir(), Path(__file__).resolve().parents[3]):
        path = root / 'config' / 'fastdds_profile.xml'
        if path.is_file():
            return path
    return None


# ---------------------------------------------------------------------------- load generator


def generate(namespace: str, load: Load, duration: float, match_timeout: float = 30.0) -> dict:
    """
    Publish `load` into `namespace` for `duration` seconds; return what was published.

    Waits until every topic has a subscriber. Each message is stamped with the system clock
    when it is published; a stream that falls behind its schedule catches up (lateness is
    reported), so the count published is rate x duration unless the machine is saturated.
    """
    import rclpy
    from rclpy.duration import Duration
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    sensors = SyntheticSensors(load)
    node = rclpy.create_node('softmaint_bench_load', namespace=namespace)
    try:
        publishers = {source: node.create_publisher(msg_type, topic,
                                                    reliable_qos(load.rates[source]))
                      for source, (msg_type, topic) in sensor_topics(namespace).items()}
        deadline = time.monotonic() + match_timeout
        while any(p.get_subscription_count() == 0 for p in publishers.values()):
            if time.monotonic() > deadline:
                missing = [s for s, p in publishers.items() if p.get_subscription_count() == 0]
                raise TimeoutError(f'no subscriber on {missing} in {namespace!r} after '
                                   f'{match_timeout} s')
            time.sleep(0.05)
        print('publishing', flush=True)
        counts, refused, lateness = dict.fromkeys(SOURCES, 0), dict.fromkeys(SOURCES, 0), []
        start_wall, start, start_cpu = time.time(), time.monotonic(), time.process_time()
        schedule = [(start, source) for source in SOURCES]
        heapq.heapify(schedule)
        while schedule[0][0] < start + duration:
            due, source = schedule[0]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                lateness.append(-delay)
            now = node.get_clock().now()
            try:
                publishers[source].publish(
                    sensors.message(source, now.to_msg(), now.nanoseconds * 1e-9 - start_wall))
                counts[source] += 1
            except _rclpy.RCLError:    # a reliable writer whose history is full of unacked samples
                refused[source] += 1
            heapq.heapreplace(schedule, (due + 1.0 / load.rates[source], source))
        end_wall, cpu = time.time(), time.process_time() - start_cpu
        acked = all(p.wait_for_all_acked(Duration(seconds=10.0))
                    for p in publishers.values())
        late_ms = np.asarray(lateness) * 1e3
        return {'namespace': namespace, 'load': load.name, 'start': start_wall,
                'end': end_wall, 'published': counts, 'refused': refused,
                'all_acked': bool(acked),
                'late_share': len(lateness) / max(1, sum(counts.values())),
                'late_ms_p99': float(np.percentile(late_ms, 99)) if len(late_ms) else 0.0,
                'usage': {'cpu_s': cpu, 'cpu_share': cpu / (end_wall - start_wall),
                          'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                          / 1024.0}}
    finally:
        node.destroy_node()


def load_main(args: argparse.Namespace) -> int:
    """Run one load generator; print its summary as one JSON line."""
    import rclpy
    rclpy.init()
    try:
        print(json.dumps(generate(args.namespace, LOADS[args.load], args.duration)),
              flush=True)
    except TimeoutError as err:
        print(f'softmaint-bench-suite load: error: {err}', file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
    return 0


# ---------------------------------------------------------------------------- bare subscriber


def sink_main(args: argparse.Namespace) -> int:
    """Subscribe to the sensor topics like ingestion does, count; print JSON on SIGINT/SIGTERM."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from rclpy.signals import SignalHandlerOptions
    from softmaint_core.shutdown import spin_until_stopped, stop_on_signals
    # Spun like the ingestion node: our own signal handling, spin_once in a loop (the
    # EventsExecutor's spin() does not return on rclpy's SIGINT shutdown).
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node = rclpy.create_node('softmaint_bench_sink', namespace=args.namespace)
    counts, latency_ms = dict.fromkeys(SOURCES, 0), {s: [] for s in SOURCES}

    def receive(source, msg):
        now = node.get_clock().now().nanoseconds
        counts[source] += 1
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latency_ms[source].append((now - stamp) / 1e6)

    rates = {s: max(load.rates[s] for load in LOADS.values()) for s in SOURCES}
    for source, (msg_type, topic) in sensor_topics(args.namespace).items():
        node.create_subscription(msg_type, topic, lambda m, s=source: receive(s, m),
                                 reliable_qos(rates[source]))
    executor = EventsExecutor() if args.executor == 'events' else SingleThreadedExecutor()
    executor.add_node(node)
    print('subscribed', flush=True)
    try:
        spin_until_stopped(executor, stop)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({'received': counts,
                      'latency_ms': {s: percentiles(v) for s, v in latency_ms.items()}}),
          flush=True)
    return 0


# ---------------------------------------------------------------------------- child processes


class Child:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, name: str, cmd: List[str], env: Dict[str, str]):
        self.name = name
        self.lines: List[str] = []
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip('\n'))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """Wait for an output line matching `pattern`; raise RuntimeError naming why not."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f'{self.name} exited with {self.proc.returncode} '
                                       f'before printing {pattern!r}:\n{self.tail()}')
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f'{self.name} did not print {pattern!r} in {timeout} s:'
                                       f'\n{self.tail()}')
                self.changed.wait(min(left, 0.5))

    def matches(self, pattern: str, since: int = 0) -> List[re.Match]:
        """Output lines from line `since` on matching `pattern`."""
        regex = re.compile(pattern)
        with self.changed:
            return [m for m in map(regex.search, self.lines[since:]) if m]

    def json_result(self, timeout: float) -> dict:
        """Wait for the process to end and return its last output line as JSON."""
        self.proc.wait(timeout)
        self._reader.join(5.0)
        if self.proc.returncode != 0 or not self.lines:
            raise RuntimeError(f'{self.name} exited with {self.proc.returncode}:\n{self.tail()}')
        return json.loads(self.lines[-1])

    def tail(self, lines: int = 20) -> str:
        """Return the last output lines."""
        return '\n'.join(self.lines[-lines:])

    def stop(self, timeout: float) -> None:
        """SIGINT, then SIGKILL after `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5.0)


def child_env(dds_profile: Optional[Path]) -> Dict[str, str]:
    """Environment of the children: ours, with `dds_profile` (or none), without the guard."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('_ROS_WHEELS_BOOTSTRAP_COMPLETE', None)
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if dds_profile is not None:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(dds_profile)
    return env


def bench_command(*args: str) -> List[str]:
    """Command line of this module with `args`."""
    return [sys.executable, '-m', 'softmaint.bench_suite', *args]


class Suite:
    """One robot's node suite started through softmaint-bringup, with the node pids."""

    def __init__(self, namespace: str, params_file: Path, env: Dict[str, str]):
        self.namespace = namespace
        self.child = Child(f'bringup {namespace}', [
            sys.executable, '-m', 'softmaint.bringup', f'namespace:={namespace}',
            f'params_file:={params_file}', 'log_level:=warn'], env)
        self.pids = {node: int(self.child.wait_for(
            rf'started {node} \(pid (\d+)\)', START_TIMEOUT).group(1)) for node in NODES}

    def warnings(self, since: int = 0) -> List[str]:
        """Warning and error lines the nodes printed after output line `since`."""
        return [m.string for m in self.child.matches(r'\[(WARN|ERROR|FATAL)\]', since)]

    def stop(self) -> None:
        """Stop bringup (it stops the nodes); kill any node left over."""
        self.child.stop(bringup.SHUTDOWN_GRACE + 10.0)
        for pid in self.pids.values():
            if process_usage(pid) is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ---------------------------------------------------------------------------- probe


@dataclass
class WindowRecord:
    """What the probe saw of one SensorWindow."""

    sequence: int
    end_ns: int
    last_input_ns: int
    received_ns: int
    unavailable: Tuple[str, ...]        # 'name:STATUS' of each modality that is not AVAILABLE
    prediction_ns: Optional[int] = None
    decision_ns: Optional[int] = None


@dataclass
class RobotView:
    """Everything the probe collects for one namespace."""

    windows: Dict[int, WindowRecord] = field(default_factory=dict)     # by end stamp
    # Predictions and decisions that reached the probe before their window (window end -> ns).
    early_predictions: Dict[int, int] = field(default_factory=dict)
    early_decisions: Dict[int, int] = field(default_factory=dict)
    ingestion: Dict[str, Tuple[int, int]] = field(default_factory=dict)   # accepted, rejected
    ingestion_reports: int = 0
    decisions: int = 0


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class Probe:
    """An rclpy node in this process that watches windows, predictions, decisions, diagnostics."""

    def __init__(self):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('softmaint_bench_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.robots: Dict[str, RobotView] = {}
        from diagnostic_msgs.msg import DiagnosticArray
        from softmaint_core import topics
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics,
                                      100)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: B902 - the context shut down under the spin
                if self.context.ok():
                    raise

    def _now(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def watch(self, namespace: str) -> None:
        """Subscribe to the suite's outputs in `namespace`."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from softmaint_core import topics
        from softmaint_interfaces.msg import (MaintenanceDecision, MaintenancePrediction,
                                              SensorWindow)
        with self.lock:
            self.robots[namespace] = RobotView()
        ns = f'/{namespace}/'
        latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(SensorWindow, ns + topics.WINDOW,
                                      lambda m: self._on_window(namespace, m), 50)
        self.node.create_subscription(MaintenancePrediction, ns + topics.PREDICTION,
                                      lambda m: self._on_prediction(namespace, m), 50)
        self.node.create_subscription(MaintenanceDecision, ns + topics.DECISION,
                                      lambda m: self._on_decision(namespace, m), latched)

    def _on_window(self, namespace: str, msg) -> None:
        from softmaint_core.window import Status
        received = self._now()
        end = _ns(msg.header.stamp)
        unavailable = tuple(f'{t.name}:{Status(t.status).name}' for t in msg.modalities
                            if t.status != Status.AVAILABLE)
        record = WindowRecord(msg.sequence, end, _ns(msg.last_input_stamp), received,
                              unavailable)
        with self.lock:
            robot = self.robots[namespace]
            record.prediction_ns = robot.early_predictions.pop(end, None)
            record.decision_ns = robot.early_decisions.pop(end, None)
            robot.windows[end] = record

    def _on_prediction(self, namespace: str, msg) -> None:
        received, window_end = self._now(), _ns(msg.header.stamp)
        with self.lock:
            robot = self.robots[namespace]
            record = robot.windows.get(window_end)
            if record is None:          # the prediction overtook the window on its way here
                robot.early_predictions.setdefault(window_end, received)
            elif record.prediction_ns is None:
                record.prediction_ns = received

    def _on_decision(self, namespace: str, msg) -> None:
        window_end, taken = _ns(msg.prediction_stamp), _ns(msg.header.stamp)
        with self.lock:
            robot = self.robots[namespace]
            robot.decisions += 1
            if not window_end:          # the watchdog's, not about a window
                return
            record = robot.windows.get(window_end)
            if record is None:          # the decision overtook the window on its way here
                robot.early_decisions.setdefault(window_end, taken)
            elif record.decision_ns is None:
                record.decision_ns = taken

    def _on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                robot = self.robots.get(status.hardware_id.strip('/'))
                node, _, source = status.name.partition(': ')
                if robot is None or node != 'softmaint_ingestion' or source not in SOURCES:
                    continue
                values = {kv.key: kv.value for kv in status.values}
                robot.ingestion[source] = (int(values['accepted']), int(values['rejected']))
                robot.ingestion_reports += 1

    def wait(self, condition, timeout: float) -> bool:
        """Poll `condition()` (under the lock) until true or `timeout`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if condition():
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def ready(self, namespaces: Sequence[str], timeout: float) -> None:
        """
        Wait until every suite is up; raise RuntimeError after `timeout` seconds.

        Up: ingestion reports, inference reads windows and writes predictions, the agent reads
        them and has published a decision. Without sensor input there are no predictions
        (inference skips windows with nothing available), so that decision is the watchdog's.
        """
        from softmaint_core import topics

        def up(ns):
            robot = self.robots[ns]
            return (len(robot.ingestion) == len(SOURCES) and robot.decisions > 0
                    and self.node.count_subscribers(f'/{ns}/{topics.WINDOW}') >= 2
                    and self.node.count_publishers(f'/{ns}/{topics.PREDICTION}') >= 1
                    and self.node.count_subscribers(f'/{ns}/{topics.PREDICTION}') >= 2)
        if not self.wait(lambda: all(up(ns) for ns in namespaces), timeout):
            raise RuntimeError(f'the suites {list(namespaces)} were not all up within '
                               f'{timeout} s')

    def ingestion_qos(self, namespace: str) -> Dict[str, str]:
        """Reliability of ingestion's subscription to each sensor topic (seen by discovery)."""
        qos = {}
        for source, (_, topic) in sensor_topics(namespace).items():
            for info in self.node.get_subscriptions_info_by_topic(topic):
                if info.node_name == 'softmaint_ingestion':
                    qos[source] = info.qos_profile.reliability.name.lower()
        return qos

    def ingestion_counts(self, namespace: str) -> Dict[str, Tuple[int, int]]:
        """Messages ingestion accepted and rejected per source so far."""
        with self.lock:
            return {s: self.robots[namespace].ingestion.get(s, (0, 0)) for s in SOURCES}

    def settle(self, namespaces: Sequence[str], after_ns: int, hop_ns: int,
               timeout: float) -> bool:
        """
        Wait for the counts to settle after the load; return False after `timeout` seconds.

        Settled: ingestion's counts did not change over two reports and a window ending a hop
        after `after_ns` arrived (the windows before it had a hop to get their prediction).
        """
        deadline = time.monotonic() + timeout
        for namespace in namespaces:
            robot = self.robots[namespace]
            previous = None
            while True:
                with self.lock:
                    reports, counts = robot.ingestion_reports, dict(robot.ingestion)
                    finished = any(end >= after_ns + hop_ns for end in robot.windows)
                if finished and previous is not None and counts == previous[1] \
                        and reports >= previous[0] + len(SOURCES):
                    break
                if previous is None or reports >= previous[0] + len(SOURCES):
                    previous = (reports, counts)
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
        return True

    def windows(self, namespace: str, start_ns: int, end_ns: int) -> List[WindowRecord]:
        """Windows of `namespace` ending in [start_ns, end_ns], in order."""
        with self.lock:
            return sorted((r for r in self.robots[namespace].windows.values()
                           if start_ns <= r.end_ns <= end_ns), key=lambda r: r.end_ns)

    def close(self) -> None:
        """Shut the probe's context down."""
        self.context.try_shutdown()
        self._thread.join(5.0)


# ---------------------------------------------------------------------------- phases


def window_metrics(records: List[WindowRecord], hop_ns: int) -> dict:
    """Lost windows and latencies [ms] of a robot's windows in one phase."""
    sequence_gaps = sum(b.sequence - a.sequence - 1 for a, b in zip(records, records[1:]))
    skipped_hops = sum(max(0, round((b.end_ns - a.end_ns) / hop_ns) - 1)
                       for a, b in zip(records, records[1:]))
    unpredicted = sum(r.prediction_ns is None for r in records)
    latency = {name: [] for name in LATENCIES}
    for r in records:
        if not r.last_input_ns:
            continue
        latency['input_to_window'].append((r.received_ns - r.last_input_ns) / 1e6)
        if r.prediction_ns is not None:
            latency['input_to_prediction'].append((r.prediction_ns - r.last_input_ns) / 1e6)
        if r.decision_ns is not None:
            latency['input_to_decision'].append((r.decision_ns - r.last_input_ns) / 1e6)
    return {'windows': len(records), 'complete_windows': sum(not r.unavailable for r in records),
            'unavailable': dict(Counter(m for r in records for m in r.unavailable)),
            'decided': sum(r.decision_ns is not None for r in records),
            'sequence_gaps': sequence_gaps, 'skipped_hops': skipped_hops,
            'unpredicted': unpredicted, 'lost_windows': sequence_gaps + skipped_hops
            + unpredicted, 'latency_ms': latency}


def usage_between(before: Dict[str, dict], after: Dict[str, dict], wall: float) -> dict:
    """CPU seconds and share of one core over `wall` seconds, peak RSS, per process name."""
    usage = {}
    for name, start in before.items():
        end = after.get(name) or start
        cpu = end['cpu_s'] - start['cpu_s']
        usage[name] = {'cpu_s': cpu, 'cpu_share': cpu / wall if wall > 0 else math.nan,
                       'peak_rss_mib': end['peak_rss_mib']}
    return usage


def snapshot(pids: Dict[str, int]) -> Dict[str, dict]:
    """process_usage of every named pid that is still running."""
    return {name: u for name, u in ((n, process_usage(p)) for n, p in pids.items()) if u}


class Bench:
    """The benchmark's suites, probe and phases."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.env = child_env(args.dds_profile)
        if args.dds_profile is not None:   # the probe in this process uses the same transports
            os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(args.dds_profile)
        from softmaint_core.metadata import ModelMetadata
        metadata = bringup.model_for().with_suffix('.json')
        self.spec = ModelMetadata.from_json(metadata.read_text()).input_spec
        self.suites: List[Suite] = []
        self.probe = Probe()

    def namespaces(self, robots: int) -> List[str]:
        """Namespaces of the first `robots` robots."""
        return [f'robot{i}' for i in range(robots)]

    def start_suites(self, robots: int) -> None:
        """Start suites until `robots` run; wait until each turns windows into decisions."""
        params_file = self.workdir / 'params.yaml'
        names = self.namespaces(robots)
        params = bench_parameters(Path(bringup.arguments()['params_file'][0]), names,
                                  self.workdir)
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        started = []
        for namespace in names[len(self.suites):]:
            self.probe.watch(namespace)
            suite = Suite(namespace, params_file, self.env)
            self.suites.append(suite)
            started.append(namespace)
        self.probe.ready(started, START_TIMEOUT)

    def run_generators(self, namespaces: Sequence[str], load: Load, watched: Dict[str, int],
                       env: Dict[str, str]) -> Tuple[List[dict], Dict[str, dict], dict]:
        """Run one load generator per namespace; return their results, usage, machine load."""
        gens = [Child(f'load {ns}', bench_command('load', '--namespace', ns, '--load',
                                                  load.name, '--duration',
                                                  str(self.args.duration)), env)
                for ns in namespaces]
        try:
            for gen in gens:
                gen.wait_for('^publishing$', START_TIMEOUT)
            before, busy0, wall0 = snapshot(watched), machine_times(), time.monotonic()
            load0 = load_average()
            for gen in gens:
                gen.proc.wait(self.args.duration + 60.0)
            after, busy1, wall1 = snapshot(watched), machine_times(), time.monotonic()
            results = [gen.json_result(30.0) for gen in gens]
        finally:
            for gen in gens:
                gen.stop(5.0)
        wall = wall1 - wall0
        machine = {'wall_s': wall, 'load_average_start': load0, 'load_average_end':
                   load_average(), 'cores': os.cpu_count(),
                   'busy_cores': (busy1[0] - busy0[0]) / wall}
        usage = usage_between(before, after, wall)
        usage.update({gen.name: result.pop('usage') for gen, result in zip(gens, results)})
        return results, usage, machine

    def suite_phase(self, name: str, robots: int, load: Load) -> dict:
        """Full or light load into the first `robots` suites; collect every number."""
        self.start_suites(robots)
        names = self.namespaces(robots)
        suites = {s.namespace: s for s in self.suites[:robots]}
        watched = {f'{ns}/{node}': pid for ns, s in suites.items() for node, pid in s.pids.items()}
        received0 = {ns: self.probe.ingestion_counts(ns) for ns in names}
        output0 = {ns: len(s.child.lines) for ns, s in suites.items()}
        gens, usage, machine = self.run_generators(names, load, watched, self.env)
        last_end = max(g['end'] for g in gens)
        hop_ns = int(self.spec.hop * 1e9)
        settled = self.probe.settle(names, int(last_end * 1e9), hop_ns, SETTLE_TIMEOUT)
        robots_out = {}
        for gen in gens:
            ns = gen['namespace']
            counts = self.probe.ingestion_counts(ns)
            accepted, rejected = ({s: counts[s][i] - received0[ns][s][i] for s in SOURCES}
                                  for i in (0, 1))
            received = {s: accepted[s] + rejected[s] for s in SOURCES}
            first_full = int((gen['start'] + self.spec.window) * 1e9)
            records = self.probe.windows(ns, first_full, int(gen['end'] * 1e9))
            robots_out[ns] = {
                'published': gen['published'], 'received': received, 'rejected': rejected,
                'lost_messages': sum(gen['published'][s] - received[s] for s in SOURCES),
                'generator': {k: gen[k] for k in GENERATOR_KEYS},
                **window_metrics(records, hop_ns)}
        latency = {key: percentiles([v for r in robots_out.values()
                                     for v in r['latency_ms'][key]]) for key in LATENCIES}
        for robot in robots_out.values():
            robot['latency_ms'] = {k: percentiles(v) for k, v in robot['latency_ms'].items()}
        lost_messages = sum(r['lost_messages'] for r in robots_out.values())
        lost_windows = sum(r['lost_windows'] for r in robots_out.values())
        refused = sum(sum(g['refused'].values()) for g in gens)
        decision_p99 = latency['input_to_decision']['p99']
        keeps_up = (lost_messages == 0 and refused == 0 and lost_windows == 0 and settled
                    and decision_p99 < self.spec.hop * 1e3)
        return {'phase': name, 'kind': 'suite', 'robots': robots, 'load': asdict(load),
                'ingestion_qos': self.probe.ingestion_qos(names[0]),
                'duration_s': self.args.duration, 'settled': settled,
                'lost_messages': lost_messages, 'refused_messages': refused,
                'lost_windows': lost_windows,
                'windows': sum(r['windows'] for r in robots_out.values()),
                'latency_ms': latency, 'per_robot': robots_out, 'processes': usage,
                'machine': machine,
                'warnings': [w for ns, s in suites.items() for w in s.warnings(output0[ns])],
                'keeps_up': keeps_up,
                'meets_target': keeps_up and decision_p99 <= MAX_P99_DECISION_MS}

    def transport_phase(self, name: str, dds_profile: Optional[Path],
                        executor: str = 'single') -> dict:
        """Run the full load of one robot into a bare subscriber process: raw DDS transport."""
        namespace = 'bench_transport'
        env = child_env(dds_profile)
        sink = Child('sink', bench_command('sink', '--namespace', namespace, '--executor',
                                           executor), env)
        try:
            sink.wait_for('^subscribed$', START_TIMEOUT)
            gens, usage, machine = self.run_generators([namespace], LOADS['field'],
                                                       {'sink': sink.proc.pid}, env)
            sink.stop(10.0)
            result = json.loads(sink.lines[-1])
        finally:
            sink.stop(5.0)
        published = gens[0]['published']
        return {'phase': name, 'kind': 'transport', 'robots': 1,
                'dds_profile': str(dds_profile or 'none'), 'executor': executor,
                'load': asdict(LOADS['field']), 'duration_s': self.args.duration,
                'published': published, 'received': result['received'],
                'lost_messages': sum(published[s] - result['received'][s] for s in SOURCES),
                'latency_ms': result['latency_ms'], 'processes': usage, 'machine': machine,
                'generator': {k: gens[0][k] for k in GENERATOR_KEYS}}

    def close(self) -> None:
        """Stop every suite and the probe."""
        for suite in self.suites:
            suite.stop()
        self.probe.close()


# ---------------------------------------------------------------------------- report


def _ms(stats: dict) -> str:
    return (f'p50 {stats["p50"]:7.1f}  p95 {stats["p95"]:7.1f}  p99 {stats["p99"]:7.1f}  '
            f'max {stats["max"]:7.1f}  (n={stats["n"]})')


def _ratio(a: float, b: float) -> str:
    return f'{a / b:.2f}x' if b and math.isfinite(a) and math.isfinite(b) else 'n/a'


def node_usage(phase: dict, node: str) -> Tuple[float, float]:
    """Mean CPU share of one core and largest peak RSS of `node` over the phase's robots."""
    rows = [u for name, u in phase['processes'].items() if name.endswith('/' + node)]
    if not rows:
        return math.nan, math.nan
    return (sum(r['cpu_share'] for r in rows) / len(rows), max(r['peak_rss_mib'] for r in rows))


def format_phase(phase: dict) -> List[str]:
    """Report lines of one phase."""
    m = phase['machine']
    lines = [f'== {phase["phase"]}: {phase["robots"]} robot(s), {phase["duration_s"]:g} s, '
             f'{Load(**phase["load"]).describe()}',
             f'   machine: {m["busy_cores"]:.2f} of {m["cores"]} cores busy, load average '
             f'{m["load_average_start"][0]:.2f} -> {m["load_average_end"][0]:.2f}']
    if 'ingestion_qos' in phase:
        lines.append('   ingestion subscriptions: ' + ', '.join(
            f'{s} {q}' for s, q in phase['ingestion_qos'].items()))
    robots = phase.get('per_robot') or {'bench_transport': phase}
    for ns, robot in robots.items():
        counts = ', '.join(f'{s} {robot["received"][s]}/{robot["published"][s]}'
                           for s in SOURCES)
        rejected = sum(robot.get('rejected', {}).values())
        refused = sum(robot['generator']['refused'].values())
        lines.append(f'   {ns}: received/published {counts}; lost {robot["lost_messages"]}, '
                     f'rejected {rejected}; publish refused (writer history full) {refused}; '
                     f'generator late {100 * robot["generator"]["late_share"]:.1f} % '
                     f'(p99 {robot["generator"]["late_ms_p99"]:.1f} ms)')
        if 'windows' in robot:
            lines.append(f'   {ns}: windows {robot["windows"]} ({robot["complete_windows"]} '
                         f'with every modality), lost {robot["lost_windows"]} (sequence gaps '
                         f'{robot["sequence_gaps"]}, skipped hops {robot["skipped_hops"]}, '
                         f'without prediction {robot["unpredicted"]}); decision seen for '
                         f'{robot["decided"]}')
            if robot['unavailable']:
                lines.append(f'   {ns}: modalities not available (windows): '
                             + ', '.join(f'{k} {v}' for k, v in robot['unavailable'].items()))
    if phase['kind'] == 'transport':
        for source in SOURCES:
            lines.append(f'   stamp -> receive {source:12s} {_ms(phase["latency_ms"][source])}')
    else:
        for key in LATENCIES:
            lines.append(f'   {key.replace("_", " "):22s} [ms] {_ms(phase["latency_ms"][key])}')
    for name, u in phase['processes'].items():
        lines.append(f'   cpu {name:32s} {u["cpu_s"]:7.2f} s  {100 * u["cpu_share"]:5.1f} % '
                     f'of a core  peak RSS {u["peak_rss_mib"]:6.1f} MiB')
    if phase['kind'] == 'suite':
        lines.append(f'   keeps up (0 lost, p99 window->decision < hop): '
                     f'{"yes" if phase["keeps_up"] else "NO"}; target (and p99 <= '
                     f'{MAX_P99_DECISION_MS:g} ms): '
                     f'{"met" if phase["meets_target"] else "NOT met"}'
                     + ('' if phase['settled'] else ' (counts did not settle)'))
        lines += [f'   node output: {w}' for w in phase['warnings'][-5:]]
    return lines


def format_summary(phases: List[dict]) -> List[str]:
    """Ratios against the baselines and the robots one machine sustains."""
    by_name = {p['phase']: p for p in phases}
    sweep = [p for p in phases if p['phase'].startswith('robots=')]
    lines = ['== summary']
    one = by_name.get('robots=1')
    light, transport = by_name.get('light'), by_name.get('transport')
    if one and light:
        for key in ('input_to_prediction', 'input_to_decision'):
            for q in ('p50', 'p99'):
                lines.append(f'   {key} {q}: full/light '
                             f'{_ratio(one["latency_ms"][key][q], light["latency_ms"][key][q])}')
        for node in NODES:
            lines.append(f'   {node} cpu: full/light '
                         f'{_ratio(node_usage(one, node)[0], node_usage(light, node)[0])}')
    sink = transport['processes']['sink']['cpu_share'] if transport else math.nan
    if one and transport:
        lines.append(f'   softmaint_ingestion cpu / bare subscriber cpu (same messages): '
                     f'{_ratio(node_usage(one, "softmaint_ingestion")[0], sink)}')
        camera = transport['latency_ms']['camera']['p99']
        lines.append(f'   p99 input->decision / p99 camera transport: '
                     f'{_ratio(one["latency_ms"]["input_to_decision"]["p99"], camera)}')
    events = by_name.get('transport_events')
    if transport and events:
        lines.append(f'   bare subscriber cpu, EventsExecutor / SingleThreadedExecutor: '
                     f'{_ratio(events["processes"]["sink"]["cpu_share"], sink)}')
    tried = [p['robots'] for p in sweep]
    for key, text in (('keeps_up', '0 lost or refused messages, 0 lost windows, p99 '
                                   'window->decision < hop'),
                      ('meets_target', f'and p99 <= {MAX_P99_DECISION_MS:g} ms')):
        passed = [p['robots'] for p in sweep if p[key]]
        lines.append(f'   robots sustained at full load ({text}): '
                     f'{max(passed) if passed else 0} (tried {tried})')
    return lines


# ---------------------------------------------------------------------------- main


def robot_counts(text: str) -> List[int]:
    """Parse '1,2,3' or '4' (meaning 1..4) into robot counts."""
    try:
        counts = [int(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: robot counts are integers') from None
    if len(counts) == 1 and counts[0] >= 0:     # N: 1..N; 0: no sweep (baselines only)
        counts = list(range(1, counts[0] + 1))
    if any(c < 1 for c in counts) or counts != sorted(set(counts)):
        raise argparse.ArgumentTypeError(f'{text!r}: robot counts must be rising and >= 1')
    return counts


def dds_profile_arg(text: str) -> Optional[Path]:
    """'none' or an existing file."""
    if text == 'none':
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f'{text}: no such file')
    return path


def parser() -> argparse.ArgumentParser:
    """Command line of softmaint-bench-suite and its two helper commands."""
    profile = os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or default_dds_profile()
    p = argparse.ArgumentParser(prog='softmaint-bench-suite', description=__doc__.split(
        '\n\n')[0].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=float, default=30.0,
                   help='seconds of load per phase (default 30)')
    p.add_argument('--robots', type=robot_counts, default=[1, 2, 3, 4],
                   help="robot counts to sweep: '1,2,3' or N for 1..N, 0 for none (default 4)")
    p.add_argument('--baselines', default=','.join(BASELINES),
                   help='comma-separated: transport (the same messages to a bare subscriber), '
                        'transport_default (the same without the DDS profile), '
                        "transport_events (the same, spun by rclpy's EventsExecutor), light "
                        "(robot0 at the sim robot's load); 'none' for no baseline (default: all)")
    p.add_argument('--keep-going', action='store_true',
                   help='sweep every robot count even after one did not keep up')
    p.add_argument('--dds-profile', type=dds_profile_arg, default=profile,
                   help=f"Fast DDS profile XML for every process, or 'none' (default: "
                        f'$FASTDDS_DEFAULT_PROFILES_FILE, else {profile})')
    p.add_argument('--json', type=Path, help='also write every number to this JSON file')
    sub = p.add_subparsers(dest='command')
    load = sub.add_parser('load', help='only the load generator of one robot')
    load.add_argument('--namespace', default='')
    load.add_argument('--load', choices=sorted(LOADS), default='field')
    load.add_argument('--duration', type=float, default=30.0)
    sink = sub.add_parser('sink', help='only the bare subscriber of the transport baseline')
    sink.add_argument('--namespace', default='')
    sink.add_argument('--executor', choices=('single', 'events'), default='single',
                      help="rclpy's SingleThreadedExecutor (as the nodes) or EventsExecutor")
    return p


def bench_main(args: argparse.Namespace) -> int:
    """Run the baselines and the sweep; print the report."""
    baselines = [] if args.baselines == 'none' else args.baselines.split(',')
    if set(baselines) - set(BASELINES):
        print(f'softmaint-bench-suite: error: unknown baseline in {args.baselines!r}',
              file=sys.stderr)
        return 2
    print(f'softmaint-bench-suite: {len(os.sched_getaffinity(0))} cores, load average '
          f'{load_average()}, DDS profile {args.dds_profile or "none (Fast DDS defaults)"}',
          flush=True)
    phases = []
    with tempfile.TemporaryDirectory(prefix='softmaint-bench-') as workdir:
        bench = Bench(args, Path(workdir))
        try:
            if 'transport' in baselines:
                phases.append(bench.transport_phase('transport', args.dds_profile))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'transport_default' in baselines:
                phases.append(bench.transport_phase('transport_default', None))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'transport_events' in baselines:
                phases.append(bench.transport_phase('transport_events', args.dds_profile,
                                                    'events'))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'light' in baselines:
                phases.append(bench.suite_phase('light', 1, LOADS['light']))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            for robots in args.robots:
                try:
                    phases.append(bench.suite_phase(f'robots={robots}', robots,
                                                    LOADS['field']))
                except RuntimeError as err:   # a robot count the machine cannot even start
                    print(f'== robots={robots}: not measured: {err}', flush=True)
                    break
                print('\n'.join(format_phase(phases[-1])), flush=True)
                if not phases[-1]['keeps_up'] and not args.keep_going:
                    break
        finally:
            bench.close()
    print('\n'.join(format_summary(phases)), flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            'command': sys.argv, 'dds_profile': str(args.dds_profile or ''),
            'max_p99_decision_ms': MAX_P99_DECISION_MS, 'phases': phases}, indent=1))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of softmaint-bench-suite."""
    args = parser().parse_args(argv)
    if args.command == 'load':
        return load_main(args)
    if args.command == 'sink':
        return sink_main(args)
    try:
        return bench_main(args)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as err:
        print(f'softmaint-bench-suite: error: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
