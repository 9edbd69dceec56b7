"""
Benchmark: offline bag evaluation against replaying the same bag into the live suite.

    softmaint-bag-bench BAG --model models/student.onnx [--params config/softmaint.yaml]
                        [--rate 1.0] [--out bench.json]

In one run: the bag is replayed live (softmaint-bringup use_sim_time:=true + softmaint-play
--clock at --rate) while the predictions are captured, then evaluated offline
(softmaint-evaluate-bag's pipeline). Prints windows/s and realtime factor of both, their ratio,
and how far the live predictions are from the offline ones on the same windows.
"""
import argparse
import json
from pathlib import Path
import signal
import subprocess
import sys
import tempfile

import numpy as np
import rclpy
from softmaint_ros.children import child_env

from .evaluate import evaluate, load_params
from .live_replay import CLOCK_SETTLE, Listener, play, replay_params, suite_command


def live_run(bag: Path, model: Path, params: Path, rate: float, bag_seconds: float,
             settle: float):
    """Replay `bag` into a fresh suite; return (Capture, player wall time [s])."""
    suite = subprocess.Popen(suite_command(model, params), env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    listener = Listener()
    try:
        if not listener.spin_until(listener.suite_ready, 60.0):
            raise TimeoutError('the suite did not come up in 60 s')
        wall = play(listener, bag, rate, timeout=bag_seconds / rate + 60.0, settle=settle)
        listener.wait_until_quiet()
        return listener.capture, wall
    finally:
        listener.close()
        suite.send_signal(signal.SIGINT)
        try:
            suite.wait(timeout=20)
        except subprocess.TimeoutExpired:
            suite.kill()
            suite.wait()


def compare(capture, evaluation, tolerance: float = 1e-4) -> dict:
    """How far live predictions are from offline ones on the windows both have."""
    offline = {w.end_ns: w for w in evaluation.windows if w.prediction is not None}
    common = sorted(set(offline) & set(capture.predictions))
    diffs, inputs_differ = [], 0
    for end in common:
        live, expected = capture.predictions[end], offline[end].prediction
        diffs.append(max(
            np.abs(np.asarray(live.fatigue_probs) - expected.fatigue_probs).max(),
            np.abs(np.asarray(live.damage_probs) - expected.damage_probs).max(),
            abs(live.urgency - expected.urgency)))
        inputs_differ += tuple(live.input_modalities) != offline[end].available
    return {'windows_compared': len(common), 'offline_only': len(set(offline) - set(common)),
            'live_only': len(set(capture.predictions) - set(common)),
            f'within_{tolerance:g}': int(sum(d <= tolerance for d in diffs)),
            'available_inputs_differ': inputs_differ,
            'max_abs_difference': float(max(diffs)) if diffs else None}


def main(args=None) -> int:
    """Entry point of softmaint-bag-bench."""
    parser = argparse.ArgumentParser(prog='softmaint-bag-bench',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', type=Path)
    parser.add_argument('--model', type=Path, required=True)
    parser.add_argument('--params', type=Path, default=Path('config/softmaint.yaml'))
    parser.add_argument('--rate', type=float, default=1.0, help='live replay rate')
    parser.add_argument('--clock-settle', type=float, default=CLOCK_SETTLE,
                        help='softmaint-play --clock-settle of the live replay')
    parser.add_argument('--out', type=Path, help='write the numbers as JSON here')
    options = parser.parse_args(sys.argv[1:] if args is None else args)
    from softmaint_core.student import StudentModel
    model = StudentModel(options.model)
    with tempfile.TemporaryDirectory() as scratch:
        params = replay_params(options.params, Path(scratch) / 'params.yaml',
                               Path(scratch) / 'maintenance.db')
        from .reading import Bag
        with Bag(options.bag) as bag:
            bag_seconds = (bag.end - bag.start) * 1e-9
        rclpy.init()
        try:
            capture, live_wall = live_run(options.bag, options.model, params, options.rate,
                                          bag_seconds, options.clock_settle)
        finally:
            rclpy.try_shutdown()
        evaluation = evaluate(options.bag, model, load_params(params))
    windows = len(evaluation.windows)
    result = {
        'bag': str(options.bag), 'bag_seconds': bag_seconds, 'windows': windows,
        'live': {'rate': options.rate, 'wall_seconds': live_wall,
                 'predictions': len(capture.predictions),
                 'windows_per_second': windows / live_wall,
                 'realtime_factor': bag_seconds / live_wall},
        'offline': {'wall_seconds': evaluation.wall_seconds,
                    'predictions': sum(w.prediction is not None for w in evaluation.windows),
                    'windows_per_second': windows / evaluation.wall_seconds,
                    'realtime_factor': bag_seconds / evaluation.wall_seconds},
        'agreement': compare(capture, evaluation),
    }
    result['offline_over_live'] = result['live']['wall_seconds'] / evaluation.wall_seconds
    live, offline = result['live'], result['offline']
    print(f'{options.bag}: {bag_seconds:.1f} s of bag, {windows} windows\n'
          f'  live replay  (rate {options.rate:g}): {live["wall_seconds"]:7.2f} s  '
          f'{live["windows_per_second"]:8.1f} windows/s  {live["realtime_factor"]:6.2f}x '
          f'real time\n'
          f'  offline evaluation:   {offline["wall_seconds"]:7.2f} s  '
          f'{offline["windows_per_second"]:8.1f} windows/s  {offline["realtime_factor"]:6.2f}x '
          f'real time\n'
          f'  offline / live: {result["offline_over_live"]:.1f}x faster; '
          f'agreement {result["agreement"]}', flush=True)
    if options.out:
        options.out.write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
