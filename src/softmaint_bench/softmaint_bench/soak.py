"""
Soak: the node suite at a multiple of its nominal input rate, then back at the nominal rate.

    softmaint-bench-soak [--duration 60] [--factor 10] [--warmup 15] [--recovery 20]
                         [--json PATH]

Nominal is the `light` load: every sensor at the rate the student reads it (models/
student.json: camera 5 Hz, tactile and proprioception 100 Hz, environment 1 Hz), as the sim
robot publishes them (64x64 camera). The suite runs as deployed: softmaint-bringup with the
shipped parameters (sensor-data QoS, so ingestion keeps only the newest few messages of each
sensor) in the namespace `soak`, with a private maintenance log. Three load generators start
together and take turns without a gap: nominal for --warmup seconds, --factor x nominal for
--duration seconds, nominal again for --recovery seconds.

Measured per phase: messages per second published and received by ingestion (its /diagnostics
counts), windows and windows with a decision (the agent's decision on that window's
prediction) per second, lost windows. Per node: RSS (VmRSS) at the start of the overload, its
peak from then on (sampled every 0.5 s, and VmHWM) and at the end of the recovery, and its CPU
share during the overload. Nodes that died: softmaint-bringup reports every node that exits by
itself (and then stops the others).
"""
import argparse
import json
import math
import os
from pathlib import Path
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from softmaint import bringup
import yaml

from .child import Child, child_env
from .metrics import load_average, snapshot, window_metrics
from .probe import Probe
from .streams import Load, LOADS
from .suite import (bench_command, dds_profile_arg, default_dds_profile, SETTLE_TIMEOUT,
                    START_TIMEOUT, Suite)

NAMESPACE = 'soak'
NOMINAL = LOADS['light']
# Period of the RSS, CPU and message count samples [s].
SAMPLE_PERIOD = 0.5
# Time the generators get to start and find ingestion on a busy machine [s].
GENERATOR_START = 20.0


class Sampler:
    """Samples the nodes' /proc usage and ingestion's count of received messages in a thread."""

    def __init__(self, pids: Dict[str, int], received: Callable[[], Tuple[int, int]]):
        self.usage: List[Tuple[float, Dict[str, dict]]] = []     # (system time, per node)
        self.received: Dict[int, int] = {}      # ingestion's report stamp [ns] -> messages
        self._pids, self._received = pids, received
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(SAMPLE_PERIOD):
            self.usage.append((time.time(), snapshot(self._pids)))
            stamp, total = self._received()
            if stamp:
                self.received[stamp] = total

    def usage_at(self, wall: float) -> Dict[str, dict]:
        """Return the newest usage sampled at or before system time `wall` (else the first)."""
        before = [u for t, u in self.usage if t <= wall]
        return before[-1] if before else self.usage[0][1]

    def received_per_s(self, start: float, end: float) -> float:
        """
        Messages per second ingestion received from system time `start` to `end`.

        From its first to its last report in that time: every message they count arrived in
        it (interpolating across a boundary would count the other phase's rate).
        """
        stamps = sorted(s for s in self.received if start * 1e9 <= s <= end * 1e9)
        if len(stamps) < 2:
            return math.nan
        return ((self.received[stamps[-1]] - self.received[stamps[0]])
                / ((stamps[-1] - stamps[0]) / 1e9))

    def stop(self) -> None:
        """Stop sampling."""
        self._stopped.set()
        self._thread.join(5.0)


def phase_numbers(generator: dict, load: Load, sampler: Sampler, probe: Probe,
                  hop_ns: int) -> dict:
    """Messages, windows and decisions of one phase, from its generator's start to end."""
    start, end = generator['start'], generator['end']
    seconds = end - start
    records = probe.windows(NAMESPACE, int(start * 1e9), int(end * 1e9))
    windows = window_metrics(records, hop_ns)
    return {'load': load.name, 'start': start, 'seconds': seconds,
            'offered_per_s': sum(load.rates.values()),
            'published_per_s': sum(generator['published'].values()) / seconds,
            'received_per_s': sampler.received_per_s(start, end),
            'generator_late_share': generator['late_share'],
            'windows': windows['windows'], 'lost_windows': windows['lost_windows'],
            'decided_windows': windows['decided'],
            'decided_per_s': windows['decided'] / seconds}


