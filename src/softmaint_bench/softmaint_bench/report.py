"""The benchmark's report: lines of each phase and the summary against the baselines."""
import math
from typing import List, Tuple

from .metrics import FLOOR_PHASE, floor_phases, LATENCIES, MAX_P99_DECISION_MS, NODES
from .streams import Load, SOURCES


def _ms(stats: dict) -> str:
    return (f'p50 {stats["p50"]:7.1f}  p95 {stats["p95"]:7.1f}  p99 {stats["p99"]:7.1f}  '
            f'max {stats["max"]:7.1f}  (n={stats["n"]})')


def _ratio(a: float, b: float) -> str:
    return f'{a / b:.2f}x' if b and math.isfinite(a) and math.isfinite(b) else 'n/a'


def node_usage(phase: dict, node: str) -> Tuple[float, float]:
    """Mean CPU share of one core and largest peak RSS of `node` over the phase's robots."""
    rows = [u for name, u in phase['processes'].items() if name.endswith('/' + node)]
    if not rows:
        return math.nan, math.nan
    return (sum(r['cpu_share'] for r in rows) / len(rows), max(r['peak_rss_mib'] for r in rows))


def sink_cpu(phase: dict) -> float:
    """Mean CPU share of one core of a transport phase's bare subscribers."""
    rows = [u['cpu_share'] for name, u in phase['processes'].items() if name.startswith('sink')]
    return sum(rows) / len(rows)


def format_phase(phase: dict) -> List[str]:
    """Report lines of one phase."""
    m = phase['machine']
    lines = [f'== {phase["phase"]}: {phase["robots"]} robot(s), {phase["duration_s"]:g} s, '
             f'{Load(**phase["load"]).describe()}',
             f'   machine: {m["busy_cores"]:.2f} of {m["cores"]} cores busy, load average '
             f'{m["load_average_start"][0]:.2f} -> {m["load_average_end"][0]:.2f}']
    if 'ingestion_qos' in phase:
        lines.append('   ingestion subscriptions: ' + ', '.join(
            f'{s} {q}' for s, q in phase['ingestion_qos'].items()))
    for ns, robot in phase['per_robot'].items():
        counts = ', '.join(f'{s} {robot["received"][s]}/{robot["published"][s]}'
                           for s in SOURCES)
        rejected = sum(robot.get('rejected', {}).values())
        refused = sum(robot['generator']['refused'].values())
        lines.append(f'   {ns}: received/published {counts}; lost {robot["lost_messages"]}, '
                     f'rejected {rejected}; publish refused (writer history full) {refused}; '
                     f'generator late {100 * robot["generator"]["late_share"]:.1f} % '
                     f'(p99 {robot["generator"]["late_ms_p99"]:.1f} ms)')
        if 'windows' in robot:
            lines.append(f'   {ns}: windows {robot["windows"]} ({robot["complete_windows"]} '
                         f'with every modality), lost {robot["lost_windows"]} (hops without a '
                         f'window {robot["skipped_hops"]}, of which never arrived '
                         f'{robot["sequence_gaps"]}; without prediction '
                         f'{robot["unpredicted"]}); decision seen for '
                         f'{robot["decided"]}')
            if robot['unavailable']:
                lines.append(f'   {ns}: modalities not available (windows): '
                             + ', '.join(f'{k} {v}' for k, v in robot['unavailable'].items()))
    if phase['kind'] == 'transport':
        worst = ' (worst robot)' if phase['robots'] > 1 else ''
        for source in SOURCES:
            lines.append(f'   stamp -> receive {source:12s} {_ms(phase["latency_ms"][source])}'
                         + worst)
    else:
        for key in LATENCIES:
            lines.append(f'   {key.replace("_", " "):22s} [ms] {_ms(phase["latency_ms"][key])}')
    for name, u in phase['processes'].items():
        lines.append(f'   cpu {name:32s} {u["cpu_s"]:7.2f} s  {100 * u["cpu_share"]:5.1f} % '
                     f'of a core  peak RSS {u["peak_rss_mib"]:6.1f} MiB')
    if phase['phase'].startswith(FLOOR_PHASE):
        lines.append(f'   transport floor (0 lost or refused, p99 stamp->receive <= '
                     f'{MAX_P99_DECISION_MS:g} ms): '
                     f'{"met" if phase["meets_target"] else "NOT met"}')
    if phase['kind'] == 'suite':
        lines.append(f'   keeps up (0 lost, p99 window->decision < hop): '
                     f'{"yes" if phase["keeps_up"] else "NO"}; target (and p99 <= '
                     f'{MAX_P99_DECISION_MS:g} ms): '
                     f'{"met" if phase["meets_target"] else "NOT met"}'
                     + ('' if phase['settled'] else ' (counts did not settle)'))
        lines += [f'   node output: {w}' for w in phase['warnings'][-5:]]
    return lines


def format_summary(phases: List[dict]) -> List[str]:
    """Ratios against the baselines and the robots one machine sustains."""
    by_name = {p['phase']: p for p in phases}
    sweep = [p for p in phases if p['phase'].startswith('robots=')]
    lines = ['== summary']
    one = by_name.get('robots=1')
    light, transport = by_name.get('light'), by_name.get('transport')
    if one and light:
        for key in ('input_to_prediction', 'input_to_decision'):
            for q in ('p50', 'p99'):
                lines.append(f'   {key} {q}: full/light '
                             f'{_ratio(one["latency_ms"][key][q], light["latency_ms"][key][q])}')
        for node in NODES:
            lines.append(f'   {node} cpu: full/light '
                         f'{_ratio(node_usage(one, node)[0], node_usage(light, node)[0])}')
    sink = sink_cpu(transport) if transport else math.nan
    if one and transport:
        lines.append(f'   softmaint_ingestion cpu / bare subscriber cpu (same messages): '
                     f'{_ratio(node_usage(one, "softmaint_ingestion")[0], sink)}')
        camera = transport['latency_ms']['camera']['p99']
        lines.append(f'   p99 input->decision / p99 camera transport: '
                     f'{_ratio(one["latency_ms"]["input_to_decision"]["p99"], camera)}')
    events = by_name.get('transport_events')
    if transport and events:
        lines.append(f'   bare subscriber cpu, EventsExecutor / SingleThreadedExecutor: '
                     f'{_ratio(sink_cpu(events), sink)}')
    floor = floor_phases(phases)
    if floor:
        passed = [p['robots'] for p in floor if p['meets_target']]
        lines.append(f'   transport floor: robots with 0 lost and p99 stamp->receive <= '
                     f'{MAX_P99_DECISION_MS:g} ms without the suite: '
                     f'{max(passed) if passed else 0} (tried {[p["robots"] for p in floor]})')
    tried = [p['robots'] for p in sweep]
    for key, text in (('keeps_up', '0 lost or refused messages, 0 lost windows, p99 '
                                   'window->decision < hop'),
                      ('meets_target', f'and p99 <= {MAX_P99_DECISION_MS:g} ms')):
        passed = [p['robots'] for p in sweep if p[key]]
        lines.append(f'   robots sustained at full load ({text}): '
                     f'{max(passed) if passed else 0} (tried {tried})')
    return lines
