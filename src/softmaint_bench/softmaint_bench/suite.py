"""
Suite benchmark: field-rate sensor load into the real node suite; what arrives, how late, cost.

    softmaint-bench-suite [--duration 30] [--robots 4] [--baselines transport,light,...]
                          [--transport-robots 2,4,8]
                          [--dds-profile PATH|none] [--keep-going] [--soak 600] [--bag-eval]
                          [--json PATH] [--summary PATH]
    softmaint-bench-suite --duration 5 --robots 1                     (quick mode)

starts the suite with softmaint-bringup (one namespace per robot: robot0, robot1, ...) and one
load generator process per robot publishing, with reliable QoS:

    camera/image_raw   sensor_msgs/Image 640x480 rgb8     30 Hz
    tactile            TactileArray, 8 taxels            500 Hz
    joint_states       JointState bend_0..bend_3         200 Hz
    actuation          ActuatorState chamber_0, chamber_1  200 Hz
    environment        EnvironmentReading                 10 Hz

Values are synthetic but valid: every channel moves around the model's normalisation mean by
its standard deviation (so no sensor reads as FROZEN), camera frames are a moving bright arm on
the training images' mean colour with noise. Ingestion's sensor subscriptions are switched to
reliable QoS through its qos_overrides parameters (depth: one second of messages), in a parameter
file derived from the suite's own (config/softmaint.yaml).

Measured per phase, each for `--duration` seconds of load:
  - messages published (load generator) vs received by ingestion (accepted + rejected on its
    /diagnostics);
  - windows lost: gaps in SensorWindow.sequence, skipped hops (window end stamps further apart
    than the hop) and windows without a prediction;
  - latency from each window's last_input_stamp to the window, to its prediction (receive time
    at the benchmark's subscriber, same system clock) and to its decision (the stamp of the
    decision the agent publishes for that window's prediction);
  - CPU seconds (share of one core), peak RSS and RSS at the phase's start and end of every
    node and load generator process, from /proc/<pid>/stat and /proc/<pid>/status; the
    machine's load average and busy share.

--soak adds a long phase of robot0 at the field stream (memory growth), --bag-eval times the
offline evaluation of the default scenario's bag, and --summary writes the headline figures
(softmaint_bench.summary) to a JSON file.

Every process gets the Fast DDS profile config/fastdds_profile.xml (16 MiB shared-memory
segment, 4 MiB UDP buffers) through FASTDDS_DEFAULT_PROFILES_FILE unless told otherwise.

Phases: the baselines first, then the sweep. `transport`: the same messages to a bare
subscriber process, no suite (raw DDS cost); `transport_default`: the same with Fast DDS's
default transports (no profile); `transport_events`: the same subscriber spun by rclpy's
EventsExecutor instead of the SingleThreadedExecutor. `transport robots=N`
(--transport-robots): N robots' load generators into N bare subscribers spun like ingestion
(EventsExecutor), the transport floor under the suite at N robots: it meets the target when
nothing is lost or refused and every modality's p99 stamp -> receive (worst robot) is <= 50 ms.
`light`: robot0's suite at
the sim robot's load (64x64 camera at 5 Hz, 100 Hz vectors, 1 Hz environment). Sweep: 1, 2, ...
robots, each with its own suite and load generator, all at full load at once. A robot count
*keeps up* when no message is lost or refused and no window lost, and the p99 window-to-decision
latency is below the hop (each decision before the next window); it *meets the target* when that
p99 is also <= 50 ms. The sweep stops at the first robot count that does not keep up.

    softmaint-bench-suite load --namespace robot0 [--load field|light] [--duration 30]
                               [--rate-factor 1] [--start-at EPOCH_SECONDS]
    softmaint-bench-suite sink --namespace NS [--executor single|events]

are the load generator and the bare subscriber on their own (the load generator also works
against any running suite).
"""
import argparse
from dataclasses import asdict
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

from softmaint import bringup
from softmaint_core.metrics import percentiles
import yaml

from .child import Child, child_env
from .load import load_main
from .metrics import (FLOOR_PHASE, LATENCIES, load_average, machine_times, MAX_P99_DECISION_MS,
                      NODES, process_usage, snapshot, usage_between, window_metrics)
from .probe import Probe
from .report import format_phase, format_summary
from .sink import sink_main
from .streams import Load, LOADS, reliable_qos, sensor_topics, SOURCES
from .summary import bag_evaluation, record_default_bag, summary

# How long the suite may take to start (imports, model checks) on a busy machine [s].
START_TIMEOUT = 90.0
# How long counts may take to settle after the load stops [s].
SETTLE_TIMEOUT = 15.0
GENERATOR_KEYS = ('refused', 'all_acked', 'late_share', 'late_ms_p99')
BASELINES = ('transport', 'transport_default', 'transport_events', 'light')