def node_numbers(sampler: Sampler, overload: dict, end: float) -> Dict[str, dict]:
    """
    RSS [MiB] of every node from the overload's start to `end`, CPU share in the overload.

    RSS halfway through and at the end of the overload tell a plateau from steady growth.
    """
    start, seconds = overload['start'], overload['seconds']
    first = sampler.usage_at(start)
    half, during = sampler.usage_at(start + seconds / 2), sampler.usage_at(start + seconds)
    last = sampler.usage_at(end)
    later = [u for t, u in sampler.usage if start <= t <= end]
    nodes = {}
    for node, usage in first.items():
        final = last.get(node, usage)
        nodes[node] = {
            'rss_start_mib': usage['rss_mib'],
            'rss_overload_half_mib': half.get(node, usage)['rss_mib'],
            'rss_overload_end_mib': during.get(node, usage)['rss_mib'],
            'rss_end_mib': final['rss_mib'],
            'rss_peak_mib': max([usage['rss_mib']] + [u[node]['rss_mib'] for u in later
                                                      if node in u]),
            'vmhwm_mib': final['peak_rss_mib'],
            'rss_growth_mib': final['rss_mib'] - usage['rss_mib'],
            'cpu_share_overload': (during.get(node, usage)['cpu_s'] - usage['cpu_s']) / seconds}
    return nodes


def run(args: argparse.Namespace) -> dict:
    """Start the suite, run the three phases, return every number."""
    from softmaint_core.metadata import ModelMetadata
    spec = ModelMetadata.from_json(bringup.model_for().with_suffix('.json').read_text()
                                   ).input_spec
    env = child_env(args.dds_profile)
    if args.dds_profile is not None:   # the probe in this process uses the same transports
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(args.dds_profile)
    plan = {'warmup': (1.0, args.warmup), 'overload': (args.factor, args.duration),
            'recovery': (1.0, args.recovery)}
    hop_ns = int(spec.hop * 1e9)
    load0 = load_average()
    with tempfile.TemporaryDirectory(prefix='softmaint-soak-') as workdir:
        params = yaml.safe_load(Path(bringup.arguments()['params_file'][0]).read_text())
        params['softmaint_agent']['ros__parameters']['log_path'] = str(
            Path(workdir) / 'maintenance.db')
        params_file = Path(workdir) / 'params.yaml'
        params_file.write_text(yaml.safe_dump(params))
        probe = Probe()
        suite, sampler, generators = None, None, []
        try:
            probe.watch(NAMESPACE)
            suite = Suite(NAMESPACE, params_file, env)
            sampler = Sampler(suite.pids, lambda: probe.ingestion_total(NAMESPACE))
            start = time.time() + GENERATOR_START
            for name, (factor, seconds) in plan.items():
                generators.append(Child(f'load {name}', bench_command(
                    'load', '--namespace', NAMESPACE, '--load', NOMINAL.name, '--rate-factor',
                    str(factor), '--duration', str(seconds), '--start-at', repr(start)), env))
                start += seconds
            probe.ready([NAMESPACE], START_TIMEOUT)
            results = [g.json_result(start - time.time() + 120.0) for g in generators]
            end = results[-1]['end']
            probe.settle([NAMESPACE], int(end * 1e9), hop_ns, SETTLE_TIMEOUT)
            sampler.stop()
            phases = {name: phase_numbers(result, NOMINAL.scaled(factor), sampler, probe,
                                          hop_ns)
                      for (name, (factor, _)), result in zip(plan.items(), results)}
            died = [m.group(1) for m in suite.child.matches(r'\[bringup\] (\S+) exited with')]
            if suite.child.proc.poll() is not None and not died:
                died = ['softmaint-bringup']
            tracebacks = len(suite.child.matches('Traceback'))
        finally:
            if sampler is not None:
                sampler.stop()
            for generator in generators:
                generator.stop(5.0)
            if suite is not None:
                suite.stop()
            probe.close()
    nodes = node_numbers(sampler, phases['overload'], end)
    return {'command': sys.argv, 'namespace': NAMESPACE, 'factor': args.factor,
            'nominal': NOMINAL.describe(), 'overload': NOMINAL.scaled(args.factor).describe(),
            'dds_profile': str(args.dds_profile or ''), 'phases': phases, 'nodes': nodes,
            'worst_rss_growth_mib': max(n['rss_growth_mib'] for n in nodes.values()),
            'died': died, 'crashes': len(died), 'tracebacks': tracebacks,
            'load_average': {'start': load0, 'end': load_average()}}


