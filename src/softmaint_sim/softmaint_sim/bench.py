"""
softmaint-sim-bench: how fast the simulator is. Prints numbers; asserts nothing.

    softmaint-sim-bench [--episodes 40] [--parallel 400 --workers 2] [--node-seconds 10]
                        [--json bench.json]

  generator  episodes/s of one process, with camera rendering (the dataset's episodes) and
             without (physics, sensors and views only); wall and CPU time per episode
  parallel   `softmaint-dataset generate` with --workers into a temporary directory:
             episodes per minute and the projected time for 5,000 episodes
  live       cost of one LiveSim step (10 ms of simulated time) with the camera at 5 Hz
  node       the sim_robot node as a separate process at rate_factor 1, seen by a subscriber:
             received rate per topic against the nominal rate, the spread of arrival
             intervals, and the delay from the acquisition stamp to arrival
On a shared machine, CPU time per episode is the steadier number; wall time includes waiting.
"""
import argparse
import json
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np
from softmaint_core import topics

from . import episode as ep
from .live import LiveSim
from .scenario import load

NOMINAL_RATES = {topics.CAMERA: 5.0, topics.TACTILE: 100.0, topics.JOINT_STATES: 100.0,
                 topics.ACTUATION: 100.0, topics.ENVIRONMENT: 1.0, topics.GROUND_TRUTH: 1.0}


def bench_generator(episodes: int, render: bool) -> dict:
    """Generate `episodes` dataset episodes in this process; time them."""
    gen = ep.EpisodeGenerator(render=render)
    try:
        ep.generate(gen, 0, 0, 0.5, render=render)   # warm-up: first render, caches
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(1, episodes + 1):
            ep.generate(gen, 0, index, 0.5, render=render)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gen.close()
    return {'episodes': episodes, 'render': render, 'episodes_per_s': episodes / wall,
            'wall_ms_per_episode': 1e3 * wall / episodes,
            'cpu_ms_per_episode': 1e3 * cpu / episodes}