def bench_parameters(base_file: Path, namespaces: Sequence[str], log_dir: Path) -> dict:
    """
    Return the suite's parameters for the benchmark.

    The base file's values for every namespace, plus reliable QoS on ingestion's sensor
    subscriptions and a private maintenance log per robot. The base file is keyed by bare node
    names, which rcl matches only without a namespace; keys become /**/<node> so that the same
    values reach the nodes in every namespace.
    """
    base = yaml.safe_load(base_file.read_text()) or {}
    params = {f'/**/{name.lstrip("/")}': section for name, section in base.items()}
    max_rates = {s: max(load.rates[s] for load in LOADS.values()) for s in SOURCES}
    for namespace in namespaces:
        overrides = {}
        for source, (_, topic) in sensor_topics(namespace).items():
            qos = reliable_qos(max_rates[source])
            overrides[topic] = {'subscription': {'reliability': 'reliable',
                                                 'history': 'keep_last', 'depth': qos.depth}}
        params[f'/{namespace}/softmaint_ingestion'] = {
            'ros__parameters': {'qos_overrides': overrides}}
        params[f'/{namespace}/softmaint_agent'] = {
            'ros__parameters': {'log_path': str(log_dir / f'{namespace}.db')}}
    return params


def default_dds_profile() -> Optional[Path]:
    """config/fastdds_profile.xml of the installed package or the source tree, if present."""
    for root in (bringup.share_dir(), Path(__file__).resolve().parents[3]):
        path = root / 'config' / 'fastdds_profile.xml'
        if path.is_file():
            return path
    return None


# ---------------------------------------------------------------------------- suites and phases


def bench_command(*args: str) -> List[str]:
    """Command line of this module with `args`."""
    return [sys.executable, '-m', 'softmaint_bench.suite', *args]


