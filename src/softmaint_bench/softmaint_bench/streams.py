"""
The sensor streams of one robot: their names, topics, the loads they run at, reliable QoS.

Shared by the load generator, the bare subscriber, the probe and the suite's parameters.
"""
from dataclasses import dataclass
import math
from typing import Dict, Tuple

from softmaint_core import topics

# Reliable history depth of every sensor stream, in seconds of messages.
QUEUE_SECONDS = 1.0
SOURCES = tuple(topics.SENSORS)


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

    def scaled(self, factor: float) -> 'Load':
        """Return the same streams at `factor` times the rates (named NAME_xFACTOR)."""
        if factor == 1.0:
            return self
        return Load(f'{self.name}_x{factor:g}', {s: r * factor for s, r in self.rates.items()},
                    self.camera_height, self.camera_width)


LOADS = {
    'field': Load('field', {'camera': 30.0, 'tactile': 500.0, 'joint_states': 200.0,
                            'actuation': 200.0, 'environment': 10.0}, 480, 640),
    'light': Load('light', {'camera': 5.0, 'tactile': 100.0, 'joint_states': 100.0,
                            'actuation': 100.0, 'environment': 1.0}, 64, 64),
}


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