def report(result: dict) -> List[str]:
    """Report lines of a soak."""
    lines = [f'== soak: {result["factor"]:g}x the nominal input rate; nominal: '
             f'{result["nominal"]}', f'   overload: {result["overload"]}']
    for name, p in result['phases'].items():
        lines.append(f'   {name:9s} {p["seconds"]:5.1f} s: messages/s offered '
                     f'{p["offered_per_s"]:6.0f}, published {p["published_per_s"]:6.0f}, '
                     f'received by ingestion {p["received_per_s"]:6.0f}; windows '
                     f'{p["windows"]}, lost {p["lost_windows"]}; decided windows/s '
                     f'{p["decided_per_s"]:.2f}')
    for node, n in result['nodes'].items():
        lines.append(f'   {node:20s} RSS [MiB] start {n["rss_start_mib"]:6.1f}, overload half '
                     f'{n["rss_overload_half_mib"]:6.1f} end {n["rss_overload_end_mib"]:6.1f}, '
                     f'peak {n["rss_peak_mib"]:6.1f} (VmHWM {n["vmhwm_mib"]:6.1f}), end '
                     f'{n["rss_end_mib"]:6.1f}: growth {n["rss_growth_mib"]:+5.1f}; CPU in the '
                     f'overload {100 * n["cpu_share_overload"]:.0f} % of a core')
    lines.append(f'   nodes died: {result["crashes"]} {result["died"] or ""}; tracebacks '
                 f'{result["tracebacks"]}; load average {result["load_average"]["start"][0]:.2f}'
                 f' -> {result["load_average"]["end"][0]:.2f}')
    return lines


def parser() -> argparse.ArgumentParser:
    """Command line of softmaint-bench-soak."""
    profile = os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or default_dds_profile()
    p = argparse.ArgumentParser(prog='softmaint-bench-soak', description=__doc__.split(
        '\n\n')[0].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=float, default=60.0,
                   help='seconds of overload (default 60)')
    p.add_argument('--factor', type=float, default=10.0,
                   help='overload input rate as a multiple of the nominal one (default 10)')
    p.add_argument('--warmup', type=float, default=15.0,
                   help='seconds at the nominal rate before the overload (default 15)')
    p.add_argument('--recovery', type=float, default=20.0,
                   help='seconds at the nominal rate after the overload (default 20)')
    p.add_argument('--dds-profile', type=dds_profile_arg, default=profile,
                   help=f"Fast DDS profile XML for every process, or 'none' (default: "
                        f'$FASTDDS_DEFAULT_PROFILES_FILE, else {profile})')
    p.add_argument('--json', type=Path, help='also write every number to this JSON file')
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of softmaint-bench-soak."""
    args = parser().parse_args(argv)
    try:
        result = run(args)
    except (RuntimeError, TimeoutError) as err:
        print(f'softmaint-bench-soak: error: {err}', file=sys.stderr)
        return 1
    print('\n'.join(report(result)), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
