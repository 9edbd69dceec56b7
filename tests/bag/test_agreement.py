"""
Live replay and offline evaluation of the same recorded bag agree.

A short live run of the sim robot (publishing /clock, faster than real time) is recorded with
softmaint-record on use_sim_time, so bag time is simulated time; softmaint-play --clock replays
it into the suite (softmaint-bringup use_sim_time:=true) while this test captures the
predictions and decisions; softmaint-evaluate-bag runs on the same bag. Predictions for the same
window stamps must agree within 1e-4 and decisions must be identical from the first window: the
live agent's watchdog gives the first prediction `startup_grace` more than `stale_timeout`
(before it did not, and under load it opened an assistance request at start-up that the offline
agent never saw, so the first windows had to be skipped).
Run with -s to see how many predictions and decisions were compared.
"""
import json
from pathlib import Path
import subprocess

import pytest

REPO = Path(__file__).resolve().parents[2]
SIM_SECONDS, SIM_RATE = 18.0, 3.0
# Half real time and long pauses around each /clock tick: a replay must not outrun the suite,
# or its nodes fall behind the clock and which late messages make a window depends on the CPU
# (this machine is shared by several busy processes).
PLAY_RATE, CLOCK_SETTLE = 0.5, 0.05
# Shorter hysteresis than the shipped file (both sides read it): decisions change more often
# over the short bag, so more changes are compared.
DEESCALATE_WINDOWS = 4


def _record(tmp_path, spawn) -> Path:
    from softmaint_bag.live_replay import SENSOR_TOPICS
    bag = tmp_path / 'run'
    recorder = spawn(['-m', 'softmaint_bag.recorder_node', '--out', str(bag),
                      '--topics', *SENSOR_TOPICS, '/softmaint/ground_truth',
                      '--ros-args', '-p', 'use_sim_time:=true'],
                     wait_for_line='recording to')
    robot = spawn(['-m', 'softmaint_sim.sim_robot', '--ros-args', '-p', 'scenario:=default',
                   '-p', f'duration:={SIM_SECONDS}', '-p', f'rate_factor:={SIM_RATE}',
                   '-p', 'publish_clock:=true'])
    assert robot.wait(timeout=60) == 0, robot.stdout.read()
    recorder.send_signal(subprocess.signal.SIGINT)
    output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0 and "'/tactile'" in output, output
    return bag


def _decided_windows(capture) -> set:
    return {d.prediction_stamp.sec * 10**9 + d.prediction_stamp.nanosec
            for d in capture.decisions}


@pytest.mark.slow
# Was intermittent on a loaded 2-core machine; the rclpy take errors at shutdown are fixed
# (softmaint_core.shutdown), DDS discovery timing under load may remain.
@pytest.mark.flaky(reruns=2)
def test_live_replay_and_offline_evaluation_agree(tmp_path, spawn, ros_context):
    from softmaint_bag.evaluate_cli import main
    from softmaint_bag.live_replay import (Listener, play, replay_params, suite_command)
    bag = _record(tmp_path, spawn)
    params = replay_params(REPO / 'config' / 'softmaint.yaml', tmp_path / 'params.yaml',
                           tmp_path / 'maintenance.db', deescalate_windows=DEESCALATE_WINDOWS)
    model = REPO / 'models' / 'student.onnx'
    listener = Listener(ros_context)
    spawn(suite_command(model, params)[1:])
    assert listener.spin_until(listener.suite_ready, 40.0), 'suite not up'
    play(listener, bag, PLAY_RATE, timeout=60.0, settle=CLOCK_SETTLE)

    out = tmp_path / 'offline'
    assert main([str(bag), '--model', str(model), '--params', str(params),
                 '--out', str(out)]) == 0
    offline = {w['end_ns']: w for w in map(json.loads, (out / 'windows.jsonl').open())}
    predicted = sorted(end for end, w in offline.items() if 'action' in w)
    live = listener.capture
    # The live suite's last predictions may still be on their way.
    assert listener.spin_until(lambda: predicted[-1] in live.predictions, 10.0)
    assert listener.spin_until(lambda: predicted[-1] in _decided_windows(live), 10.0)
    listener.close()

    assert len(predicted) >= 8, predicted   # the recorder misses the first seconds
    assert sorted(live.predictions) == predicted      # the same windows
    for end in predicted:
        got, expected = live.predictions[end], offline[end]
        assert list(got.input_modalities) == expected['available'], end
        for head in ('fatigue_probs', 'damage_probs'):
            assert list(getattr(got, head)) == pytest.approx(expected[head], abs=1e-4), \
                (end, head)
        assert got.urgency == pytest.approx(expected['urgency'], abs=1e-4), end
        assert got.uncertainty == pytest.approx(expected['uncertainty'], abs=1e-4), end

    compared = set()
    for decision in live.decisions:
        stamp = decision.prediction_stamp.sec * 10**9 + decision.prediction_stamp.nanosec
        basis = {kv.key: kv.value for kv in decision.evidence}.get('basis')
        if basis != 'prediction' or stamp not in predicted:
            continue
        assert decision.action_name == offline[stamp]['action'], stamp
        assert decision.workload_limit == pytest.approx(offline[stamp]['workload_limit'])
        compared.add(stamp)
    print(f'agreement: {len(predicted)} predictions compared (1e-4), decisions of '
          f'{len(compared)} windows compared')
    assert compared == set(predicted)     # the agent publishes every window's decision
