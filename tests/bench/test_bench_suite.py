"""softmaint-bench-suite: its pieces, and the quick mode end to end (well-formed, sane numbers)."""
import json
import math
import os
import subprocess
import sys

import pytest
from softmaint_bench.load import SyntheticSensors
from softmaint_bench.metrics import LATENCIES, NODES, process_usage, window_metrics
from softmaint_bench.probe import Probe, WindowRecord
from softmaint_bench.streams import LOADS, SOURCES
from softmaint_bench.suite import bench_parameters, robot_counts
from softmaint_core.metrics import percentiles
import yaml

HOP_NS = 1_000_000_000


def test_robot_counts_parse_a_list_or_a_maximum():
    assert robot_counts('3') == [1, 2, 3]
    assert robot_counts('1,2,4') == [1, 2, 4]
    assert robot_counts('0') == []
    for bad in ('two', '2,1', '1,1', '-1'):
        with pytest.raises(Exception, match='robot counts'):
            robot_counts(bad)


def test_percentiles_of_nothing_are_nan_and_ordered_otherwise():
    assert math.isnan(percentiles([])['p99'])
    stats = percentiles(list(range(1, 101)))
    assert stats['n'] == 100 and stats['max'] == 100
    assert stats['p50'] <= stats['p95'] <= stats['p99'] <= stats['max']


def test_process_usage_reads_this_process_and_none_for_a_gone_one():
    sum(i * i for i in range(200_000))      # some CPU time of our own
    usage = process_usage(os.getpid())
    assert usage['cpu_s'] > 0.0
    assert usage['peak_rss_mib'] >= usage['rss_mib'] > 1.0
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    assert process_usage(proc.pid) is None


def test_a_child_that_does_not_finish_is_a_timeout_error_naming_it_and_its_output():
    from softmaint_bench.child import Child
    child = Child('slow generator', [sys.executable, '-u', '-c',
                                     'import time; print("started"); time.sleep(60)'],
                  dict(os.environ))
    try:
        child.wait_for('started', 30.0)
        with pytest.raises(TimeoutError, match='slow generator did not finish') as err:
            child.json_result(0.2)
        assert 'started' in str(err.value)
    finally:
        child.stop(5.0)
    assert child.proc.returncode is not None


def test_window_metrics_count_sequence_gaps_skipped_hops_and_missing_predictions():
    def window(sequence, second, predicted=True, unavailable=()):
        end = (100 + second) * HOP_NS
        return WindowRecord(sequence, end, end - 2_000_000, end + 5_000_000, unavailable,
                            prediction_ns=end + 20_000_000 if predicted else None,
                            decision_ns=end + 22_000_000 if predicted else None)

    records = [window(0, 0), window(1, 1, unavailable=('tactile:STALE',)), window(3, 3),
               window(4, 5), window(5, 6, False, ('tactile:STALE', 'camera:INVALID'))]
    metrics = window_metrics(records, HOP_NS)
    assert metrics['complete_windows'] == 3
    assert metrics['unavailable'] == {'tactile:STALE': 2, 'camera:INVALID': 1}
    assert metrics['sequence_gaps'] == 1          # sequence 2 never arrived
    assert metrics['skipped_hops'] == 2           # seconds 2 and 4 have no window
    assert metrics['unpredicted'] == 1
    assert metrics['lost_windows'] == 3           # seconds 2 and 4, and 6's prediction
    assert metrics['latency_ms']['input_to_prediction'] == pytest.approx([22.0] * 4)
    assert metrics['latency_ms']['input_to_decision'] == pytest.approx([24.0] * 4)
    assert len(metrics['latency_ms']['input_to_window']) == 5


def test_parameters_reach_namespaced_nodes_with_reliable_sensor_qos(tmp_path):
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    base = tmp_path / 'base.yaml'
    base.write_text('softmaint_ingestion:\n  ros__parameters:\n    frame_id: arm\n')
    params = bench_parameters(base, ['robot3'], tmp_path)
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump(params))
    context = Context()
    rclpy.init(context=context, args=['--ros-args', '--params-file', str(path)])
    try:
        node = Node('softmaint_ingestion', namespace='robot3', context=context,
                    automatically_declare_parameters_from_overrides=True)
        values = {k: v.value for k, v in node.get_parameters_by_prefix('').items()}
        node.destroy_node()
    finally:
        context.try_shutdown()
    assert values['frame_id'] == 'arm'
    assert values['qos_overrides./robot3/camera/image_raw.subscription.reliability'] == \
        'reliable'
    assert values['qos_overrides./robot3/tactile.subscription.depth'] == 500


def test_synthetic_messages_pass_ingestion_checks_and_fill_every_modality():
    from builtin_interfaces.msg import Time
    from softmaint_core import topics
    from softmaint_core.image import image_msg_to_rgb
    from softmaint_core.messages import (read_actuation, read_environment, read_joints,
                                         read_tactile)
    from softmaint_core.window import HealthConfig, WindowAssembler
    sensors = SyntheticSensors(LOADS['light'])
    assembler = WindowAssembler(sensors.spec, HealthConfig())
    readers = {'camera': image_msg_to_rgb,
               'tactile': lambda m: read_tactile(m, sensors.spec.modality('tactile').features[0]),
               'joint_states': lambda m: read_joints(m, topics.BEND_JOINTS),
               'actuation': lambda m: read_actuation(m, topics.ACTUATORS),
               'environment': read_environment}
    start = 1000.0
    for source, rate in LOADS['light'].rates.items():
        for k in range(int(3 * rate)):
            now = start + k / rate
            stamp = Time(sec=int(now), nanosec=int(round(now % 1 * 1e9)))
            msg = sensors.message(source, stamp, now - start)
            assert assembler.push(source, now, readers[source](msg), now) is None, source
    window = assembler.assemble(start + 3.0)
    assert list(window.mask) == [True] * len(sensors.spec.modalities)