class Suite:
    """One robot's node suite started through softmaint-bringup, with the node pids."""

    def __init__(self, namespace: str, params_file: Path, env: Dict[str, str]):
        self.namespace = namespace
        self.child = Child(f'bringup {namespace}', [
            sys.executable, '-m', 'softmaint.bringup', f'namespace:={namespace}',
            f'params_file:={params_file}', 'log_level:=warn'], env)
        self.pids = {node: int(self.child.wait_for(
            rf'started {node} \(pid (\d+)\)', START_TIMEOUT).group(1)) for node in NODES}

    def warnings(self, since: int = 0) -> List[str]:
        """Warning and error lines the nodes printed after output line `since`."""
        return [m.string for m in self.child.matches(r'\[(WARN|ERROR|FATAL)\]', since)]

    def stop(self) -> None:
        """Stop bringup (it stops the nodes); kill any node left over."""
        self.child.stop(bringup.SHUTDOWN_GRACE + 10.0)
        for pid in self.pids.values():
            if process_usage(pid) is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class Bench:
    """The benchmark's suites, probe and phases."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.env = child_env(args.dds_profile)
        if args.dds_profile is not None:   # the probe in this process uses the same transports
            os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(args.dds_profile)
        from softmaint_core.metadata import ModelMetadata
        metadata = bringup.model_for().with_suffix('.json')
        self.spec = ModelMetadata.from_json(metadata.read_text()).input_spec
        self.suites: List[Suite] = []
        self.probe = Probe()

    def namespaces(self, robots: int) -> List[str]:
        """Namespaces of the first `robots` robots."""
        return [f'robot{i}' for i in range(robots)]

    def start_suites(self, robots: int) -> None:
        """Start suites until `robots` run; wait until each turns windows into decisions."""
        params_file = self.workdir / 'params.yaml'
        names = self.namespaces(robots)
        params = bench_parameters(Path(bringup.arguments()['params_file'][0]), names,
                                  self.workdir)
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        started = []
        for namespace in names[len(self.suites):]:
            self.probe.watch(namespace)
            suite = Suite(namespace, params_file, self.env)
            self.suites.append(suite)
            started.append(namespace)
        self.probe.ready(started, START_TIMEOUT)

    def run_generators(self, namespaces: Sequence[str], load: Load, watched: Dict[str, int],
                       env: Dict[str, str], duration: float
                       ) -> Tuple[List[dict], Dict[str, dict], dict]:
        """Run one load generator per namespace; return their results, usage, machine load."""
        gens = [Child(f'load {ns}', bench_command('load', '--namespace', ns, '--load',
                                                  load.name, '--duration', str(duration)), env)
                for ns in namespaces]
        try:
            for gen in gens:
                gen.wait_for('^publishing$', START_TIMEOUT)
            before, busy0, wall0 = snapshot(watched), machine_times(), time.monotonic()
            load0 = load_average()
            for gen in gens:
                gen.proc.wait(duration + 60.0)
            after, busy1, wall1 = snapshot(watched), machine_times(), time.monotonic()
            results = [gen.json_result(30.0) for gen in gens]
        finally:
            for gen in gens:
                gen.stop(5.0)
        wall = wall1 - wall0
        machine = {'wall_s': wall, 'load_average_start': load0, 'load_average_end':
                   load_average(), 'cores': os.cpu_count(),
                   'busy_cores': (busy1[0] - busy0[0]) / wall}
        usage = usage_between(before, after, wall)
        usage.update({gen.name: result.pop('usage') for gen, result in zip(gens, results)})
        return results, usage, machine

    def suite_phase(self, name: str, robots: int, load: Load,
                    duration: Optional[float] = None) -> dict:
        """Full or light load into the first `robots` suites; collect every number."""
        duration = duration or self.args.duration
        self.start_suites(robots)
        names = self.namespaces(robots)
        suites = {s.namespace: s for s in self.suites[:robots]}
        watched = {f'{ns}/{node}': pid for ns, s in suites.items() for node, pid in s.pids.items()}
        received0 = {ns: self.probe.ingestion_counts(ns) for ns in names}
        output0 = {ns: len(s.child.lines) for ns, s in suites.items()}
        gens, usage, machine = self.run_generators(names, load, watched, self.env, duration)
        last_end = max(g['end'] for g in gens)
        hop_ns = int(self.spec.hop * 1e9)
        settled = self.probe.settle(names, int(last_end * 1e9), hop_ns, SETTLE_TIMEOUT)
        robots_out = {}
        for gen in gens:
            ns = gen['namespace']
            counts = self.probe.ingestion_counts(ns)
            accepted, rejected = ({s: counts[s][i] - received0[ns][s][i] for s in SOURCES}
                                  for i in (0, 1))
            received = {s: accepted[s] + rejected[s] for s in SOURCES}
            first_full = int((gen['start'] + self.spec.window) * 1e9)
            records = self.probe.windows(ns, first_full, int(gen['end'] * 1e9))
            robots_out[ns] = {
                'published': gen['published'], 'received': received, 'rejected': rejected,
                'lost_messages': sum(gen['published'][s] - received[s] for s in SOURCES),
                'generator': {k: gen[k] for k in GENERATOR_KEYS},
                **window_metrics(records, hop_ns)}
        latency = {key: percentiles([v for r in robots_out.values()
                                     for v in r['latency_ms'][key]]) for key in LATENCIES}
        for robot in robots_out.values():
            robot['latency_ms'] = {k: percentiles(v) for k, v in robot['latency_ms'].items()}
        lost_messages = sum(r['lost_messages'] for r in robots_out.values())
        lost_windows = sum(r['lost_windows'] for r in robots_out.values())
        refused = sum(sum(g['refused'].values()) for g in gens)
        decision_p99 = latency['input_to_decision']['p99']
        keeps_up = (lost_messages == 0 and refused == 0 and lost_windows == 0 and settled
                    and decision_p99 < self.spec.hop * 1e3)
        return {'phase': name, 'kind': 'suite', 'robots': robots, 'load': asdict(load),
                'ingestion_qos': self.probe.ingestion_qos(names[0]),
                'duration_s': duration, 'settled': settled,
                'lost_messages': lost_messages, 'refused_messages': refused,
                'lost_windows': lost_windows,
                'windows': sum(r['windows'] for r in robots_out.values()),
                'latency_ms': latency, 'per_robot': robots_out, 'processes': usage,
                'machine': machine,
                'warnings': [w for ns, s in suites.items() for w in s.warnings(output0[ns])],
                'keeps_up': keeps_up,
                'meets_target': keeps_up and decision_p99 <= MAX_P99_DECISION_MS}

    def transport_phase(self, name: str, dds_profile: Optional[Path],
                        executor: str = 'single', robots: int = 1) -> dict:
        """
        Run the full load of `robots` robots into bare subscriber processes, no suite.

        The raw DDS transport: what rclpy and Fast DDS cost and how late they deliver before any
        work of the suite, so a floor under the suite's figures at the same robot count.
        """
        env = child_env(dds_profile)
        names = [f'bench_transport{i}' for i in range(robots)]
        sinks = {ns: Child(f'sink {ns}', bench_command('sink', '--namespace', ns, '--executor',
                                                       executor), env) for ns in names}
        try:
            for sink in sinks.values():
                sink.wait_for('^subscribed$', START_TIMEOUT)
            gens, usage, machine = self.run_generators(
                names, LOADS['field'], {s.name: s.proc.pid for s in sinks.values()}, env,
                self.args.duration)
            for sink in sinks.values():
                sink.stop(10.0)
            results = {ns: json.loads(sink.lines[-1]) for ns, sink in sinks.items()}
        finally:
            for sink in sinks.values():
                sink.stop(5.0)
        per_robot = {}
        for gen in gens:
            ns, published = gen['namespace'], gen['published']
            received = results[ns]['received']
            per_robot[ns] = {
                'published': published, 'received': received,
                'lost_messages': sum(published[s] - received[s] for s in SOURCES),
                'latency_ms': results[ns]['latency_ms'],
                'generator': {k: gen[k] for k in GENERATOR_KEYS}}
        lost = sum(r['lost_messages'] for r in per_robot.values())
        refused = sum(sum(g['refused'].values()) for g in gens)
        latency = worst_robot_latency(per_robot.values())
        meets_target = (lost == 0 and refused == 0 and
                        max(latency[s]['p99'] for s in SOURCES) <= MAX_P99_DECISION_MS)
        return {'phase': name, 'kind': 'transport', 'robots': robots,
                'dds_profile': str(dds_profile or 'none'), 'executor': executor,
                'load': asdict(LOADS['field']), 'duration_s': self.args.duration,
                'lost_messages': lost, 'refused_messages': refused, 'latency_ms': latency,
                'per_robot': per_robot, 'processes': usage, 'machine': machine,
                'meets_target': meets_target}

    def bag_evaluation(self) -> dict:
        """Record the default scenario's bag, then evaluate it offline; return the metrics."""
        bag = record_default_bag(self.workdir / 'default_bag', self.env)
        params = Path(bringup.arguments()['params_file'][0])
        return bag_evaluation(bag, bringup.model_for(), params, self.workdir / 'bag_report')

    def close(self) -> None:
        """Stop every suite and the probe."""
        for suite in self.suites:
            suite.stop()
        self.probe.close()