def bench_parallel(episodes: int, workers: int) -> dict:
    """Time `softmaint-dataset generate` with `workers` processes (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'bench'
        start = time.perf_counter()
        subprocess.run([sys.executable, '-m', 'softmaint_sim.dataset_cli', 'generate',
                        '--out', str(out), '--episodes', str(episodes), '--seed', '1',
                        '--workers', str(workers), '--shard-size', '50', '--no-progress'],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    per_minute = 60.0 * episodes / wall
    return {'episodes': episodes, 'workers': workers, 'wall_s': wall,
            'episodes_per_minute': per_minute, 'minutes_for_5000': 5000.0 / per_minute}


def bench_live(steps: int) -> dict:
    """Cost of LiveSim.step() on the default scenario, camera rendered at 5 Hz."""
    sim = LiveSim(load('default'))
    try:
        sim.step()
        costs = np.empty(steps)
        for k in range(steps):
            start = time.perf_counter()
            sim.step()
            costs[k] = time.perf_counter() - start
    finally:
        sim.close()
    return {'steps': steps, 'mean_us': 1e6 * costs.mean(),
            'p50_us': 1e6 * np.median(costs), 'p99_us': 1e6 * np.percentile(costs, 99),
            'realtime_fraction': costs.mean() / 0.01}


def bench_node(seconds: float) -> dict:
    """Run sim_robot at rate_factor 1 in a child process; measure what a subscriber gets."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from softmaint_interfaces.msg import GroundTruth
    from softmaint_ros.message_types import message_class
    classes = {topic: message_class(msgtype) for msgtype, topic in topics.SENSORS.values()}
    classes[topics.GROUND_TRUTH] = GroundTruth
    rclpy.init()
    node = rclpy.create_node('softmaint_sim_bench')
    arrivals = {topic: [] for topic in classes}   # (arrival, stamp) [s, wall clock]

    def on_message(topic, msg):
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        arrivals[topic].append((time.time(), stamp))

    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
    for topic, cls in classes.items():
        node.create_subscription(cls, topic, lambda m, t=topic: on_message(t, m), qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    child = subprocess.Popen([sys.executable, '-m', 'softmaint_sim.sim_robot', '--ros-args',
                              '-p', f'duration:={seconds + 5.0}'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30.0
        while not arrivals['tactile'] and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for values in arrivals.values():
            values.clear()   # measure from the first message on, not from discovery
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            executor.spin_once(timeout_sec=0.05)
    finally:
        child.terminate()
        child.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
    out = {}
    for topic, values in arrivals.items():
        values = np.array(values).reshape(-1, 2)
        intervals = np.diff(values[:, 0]) if len(values) > 1 else np.array([np.nan])
        delay = values[:, 0] - values[:, 1] if len(values) else np.array([np.nan])
        out[topic] = {'nominal_hz': NOMINAL_RATES[topic], 'received_hz': len(values) / seconds,
                      'interval_ms_mean': 1e3 * float(np.mean(intervals)),
                      'interval_ms_std': 1e3 * float(np.std(intervals)),
                      'delay_ms_p50': 1e3 * float(np.median(delay)),
                      'delay_ms_p99': 1e3 * float(np.percentile(delay, 99))}
    return out


def report(results: dict) -> str:
    """Human-readable summary of the results."""
    lines = []
    for row in results.get('generator', []):
        lines.append(f'generator ({"with" if row["render"] else "without"} camera): '
                     f'{row["episodes_per_s"]:.1f} episodes/s, {row["wall_ms_per_episode"]:.0f} '
                     f'ms wall / {row["cpu_ms_per_episode"]:.0f} ms CPU per episode')
    if 'parallel' in results:
        p = results['parallel']
        lines.append(f'parallel ({p["workers"]} workers, {p["episodes"]} episodes): '
                     f'{p["episodes_per_minute"]:.0f} episodes/min; 5,000 episodes in '
                     f'{p["minutes_for_5000"]:.1f} min (target < 5)')
    if 'live' in results:
        live = results['live']
        lines.append(f'live step (10 ms simulated): mean {live["mean_us"]:.0f} us, p50 '
                     f'{live["p50_us"]:.0f} us, p99 {live["p99_us"]:.0f} us '
                     f'({live["realtime_fraction"]:.1%} of real time)')
    for topic, row in results.get('node', {}).items():
        lines.append(f'node {topic:<24} {row["received_hz"]:7.2f} Hz of {row["nominal_hz"]:g}; '
                     f'arrival interval {row["interval_ms_mean"]:.1f} +- '
                     f'{row["interval_ms_std"]:.1f} ms; stamp-to-arrival p50 '
                     f'{row["delay_ms_p50"]:.1f} ms, p99 {row["delay_ms_p99"]:.1f} ms')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Entry point of softmaint-sim-bench."""
    parser = argparse.ArgumentParser(prog='softmaint-sim-bench',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('--episodes', type=int, default=40,
                        help='episodes per single-process measurement (0 = skip)')
    parser.add_argument('--parallel', type=int, default=0, metavar='N',
                        help='also time softmaint-dataset generate on N episodes (0 = skip)')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--live-steps', type=int, default=2000)
    parser.add_argument('--node-seconds', type=float, default=0.0,
                        help='also measure the sim_robot node for S seconds (0 = skip)')
    parser.add_argument('--json', type=Path, help='also write the results to this file')
    args = parser.parse_args(argv)
    if min(args.episodes, args.parallel, args.live_steps, args.node_seconds) < 0 \
            or args.workers < 1:
        parser.error('counts and seconds must be >= 0, --workers >= 1')
    results = {}
    if args.episodes:
        results['generator'] = [bench_generator(args.episodes, render)
                                for render in (True, False)]
    if args.parallel:
        results['parallel'] = bench_parallel(args.parallel, args.workers)
    if args.live_steps:
        results['live'] = bench_live(args.live_steps)
    if args.node_seconds:
        results['node'] = bench_node(args.node_seconds)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
