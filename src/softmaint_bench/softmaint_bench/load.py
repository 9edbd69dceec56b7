"""
The load generator: one robot's sensor streams on schedule, synthetic but valid values.

    softmaint-bench-suite load --namespace robot0 [--load field|light] [--duration 30]
                               [--rate-factor 1] [--start-at EPOCH_SECONDS]
"""
import argparse
import heapq
import json
import math
import resource
import sys
import time
from typing import List, Optional

import numpy as np
from softmaint import bringup

from .streams import Load, LOADS, reliable_qos, sensor_topics, SOURCES


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


def generate(namespace: str, load: Load, duration: float, match_timeout: float = 30.0,
             start_at: Optional[float] = None) -> dict:
    """
    Publish `load` into `namespace` for `duration` seconds; return what was published.

    Waits until every topic has a subscriber, then until the system time `start_at` if given
    (generators started together publish one after the other without a gap). Each message is
    stamped with the system clock when it is published; a stream that falls behind its
    schedule catches up (lateness is reported), so the count published is rate x duration
    unless the machine is saturated.
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
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
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
        print(json.dumps(generate(args.namespace, LOADS[args.load].scaled(args.rate_factor),
                                  args.duration, start_at=args.start_at)), flush=True)
    except TimeoutError as err:
        print(f'softmaint-bench-suite load: error: {err}', file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
    return 0