# ---------------------------------------------------------------------------- main


def worst_robot_latency(robots) -> Dict[str, dict]:
    """Per modality, each statistic of stamp -> receive at the robot where it is largest."""
    robots = list(robots)
    return {s: {k: max(r['latency_ms'][s][k] for r in robots)
                for k in robots[0]['latency_ms'][s]} for s in SOURCES}


def robot_counts(text: str) -> List[int]:
    """Parse '1,2,3' or '4' (meaning 1..4) into robot counts."""
    try:
        counts = [int(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: robot counts are integers') from None
    if len(counts) == 1 and counts[0] >= 0:     # N: 1..N; 0: no sweep (baselines only)
        counts = list(range(1, counts[0] + 1))
    if any(c < 1 for c in counts) or counts != sorted(set(counts)):
        raise argparse.ArgumentTypeError(f'{text!r}: robot counts must be rising and >= 1')
    return counts


def dds_profile_arg(text: str) -> Optional[Path]:
    """'none' or an existing file."""
    if text == 'none':
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f'{text}: no such file')
    return path


def parser() -> argparse.ArgumentParser:
    """Command line of softmaint-bench-suite and its two helper commands."""
    profile = os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or default_dds_profile()
    p = argparse.ArgumentParser(prog='softmaint-bench-suite', description=__doc__.split(
        '\n\n')[0].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=float, default=30.0,
                   help='seconds of load per phase (default 30)')
    p.add_argument('--robots', type=robot_counts, default=[1, 2, 3, 4],
                   help="robot counts to sweep: '1,2,3' or N for 1..N, 0 for none (default 4)")
    p.add_argument('--baselines', default=','.join(BASELINES),
                   help='comma-separated: transport (the same messages to a bare subscriber), '
                        'transport_default (the same without the DDS profile), '
                        "transport_events (the same, spun by rclpy's EventsExecutor), light "
                        "(robot0 at the sim robot's load); 'none' for no baseline (default: all)")
    p.add_argument('--transport-robots', type=robot_counts, default=[], metavar='COUNTS',
                   help='the transport floor: these robot counts of load generators into bare '
                        "subscribers (EventsExecutor), no suite; '2,4,8' or N for 1..N "
                        '(default: none)')
    p.add_argument('--keep-going', action='store_true',
                   help='sweep every robot count even after one did not keep up')
    p.add_argument('--dds-profile', type=dds_profile_arg, default=profile,
                   help=f"Fast DDS profile XML for every process, or 'none' (default: "
                        f'$FASTDDS_DEFAULT_PROFILES_FILE, else {profile})')
    p.add_argument('--soak', type=float, default=0.0, metavar='SECONDS',
                   help="after the sweep, robot0's suite at the field stream this long; the "
                        "nodes' resident memory at its start and end (default 0: none)")
    p.add_argument('--bag-eval', action='store_true',
                   help="record the sim robot's default scenario into a bag and time "
                        'softmaint-evaluate-bag on it (realtime factor)')
    p.add_argument('--json', type=Path, help='also write every number to this JSON file')
    p.add_argument('--summary', type=Path,
                   help='write the headline figures here (softmaint_bench.summary)')
    sub = p.add_subparsers(dest='command')
    load = sub.add_parser('load', help='only the load generator of one robot')
    load.add_argument('--namespace', default='')
    load.add_argument('--load', choices=sorted(LOADS), default='field')
    load.add_argument('--duration', type=float, default=30.0)
    load.add_argument('--rate-factor', type=float, default=1.0,
                      help='publish at this multiple of the rates of --load (default 1)')
    load.add_argument('--start-at', type=float,
                      help='start publishing at this system time [s since the epoch], once '
                           'every topic has a subscriber (default: then)')
    sink = sub.add_parser('sink', help='only the bare subscriber of the transport baseline')
    sink.add_argument('--namespace', default='')
    sink.add_argument('--executor', choices=('single', 'events'), default='single',
                      help="rclpy's SingleThreadedExecutor (as the nodes) or EventsExecutor")
    return p


def bench_main(args: argparse.Namespace) -> int:
    """Run the baselines and the sweep; print the report."""
    baselines = [] if args.baselines == 'none' else args.baselines.split(',')
    if set(baselines) - set(BASELINES):
        print(f'softmaint-bench-suite: error: unknown baseline in {args.baselines!r}',
              file=sys.stderr)
        return 2
    machine = {'cores': len(os.sched_getaffinity(0)), 'load_average_start': load_average()}
    print(f'softmaint-bench-suite: {machine["cores"]} cores, load average '
          f'{machine["load_average_start"]}, DDS profile '
          f'{args.dds_profile or "none (Fast DDS defaults)"}', flush=True)
    phases, bag = [], None
    with tempfile.TemporaryDirectory(prefix='softmaint-bench-') as workdir:
        bench = Bench(args, Path(workdir))
        try:
            if 'transport' in baselines:
                phases.append(bench.transport_phase('transport', args.dds_profile))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'transport_default' in baselines:
                phases.append(bench.transport_phase('transport_default', None))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'transport_events' in baselines:
                phases.append(bench.transport_phase('transport_events', args.dds_profile,
                                                    'events'))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            for robots in args.transport_robots:
                phases.append(bench.transport_phase(f'{FLOOR_PHASE}{robots}',
                                                    args.dds_profile, 'events', robots))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if 'light' in baselines:
                phases.append(bench.suite_phase('light', 1, LOADS['light']))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            for robots in args.robots:
                try:
                    phases.append(bench.suite_phase(f'robots={robots}', robots,
                                                    LOADS['field']))
                except RuntimeError as err:   # a robot count the machine cannot even start
                    print(f'== robots={robots}: not measured: {err}', flush=True)
                    break
                print('\n'.join(format_phase(phases[-1])), flush=True)
                if not phases[-1]['keeps_up'] and not args.keep_going:
                    break
            if args.soak > 0:
                phases.append(bench.suite_phase('soak', 1, LOADS['field'], args.soak))
                print('\n'.join(format_phase(phases[-1])), flush=True)
            if args.bag_eval:
                bag = bench.bag_evaluation()
                print(f'== bag evaluation: {bag["bag_seconds"]:.1f} s of bag in '
                      f'{bag["wall_seconds"]:.2f} s, {bag["realtime_factor"]:.1f}x real time',
                      flush=True)
        finally:
            bench.close()
    print('\n'.join(format_summary(phases)), flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            'command': sys.argv, 'dds_profile': str(args.dds_profile or ''),
            'max_p99_decision_ms': MAX_P99_DECISION_MS, 'phases': phases, 'bag': bag},
            indent=1))
    if args.summary:
        machine['load_average_end'] = load_average()
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary(phases, bag, machine, sys.argv), indent=2)
                                + '\n')
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of softmaint-bench-suite."""
    args = parser().parse_args(argv)
    if args.command == 'load':
        return load_main(args)
    if args.command == 'sink':
        return sink_main(args)
    try:
        return bench_main(args)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as err:
        print(f'softmaint-bench-suite: error: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
