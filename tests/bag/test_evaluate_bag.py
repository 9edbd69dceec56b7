"""softmaint-evaluate-bag on bags written by `rosbags`: results, report, every bad input."""
import json
from pathlib import Path

import numpy as np
import pytest

from bag import bags

MODEL = Path(__file__).resolve().parents[2] / 'models' / 'student.onnx'
PARAMS = Path(__file__).resolve().parents[2] / 'config' / 'softmaint.yaml'


def evaluate(bag, out, *extra):
    from softmaint_bag.evaluate_cli import main
    return main([str(bag), '--model', str(MODEL), '--params', str(PARAMS), '--out', str(out),
                 *extra])


def windows(out):
    return [json.loads(line) for line in (out / 'windows.jsonl').read_text().splitlines()]


@pytest.fixture(scope='module')
def model():
    from softmaint_core.student import StudentModel
    return StudentModel(MODEL)


def test_both_storages_give_the_same_deterministic_report(tmp_path):
    for storage in ('mcap', 'sqlite3'):
        bags.write_sensor_bag(tmp_path / storage, storage, seconds=6.0)
        assert evaluate(tmp_path / storage, tmp_path / f'{storage}-report') == 0
    assert evaluate(tmp_path / 'mcap', tmp_path / 'again') == 0
    mcap, sqlite, again = (windows(tmp_path / d)
                           for d in ('mcap-report', 'sqlite3-report', 'again'))
    assert mcap == sqlite == again
    # Window ends: every multiple of hop (1 s) within the bag, which spans 0.002 .. 5.997 s.
    assert [w['end_ns'] for w in mcap] == [bags.START_NS + k * 10**9 for k in range(1, 6)]
    assert all(w['available'] == ['camera', 'tactile', 'proprio', 'environment'] for w in mcap)
    for w in mcap:
        assert sum(w['fatigue_probs']) == pytest.approx(1.0, abs=1e-5)
        assert w['action'] in ('continue_monitoring', 'reduce_workload', 'schedule_maintenance',
                               'immediate_shutdown', 'request_assistance')
    report = tmp_path / 'mcap-report'
    metrics = json.loads((report / 'metrics.json').read_text())
    assert metrics['windows'] == metrics['predictions'] == 5
    assert metrics['messages']['/tactile'] == 600 and metrics['undecodable'] == {}
    assert metrics['has_ground_truth'] and metrics['missing_topics'] == []
    assert metrics['out_of_training_range'] == {}
    fatigue = np.asarray(metrics['fatigue_confusion'])
    assert fatigue.shape == (3, 3) and fatigue.sum() == 5
    # Ground truth: fatigue low until 2 s, medium until 4 s, then high (latest before each end).
    assert fatigue.sum(axis=1).tolist() == [2, 2, 1]
    assert np.asarray(metrics['damage_confusion']).sum(axis=1)[[0, 2]].tolist() == [3, 2]
    assert metrics['realtime_factor'] > 1.0
    for name in ('report.md', 'timeline.png', 'confusion.png', 'fault_1_fatigue_medium.png',
                 'fault_2_damage_crack_tear.png', 'fault_3_fatigue_high.png'):
        assert (report / name).stat().st_size > 0
    text = (report / 'report.md').read_text()
    assert 'Fatigue accuracy' in text and '![fault_1_fatigue_medium.png]' in text
    # every decision judged against the level the truth implies, for as long as it held
    judged = metrics['timeline']['decisions_against_truth']
    held = sum(metrics['timeline']['decision_seconds'].values())
    assert 0 <= judged['right_seconds'] <= judged['judged_seconds'] <= held + 1e-9
    # fatigue is high (schedule_maintenance) from 4 s: the last window's decision is judged so
    assert 0 < judged['critical_seconds'] and judged['missed_critical_seconds'] <= judged[
        'critical_seconds']
    assert 'Decided as the truth implies' in text