@pytest.mark.slow
def test_quick_mode_prints_a_report_and_sane_numbers(tmp_path):
    out, summary_path = tmp_path / 'bench.json', tmp_path / 'summary.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'softmaint_bench.suite', '--duration', '5', '--robots', '1',
         '--baselines', 'transport,transport_events,light', '--transport-robots', '2',   # 1 and 2
         '--soak', '6', '--bag-eval',
         '--json', str(out), '--summary', str(summary_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for heading in ('== transport', '== transport_events', '== transport robots=2', '== light',
                    '== robots=1', '== soak', '== bag evaluation', '== summary',
                    'robots sustained at full load', 'transport floor: robots'):
        assert heading in proc.stdout
    report = json.loads(out.read_text())
    phases = {p['phase']: p for p in report['phases']}
    assert list(phases) == ['transport', 'transport_events', 'transport robots=1',
                            'transport robots=2', 'light', 'robots=1', 'soak']
    summary = json.loads(summary_path.read_text())
    one = phases['robots=1']
    assert summary['decision_p99_ms_1robot'] == one['latency_ms']['input_to_decision']['p99']
    assert 0.0 <= summary['loss_rate_1robot'] <= 1.0
    assert summary['robots_sustained'] in (0, 1) and summary['robots_tried'] == [1]
    assert summary['bag_seconds'] > 60.0 and summary['bag_eval_realtime_factor'] > 1.0
    bag = report['bag']                          # most of the scenario (the recorder starts late)
    assert bag['predictions'] >= 60 and bag['skipped_no_input'] <= 5, bag
    assert set(bag['messages']) >= {'/camera/image_raw', '/tactile', '/joint_states'}
    assert [f['robots'] for f in summary['transport_floor']] == [1, 2]
    floor = summary['transport_floor'][1]
    two = phases['transport robots=2']
    assert floor['robots'] == 2 and len(two['per_robot']) == 2
    assert floor['lost_messages'] == sum(r['lost_messages'] for r in two['per_robot'].values())
    assert floor['p99_stamp_to_receive_ms'] == max(
        max(s['p99'] for s in r['latency_ms'].values()) for r in two['per_robot'].values())
    assert floor['generators_cores'] > 0.0 and floor['subscribers_cores'] > 0.0
    assert summary['soak_seconds'] == 6.0 and summary['machine']['cores'] >= 1
    soak = summary['soak_rss_mib']
    assert {name.rsplit('/', 1)[-1] for name in soak} == set(NODES)
    assert summary['rss_growth_mb_10min'] == max(n['growth_mib'] for n in soak.values())
    assert all(n['start_mib'] > 10.0 and n['end_mib'] > 10.0 for n in soak.values())
    for phase in phases.values():
        for robot in phase['per_robot'].values():
            seconds = phase['duration_s']
            for source, rate in LOADS[phase['load']['name']].rates.items():
                published = robot['published'][source]
                assert rate * seconds <= published <= rate * seconds + 1, (source, published)
                assert 0 <= robot['received'][source] <= published
        for name, usage in phase['processes'].items():
            assert 0.0 < usage['cpu_share'] <= os.cpu_count(), name
            assert usage['peak_rss_mib'] > 10.0, name
        assert 0.0 <= phase['machine']['busy_cores'] <= os.cpu_count() + 0.1
    for name in ('light', 'robots=1'):
        phase = phases[name]
        assert {p.rsplit('/', 1)[-1] for p in phase['processes']} >= set(NODES)
        robot = phase['per_robot']['robot0']
        assert robot['windows'] >= 2
        assert robot['complete_windows'] <= robot['windows']
        # the synthetic sensors pass ingestion's checks (tested above): no sample is refused
        assert sum(robot['rejected'].values()) == 0, robot['rejected']
        assert set(phase['ingestion_qos']) == set(SOURCES)
        assert all(q.startswith('reliable') for q in phase['ingestion_qos'].values())
        for key in LATENCIES:
            stats = phase['latency_ms'][key]
            assert stats['n'] >= 1, key
            assert 0.0 < stats['p50'] <= stats['p95'] <= stats['p99'] <= stats['max'] < 60e3
        assert phase['latency_ms']['input_to_window']['p50'] <= \
            phase['latency_ms']['input_to_prediction']['p50']
        assert phase['meets_target'] <= phase['keeps_up']
    camera = phases['transport']['latency_ms']['camera']
    assert 0.0 < camera['p50'] <= camera['max']


def test_probe_matches_predictions_and_decisions_that_overtake_their_window():
    from softmaint_interfaces.msg import (MaintenanceDecision, MaintenancePrediction,
                                          ModalityTensor, SensorWindow)
    probe = Probe()
    try:
        probe.watch('arm')
        window = SensorWindow(sequence=7, modalities=[
            ModalityTensor(name='camera', status=ModalityTensor.AVAILABLE),
            ModalityTensor(name='tactile', status=ModalityTensor.STALE)])
        window.header.stamp.sec, window.last_input_stamp.sec = 100, 99
        prediction = MaintenancePrediction(header=window.header, window_sequence=7)
        decision = MaintenanceDecision(prediction_stamp=window.header.stamp)
        decision.header.stamp.sec = 101
        probe._on_prediction('arm', prediction)
        probe._on_decision('arm', decision)
        probe._on_window('arm', window)
        [record] = probe.windows('arm', 0, 200 * HOP_NS)
    finally:
        probe.close()
    assert record.sequence == 7 and record.unavailable == ('tactile:STALE',)
    assert record.prediction_ns is not None
    assert record.decision_ns == 101 * HOP_NS
