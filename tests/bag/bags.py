"""Bags written by a third-party writer (rosbags) for the bag tool tests."""
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from softmaint_core.bagtypes import typestore

STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
START_NS = 1_700_000_000_000_000_000


def write_bag(path: Path, storage: str, count: int = 20, period: float = 0.05):
    """Write `count` JointState and TactileArray messages each, `period` s apart; return them."""
    store = typestore()
    joint_state = store.types['sensor_msgs/msg/JointState']
    tactile = store.types['softmaint_interfaces/msg/TactileArray']
    header = store.types['std_msgs/msg/Header']
    time_msg = store.types['builtin_interfaces/msg/Time']
    import numpy as np
    written = []
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        joints = writer.add_connection('/joint_states', joint_state.__msgtype__, typestore=store)
        taxels = writer.add_connection('/tactile', tactile.__msgtype__, typestore=store)
        for i in range(count):
            stamp = START_NS + int(i * period * 1e9)
            head = header(stamp=time_msg(sec=stamp // 10**9, nanosec=stamp % 10**9),
                          frame_id='arm')
            js = joint_state(header=head, name=['bend_0', 'bend_1'],
                             position=np.array([0.01 * i, -0.02 * i]),
                             velocity=np.array([], dtype=np.float64),
                             effort=np.array([], dtype=np.float64))
            ta = tactile(header=head, rows=4, cols=1, pitch=0.02, units='N', range_max=5.0,
                         data=np.arange(4, dtype=np.float32) + i)
            writer.write(joints, stamp, store.serialize_cdr(js, js.__msgtype__))
            writer.write(taxels, stamp + 1000, store.serialize_cdr(ta, ta.__msgtype__))
            written.append((js, ta))
    return written


# Sensor streams of the field robot, as the sim robot publishes them: source -> (topic, rate).
SENSOR_RATES = {'/camera/image_raw': 5.0, '/tactile': 100.0, '/joint_states': 100.0,
                '/actuation': 100.0, '/environment': 1.0, '/softmaint/ground_truth': 10.0}
SENSOR_TYPES = {'/camera/image_raw': 'sensor_msgs/msg/Image',
                '/tactile': 'softmaint_interfaces/msg/TactileArray',
                '/joint_states': 'sensor_msgs/msg/JointState',
                '/actuation': 'softmaint_interfaces/msg/ActuatorState',
                '/environment': 'softmaint_interfaces/msg/EnvironmentReading',
                '/softmaint/ground_truth': 'softmaint_interfaces/msg/GroundTruth'}
RECEIVE_DELAY_NS = 2_000_000   # bag (receive) time after the header stamp


def sensor_message(store, topic: str, stamp_ns: int, k: int, rng):
    """One plausible message of `topic` (k-th of its stream), header stamped `stamp_ns`."""
    import numpy as np
    t = store.types
    head = t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](
        sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id='arm')
    empty = np.array([], dtype=np.float64)
    if topic == '/camera/image_raw':
        # a bright arm sweeping over a dark scene, with sensor noise: signal-to-noise ~10,
        # readable by the committed model (its camera floor ~1.2; white noise reads ~0)
        column = np.arange(64)
        arm = np.abs(column - (8 + 4 * k) % 48 - 8) < 6
        scene = np.where(arm, 200.0, 60.0)[None, :, None] + rng.normal(0.0, 8.0, (64, 64, 3))
        pixels = np.clip(scene, 0, 255).astype(np.uint8)
        return t['sensor_msgs/msg/Image'](header=head, height=64, width=64, encoding='rgb8',
                                          is_bigendian=0, step=192, data=pixels.ravel())
    if topic == '/tactile':
        return t['softmaint_interfaces/msg/TactileArray'](
            header=head, rows=8, cols=1, pitch=0.02, units='N', range_max=5.0,
            data=(1.0 + 0.2 * rng.random(8)).astype(np.float32))
    if topic == '/joint_states':
        return t['sensor_msgs/msg/JointState'](
            header=head, name=[f'bend_{i}' for i in range(4)],
            position=0.05 * np.sin(0.01 * k + np.arange(4)) + 0.001 * rng.random(4),
            velocity=empty, effort=empty)
    if topic == '/actuation':
        return t['softmaint_interfaces/msg/ActuatorState'](
            header=head, name=['chamber_0', 'chamber_1'], units='kPa',
            command=(6.0 + rng.random(2)).astype(np.float32),
            achieved=(5.5 + rng.random(2)).astype(np.float32))
    if topic == '/environment':
        return t['softmaint_interfaces/msg/EnvironmentReading'](
            header=head, temperature=25.0 + 0.1 * k, humidity=0.5, co2=800.0 + k,
            pressure=101.0)
    damage = 0 if k < 30 else 2
    return t['softmaint_interfaces/msg/GroundTruth'](
        header=head, fatigue_level=min(k // 20, 2), damage_type=damage,
        damage_name=('none', 'x', 'leak')[damage], damage_severity=0.1 * damage,
        urgency=min(1.0, 0.01 * k), stiffness_fraction=1.0, remaining_useful_life=1e5,
        cycles=float(k))


def sensor_records(seconds: float, seed: int = 0, topics=None, start_ns: int = START_NS):
    """(bag time, topic, message) of every stream over `seconds`, in bag-time order."""
    import numpy as np
    from softmaint_core.bagtypes import typestore
    store = typestore()
    rng = np.random.default_rng(seed)
    records = []
    for topic, rate in SENSOR_RATES.items():
        if topics is not None and topic not in topics:
            continue
        for k in range(int(seconds * rate)):
            stamp = start_ns + round((k + 0.5) / rate * 1e9)
            records.append((stamp + RECEIVE_DELAY_NS, topic,
                            sensor_message(store, topic, stamp, k, rng)))
    records.sort(key=lambda r: (r[0], r[1]))
    return store, records


def write_sensor_bag(path: Path, storage: str, seconds: float = 6.0, seed: int = 0,
                     topics=None, edit=None, unknown_topic: bool = False,
                     start_ns: int = START_NS):
    """
    Write the field robot's sensor streams and ground truth to a bag with `rosbags`.

    `edit(topic, k, msg)` may change the k-th message of a topic in place, or return bytes to
    store instead (faults). With `unknown_topic`, /gauge of a type only the bag defines is added.
    """
    from rosbags.typesys import get_types_from_msg
    store, records = sensor_records(seconds, seed, topics, start_ns)
    types = dict(SENSOR_TYPES)
    if unknown_topic:
        store.register(get_types_from_msg('float64 level', 'acme_msgs/msg/Gauge'))
        types['/gauge'] = 'acme_msgs/msg/Gauge'
        gauge = store.types['acme_msgs/msg/Gauge']
        records = sorted(records + [(records[0][0] + 1000 * k, '/gauge', gauge(level=k))
                                    for k in range(5)], key=lambda r: (r[0], r[1]))
    counts = {}
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        connections = {}
        for stamp, topic, msg in records:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, types[topic], typestore=store)
            k = counts[topic] = counts.get(topic, -1) + 1
            replaced = edit(topic, k, msg) if edit is not None else None
            data = replaced if replaced is not None else store.serialize_cdr(msg, types[topic])
            writer.write(connections[topic], stamp, data)
    return counts