def test_windows_match_the_ingestion_assembler_fed_directly(tmp_path, model):
    """The offline windows are those a WindowAssembler builds from the same samples."""
    from softmaint_bag.evaluate import evaluate as run, Params
    from softmaint_core.messages import (read_actuation, read_environment, read_joints,
                                         read_tactile)
    from softmaint_core.window import WindowAssembler
    from softmaint_core.image import image_msg_to_rgb
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=4.0, seed=3)
    result = run(tmp_path / 'bag', model, Params())
    _, records = bags.sensor_records(4.0, seed=3)
    assembler = WindowAssembler(model.spec)
    read = {'/camera/image_raw': ('camera', image_msg_to_rgb),
            '/tactile': ('tactile', lambda m: read_tactile(m, 8)),
            '/joint_states': ('joint_states', lambda m: read_joints(m, [f'bend_{i}' for i in
                                                                        range(4)])),
            '/actuation': ('actuation', lambda m: read_actuation(m, ['chamber_0', 'chamber_1'])),
            '/environment': ('environment', read_environment)}
    end = bags.START_NS + 10**9
    for stamp, topic, msg in records + [(bags.START_NS + 10 * 10**9, None, None)]:
        while end <= stamp and end <= bags.START_NS + 3 * 10**9:
            window = assembler.assemble(end * 1e-9)
            feeds = {m.name: m.data[None] for m in window.modalities}
            expected, _ = model.predict(feeds, list(window.mask))
            got = next(w for w in result.windows if w.end_ns == end).prediction
            np.testing.assert_array_equal(got.fatigue_probs, expected.fatigue_probs)
            assert got.urgency == expected.urgency
            end += 10**9
        if topic in read:
            source, reader = read[topic]
            assembler.push(source, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
                           reader(msg), stamp * 1e-9)
    assert end == bags.START_NS + 4 * 10**9


def test_offline_watchdog_gives_the_first_prediction_the_startup_grace():
    """As the live agent does: stale_timeout + startup_grace before the first prediction."""
    from softmaint_bag.evaluate import load_params, OfflineAgent
    params = load_params(PARAMS)
    assert (params.agent.stale_timeout, params.agent.startup_grace) == (3.0, 5.0)
    agent = OfflineAgent(params, started=100.0)
    agent.watch(107.9)
    assert agent.changes == []
    agent.watch(108.0)
    assert [(stamp, d.basis) for stamp, d in agent.changes] == [(pytest.approx(108.0), 'stale')]


def test_truncated_and_corrupt_bags_are_clear_errors(tmp_path, capsys):
    bags.write_sensor_bag(tmp_path / 'mcap', 'mcap', seconds=3.0)
    mcap = next((tmp_path / 'mcap').glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:mcap.stat().st_size // 2])
    assert evaluate(tmp_path / 'mcap', tmp_path / 'out1') == 2
    err = capsys.readouterr().err
    assert 'corrupt or truncated' in err or 'cannot open' in err
    assert not (tmp_path / 'out1' / 'metrics.json').exists()   # no partial answer

    bags.write_sensor_bag(tmp_path / 'db', 'sqlite3', seconds=3.0)
    db3 = next((tmp_path / 'db').glob('*.db3'))
    db3.write_bytes(b'not a database' * 100)
    assert evaluate(tmp_path / 'db', tmp_path / 'out2') == 2
    err = capsys.readouterr().err
    assert 'corrupt or truncated' in err or 'cannot open' in err

    assert evaluate(tmp_path / 'nothing', tmp_path / 'out3') == 2
    assert 'does not exist' in capsys.readouterr().err

    # a recording that was killed: the writer writes metadata.yaml only when it closes
    bags.write_sensor_bag(tmp_path / 'killed', 'mcap', seconds=3.0)
    (tmp_path / 'killed' / 'metadata.yaml').unlink()
    assert evaluate(tmp_path / 'killed', tmp_path / 'out4') == 2
    assert 'recording was not finished' in capsys.readouterr().err


def test_a_report_directory_that_cannot_be_written_is_a_clear_error(tmp_path, capsys):
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=3.0)
    (tmp_path / 'a_file').write_text('not a directory')
    assert evaluate(tmp_path / 'bag', tmp_path / 'a_file' / 'report') == 2
    assert 'cannot write the report to' in capsys.readouterr().err


