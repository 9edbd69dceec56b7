"""Dataset episodes exported to rosbag2 MCAP: read back with rosbags and decoded by rclpy."""
import subprocess
import sys

import numpy as np
import pytest

EPISODES = [7, 2, 9, 0]   # not sorted: the bag follows the requested order


@pytest.fixture(scope='module')
def exported(small_dataset, tmp_path_factory):
    from softmaint_core import dataset as ds
    from softmaint_sim.bag import export_episodes
    out = tmp_path_factory.mktemp('bag') / 'episodes'
    count = export_episodes(ds.Dataset(small_dataset), EPISODES, out)
    return ds.Dataset(small_dataset), out, count


def _read(path):
    from rosbags.rosbag2 import Reader
    assert [p.suffix for p in path.iterdir() if p.suffix != '.yaml'] == ['.mcap']
    with Reader(path) as reader:
        return [(c.topic, c.msgtype, stamp, bytes(raw)) for c, stamp, raw in reader.messages()]


def test_bag_holds_every_available_step_in_time_order(exported):
    from softmaint_core.spec import FIELD_SPEC, MODALITIES
    from softmaint_sim.bag import START_NS
    data, path, count = exported
    records = _read(path)
    assert len(records) == count
    masks = data.take('field_mask', EPISODES)
    per_topic = {}
    for topic, _, _, _ in records:
        per_topic[topic] = per_topic.get(topic, 0) + 1
    steps = {m: FIELD_SPEC.modality(m).steps for m in MODALITIES}
    expected = {'/camera/image_raw': masks[:, 0].sum() * steps['camera'],
                '/tactile': masks[:, 1].sum() * steps['tactile'],
                '/joint_states': masks[:, 2].sum() * steps['proprio'],
                '/actuation': masks[:, 2].sum() * steps['proprio'],
                '/environment': masks[:, 3].sum() * steps['environment'],
                '/softmaint/ground_truth': len(EPISODES)}
    assert per_topic == expected
    stamps = np.array([r[2] for r in records])
    assert (np.diff(stamps) >= 0).all()
    # episode j occupies [start + 3 j s, start + 3 j s + 2 s): window plus a 1 s gap
    truth = [r[2] for r in records if r[0] == '/softmaint/ground_truth']
    assert truth == [START_NS + j * 3 * 10**9 for j in range(len(EPISODES))]
    assert stamps.max() < truth[-1] + 2 * 10**9


def test_messages_decode_with_rclpy_and_rosbags_and_rebin_to_the_dataset(exported):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image, JointState
    from softmaint_core.bagtypes import typestore
    from softmaint_core.resample import bin_to_steps
    from softmaint_core.spec import FIELD_SPEC
    from softmaint_interfaces.msg import (ActuatorState, EnvironmentReading, GroundTruth,
                                          TactileArray)
    from softmaint_sim.bag import START_NS
    classes = {'/camera/image_raw': Image, '/tactile': TactileArray,
               '/joint_states': JointState, '/actuation': ActuatorState,
               '/environment': EnvironmentReading, '/softmaint/ground_truth': GroundTruth}
    data, path, _ = exported
    store = typestore()
    decoded = {topic: [] for topic in classes}
    for topic, msgtype, stamp, raw in _read(path):
        msg = deserialize_message(raw, classes[topic])
        other = store.deserialize_cdr(raw, msgtype)
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
        assert (other.header.stamp.sec, other.header.stamp.nanosec) == (
            msg.header.stamp.sec, msg.header.stamp.nanosec)
        decoded[topic].append((stamp, msg))

    complete = data.take('field_mask', EPISODES).all(axis=1)
    j = int(np.argmax(complete))   # the first exported episode with every modality
    assert complete[j]
    index = EPISODES[j]
    start = START_NS + j * 3 * 10**9

    def window(topic):
        return [(s, m) for s, m in decoded[topic] if start <= s < start + 2 * 10**9]

    def rebin(topic, values, modality, reduce='mean'):
        stamps = np.array([s for s, _ in window(topic)]) - start
        return bin_to_steps(stamps / 1e9, np.array(values), 0.0, 2.0,
                            FIELD_SPEC.modality(modality).steps, reduce)[0]

    images = [m for _, m in window('/camera/image_raw')]
    assert {(m.encoding, m.height, m.width, m.step) for m in images} == {('rgb8', 32, 32, 96)}
    frames = np.stack([np.frombuffer(bytes(m.data), np.uint8).reshape(32, 32, 3)
                       for m in images])
    np.testing.assert_array_equal(
        rebin('/camera/image_raw', frames, 'camera', 'last').transpose(0, 3, 1, 2),
        data.take('field_camera', [index])[0])

    tactile = [m for _, m in window('/tactile')]
    assert {(m.rows, m.cols, m.units) for m in tactile} == {(8, 1, 'N')}
    np.testing.assert_allclose(rebin('/tactile', [m.data for m in tactile], 'tactile'),
                               data.take('field_tactile', [index])[0], rtol=1e-6)

    joints = [m for _, m in window('/joint_states')]
    actuation = [m for _, m in window('/actuation')]
    assert tuple(joints[0].name) == ('bend_0', 'bend_1', 'bend_2', 'bend_3')
    assert tuple(actuation[0].name) == ('chamber_0', 'chamber_1') and actuation[0].units == 'kPa'
    proprio = [list(js.position) + list(a.command) + list(a.achieved)
               for js, a in zip(joints, actuation)]
    np.testing.assert_allclose(rebin('/joint_states', proprio, 'proprio'),
                               data.take('field_proprio', [index])[0], rtol=1e-5, atol=1e-6)

    env = [[m.temperature, m.humidity, m.co2, m.pressure] for _, m in window('/environment')]
    np.testing.assert_allclose(rebin('/environment', env, 'environment'),
                               data.take('field_environment', [index])[0], rtol=1e-6)

    truths = [m for _, m in decoded['/softmaint/ground_truth']]
    assert [t.damage_type for t in truths] == data.take('damage', EPISODES).tolist()
    assert [t.fatigue_level for t in truths] == data.take('fatigue', EPISODES).tolist()
    np.testing.assert_allclose([t.urgency for t in truths], data.take('urgency', EPISODES))


def test_export_refuses_an_existing_directory_and_bad_ranges(small_dataset, exported):
    _, path, _ = exported
    cli = [sys.executable, '-m', 'softmaint_sim.dataset_cli', 'export-bag', str(small_dataset)]
    taken = subprocess.run([*cli, '--episodes', '0', '--out', str(path)],
                           capture_output=True, text=True, timeout=60)
    assert taken.returncode == 2 and 'exists: choose a new bag directory' in taken.stderr
    out_of_range = subprocess.run([*cli, '--episodes', '10:14', '--out', str(path) + '_2'],
                                  capture_output=True, text=True, timeout=60)
    assert out_of_range.returncode == 2 and 'out of range [0, 12)' in out_of_range.stderr


def test_start_option_moves_every_stamp(small_dataset, tmp_path):
    from softmaint_sim.bag import START_NS
    out = tmp_path / 'later'
    later = START_NS + 86_400 * 10**9            # the next day
    done = subprocess.run([sys.executable, '-m', 'softmaint_sim.dataset_cli', 'export-bag',
                           str(small_dataset), '--episodes', '3:5', '--out', str(out),
                           '--start', str(later / 1e9)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    truth = [stamp for topic, _, stamp, _ in _read(out) if topic == '/softmaint/ground_truth']
    assert truth == [later, later + 3 * 10**9]
