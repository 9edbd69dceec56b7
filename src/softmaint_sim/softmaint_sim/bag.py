"""
Export dataset episodes to a rosbag2 bag (MCAP) on the field robot's topics.

Each episode's field view becomes the messages a field robot would have published, on the
topics of softmaint_core.topics: camera (sensor_msgs/Image rgb8), tactile (TactileArray 8x1, N),
bend sensors (sensor_msgs/JointState, rad), actuation (ActuatorState, kPa), environment
(EnvironmentReading), and one GroundTruth per episode at its start. Every binned step of the
view is one message stamped at its bin centre, so binning the bag again with the view's spec
(what the ingestion node does) gives back the dataset's arrays. Modalities missing from an
episode (field_mask False) have no messages. Episodes follow each other in the given order,
`gap` seconds apart; stamps increase across the bag.
"""
from pathlib import Path
from typing import Iterable, List, Tuple

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from softmaint_core import topics
from softmaint_core.bagtypes import typestore
from softmaint_core.spec import FIELD_SPEC, MODALITIES
from softmaint_core.taxonomy import DAMAGE_TYPES

from .arm import FIELD_GEOMETRY, FIELD_TAXELS, PRESSURE_UNITS, SIM_GEOMETRY
from .episode import PRIVILEGED_COLUMNS
from .live import FORCE_UNITS
from .sensors import FIELD_NOISE, SIM_NOISE

START_NS = 1_767_225_600 * 10 ** 9     # 2026-01-01T00:00:00Z: fixed, so exports are repeatable
FRAME_ID = 'softmaint_arm'
EPISODE_GAP = 1.0        # seconds between exported episodes
# topic -> message type: the field robot's sensors, then the simulator's ground truth
TYPES = {topic: msgtype for msgtype, topic in topics.SENSORS.values()} | {
    topics.GROUND_TRUTH: 'softmaint_interfaces/msg/GroundTruth'}


class ExportError(RuntimeError):
    """The export cannot start (the message says why)."""


def step_stamps(start_ns: int, modality: str) -> np.ndarray:
    """Stamps [ns] of a field-view modality's steps: bin centres from `start_ns`."""
    spec = FIELD_SPEC.modality(modality)
    period = FIELD_SPEC.window / spec.steps
    return start_ns + np.round((np.arange(spec.steps) + 0.5) * period * 1e9).astype(np.int64)


class _Messages:
    """Builds the rosbags messages of one field-view step: modality -> [(topic, message)]."""

    def __init__(self, store):
        self.types = store.types

    def _make(self, topic: str, stamp_ns: int, **fields):
        time = self.types['builtin_interfaces/msg/Time'](
            sec=int(stamp_ns // 10 ** 9), nanosec=int(stamp_ns % 10 ** 9))
        header = self.types['std_msgs/msg/Header'](stamp=time, frame_id=FRAME_ID)
        return topic, self.types[TYPES[topic]](header=header, **fields)

    def camera(self, stamp_ns: int, chw: np.ndarray, domain: int):
        image = np.ascontiguousarray(chw.transpose(1, 2, 0))   # [3, H, W] -> rgb8 [H, W, 3]
        return [self._make(topics.CAMERA, stamp_ns, height=image.shape[0],
                           width=image.shape[1], encoding='rgb8', is_bigendian=0,
                           step=image.shape[1] * 3, data=image.reshape(-1))]

    def tactile(self, stamp_ns: int, values: np.ndarray, domain: int):
        geometry = FIELD_GEOMETRY if domain else SIM_GEOMETRY
        noise = FIELD_NOISE if domain else SIM_NOISE
        return [self._make(topics.TACTILE, stamp_ns, rows=FIELD_TAXELS, cols=1,
                           pitch=geometry.length / FIELD_TAXELS, units=FORCE_UNITS,
                           range_max=noise.taxel_range_max, data=values.astype(np.float32))]

    def proprio(self, stamp_ns: int, values: np.ndarray, domain: int):
        joints, actuators = FIELD_SPEC.joints, FIELD_SPEC.actuators
        empty = np.zeros(0, np.float64)
        return [
            self._make(topics.JOINT_STATES, stamp_ns, name=list(topics.BEND_JOINTS),
                       position=values[:joints].astype(np.float64), velocity=empty,
                       effort=empty),
            self._make(topics.ACTUATION, stamp_ns, name=list(topics.ACTUATORS),
                       units=PRESSURE_UNITS,
                       command=values[joints:joints + actuators].astype(np.float32),
                       achieved=values[joints + actuators:].astype(np.float32))]

    def environment(self, stamp_ns: int, values: np.ndarray, domain: int):
        temperature, humidity, co2, pressure = (float(v) for v in values)
        return [self._make(topics.ENVIRONMENT, stamp_ns, temperature=temperature,
                           humidity=humidity, co2=co2, pressure=pressure)]

    def truth(self, stamp_ns: int, row: dict):
        column = dict(zip(PRIVILEGED_COLUMNS, row['privileged'].tolist()))
        damage = int(row['damage'])
        return self._make(
            topics.GROUND_TRUTH, stamp_ns, fatigue_level=int(row['fatigue']),
            damage_type=damage, damage_name=DAMAGE_TYPES[damage],
            damage_severity=column['damage_severity'] if damage else 0.0,
            urgency=float(row['urgency']), stiffness_fraction=column['stiffness_fraction'],
            remaining_useful_life=column['rul'], cycles=column['cycles'])


def episode_messages(build: _Messages, row: dict, start_ns: int) -> List[Tuple[int, str, object]]:
    """(stamp [ns], topic, message) of one episode (a dataset row), in stamp order."""
    out = [(start_ns, *build.truth(start_ns, row))]
    domain = int(row['domain'])
    for available, modality in zip(row['field_mask'], MODALITIES):
        if not available:
            continue
        make = getattr(build, modality)
        for stamp, value in zip(step_stamps(start_ns, modality).tolist(),
                                row[f'field_{modality}']):
            out += [(stamp, topic, msg) for topic, msg in make(stamp, value, domain)]
    return sorted(out, key=lambda item: item[0])


def export_episodes(data, indices: Iterable[int], out: Path, start_ns: int = START_NS,
                    gap: float = EPISODE_GAP) -> int:
    """Write episodes `indices` of dataset `data` to a new MCAP bag `out`; return the count."""
    out = Path(out)
    if out.exists():
        raise ExportError(f'{out} exists: choose a new bag directory')
    indices = list(indices)
    if not indices:
        raise ExportError('no episodes to export')
    store = typestore()
    build = _Messages(store)
    names = ['fatigue', 'damage', 'urgency', 'privileged', 'domain', 'field_mask'] + [
        f'field_{m}' for m in MODALITIES]
    count = 0
    period_ns = round((FIELD_SPEC.window + gap) * 1e9)
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {topic: writer.add_connection('/' + topic, msgtype, typestore=store)
                       for topic, msgtype in TYPES.items()}
        for position, index in enumerate(indices):
            row = {name: data.take(name, [index])[0] for name in names}
            for stamp, topic, msg in episode_messages(build, row,
                                                      start_ns + position * period_ns):
                writer.write(connections[topic], stamp, store.serialize_cdr(msg, TYPES[topic]))
                count += 1
    return count