def test_undecodable_messages_and_out_of_order_stamps_are_counted(tmp_path, capsys):
    def edit(topic, k, msg):
        if topic == '/tactile' and k in (50, 51, 52):
            return b'\x00\x01\x00\x00' + bytes(8)      # cut short: cannot be decoded
        if topic == '/joint_states' and k in (120, 121):
            msg.header.stamp.sec -= 1                   # older than the samples before
        return None

    bags.write_sensor_bag(tmp_path / 'bag', 'sqlite3', seconds=4.0, edit=edit)
    assert evaluate(tmp_path / 'bag', tmp_path / 'out') == 0
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert metrics['undecodable'] == {'/tactile': 3}
    assert metrics['messages']['/tactile'] == 397
    assert metrics['rejected']['joint_states'] == {'out_of_order': 2}
    assert '3 messages on /tactile could not be decoded' in capsys.readouterr().err


def test_missing_wrong_and_unknown_topics(tmp_path, capsys):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_types_from_msg
    from softmaint_core.bagtypes import typestore

    bags.write_sensor_bag(tmp_path / 'partial', 'mcap', seconds=3.0,
                          topics=['/tactile', '/joint_states', '/actuation'])
    assert evaluate(tmp_path / 'partial', tmp_path / 'out') == 0
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert metrics['missing_topics'] == ['/camera/image_raw', '/environment']
    assert not metrics['has_ground_truth'] and metrics['predictions'] == 2
    assert all(w['available'] == ['tactile', 'proprio'] for w in windows(tmp_path / 'out'))
    assert 'sensor topic /camera/image_raw is not in the bag' in capsys.readouterr().err

    store = typestore()
    store.register(get_types_from_msg('float64 level', 'acme_msgs/msg/Gauge'))
    string = store.types['std_msgs/msg/String']
    with Writer(tmp_path / 'wrong', version=9) as writer:
        tactile = writer.add_connection('/tactile', 'std_msgs/msg/String', typestore=store)
        writer.write(tactile, bags.START_NS, store.serialize_cdr(string(data='x'),
                                                                 'std_msgs/msg/String'))
    assert evaluate(tmp_path / 'wrong', tmp_path / 'out2') == 2
    err = capsys.readouterr().err
    assert 'topic /tactile in' in err and 'has type std_msgs/msg/String' in err, err

    with Writer(tmp_path / 'unknown', version=9) as writer:
        gauge = writer.add_connection('/gauge', 'acme_msgs/msg/Gauge', typestore=store)
        writer.write(gauge, bags.START_NS, store.serialize_cdr(
            store.types['acme_msgs/msg/Gauge'](level=1.0), 'acme_msgs/msg/Gauge'))
    assert evaluate(tmp_path / 'unknown', tmp_path / 'out3') == 2
    assert 'none of the sensor topics' in capsys.readouterr().err


def test_unknown_extra_topic_is_listed_and_bad_params_refused(tmp_path, capsys):
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=3.0, unknown_topic=True)
    assert evaluate(tmp_path / 'bag', tmp_path / 'out') == 0
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert metrics['ignored_topics'] == ['/gauge'] and metrics['predictions'] == 2

    params = tmp_path / 'bad.yaml'
    params.write_text('softmaint_agent:\n  ros__parameters:\n    thresholds:\n'
                      '      reduce_urgency: 0.9\n')
    assert evaluate(tmp_path / 'bag', tmp_path / 'o', '--params', str(params)) == 2
    assert 'reduce_urgency (0.9) must be <= schedule_urgency' in capsys.readouterr().err


def test_channels_outside_the_training_range_are_counted_per_window(tmp_path):
    # a training range of 0.001 std: every sensed channel of every window leaves it
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=3.0)
    params = tmp_path / 'strict.yaml'
    params.write_text('softmaint_ingestion:\n  ros__parameters:\n    max_training_std: 0.001\n')
    assert evaluate(tmp_path / 'bag', tmp_path / 'out', '--params', str(params)) == 0
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    counts = metrics['out_of_training_range']
    assert counts['pressure'] == counts['tactile[0]'] == counts['proprio[7]'] == 2, counts
    assert not any(name.startswith('camera') for name in counts)
    assert "outside the model's training range (used, as onboard): {'" in \
        (tmp_path / 'out' / 'report.md').read_text()
