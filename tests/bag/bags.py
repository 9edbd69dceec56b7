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
