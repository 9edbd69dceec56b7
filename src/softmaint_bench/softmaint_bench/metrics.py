"""What the benchmark measures: process and machine usage, window loss, latency."""
from collections import Counter
import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .probe import WindowRecord

# Pass criterion of a robot count.
MAX_P99_DECISION_MS = 50.0
# The suite's nodes, one process each.
NODES = ('softmaint_ingestion', 'softmaint_inference', 'softmaint_agent')
# Phases of the transport floor (--transport-robots) are named FLOOR_PHASE + robot count.
FLOOR_PHASE = 'transport robots='
# Latencies of every window, from its last input.
LATENCIES = ('input_to_window', 'input_to_prediction', 'input_to_decision')


def floor_phases(phases: Sequence[dict]) -> List[dict]:
    """Return the transport-floor phases among `phases`."""
    return [p for p in phases if p['phase'].startswith(FLOOR_PHASE)]


# ---------------------------------------------------------------------------- /proc


def process_usage(pid: int) -> Optional[Dict[str, float]]:
    """CPU seconds (user + system) and peak and current RSS [MiB] of a process; None if gone."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
        status = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may hold spaces); utime and stime are
    # fields 14 and 15 of proc(5), so 11 and 12 counted from the state field.
    after_name = stat.rsplit(')', 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])
    memory = {}
    for line in status.splitlines():
        key, _, value = line.partition(':')
        if key in ('VmHWM', 'VmRSS'):
            memory[key] = int(value.split()[0]) / 1024.0
    return {'cpu_s': ticks / os.sysconf('SC_CLK_TCK'), 'peak_rss_mib': memory.get('VmHWM', 0.0),
            'rss_mib': memory.get('VmRSS', 0.0)}


def machine_times() -> Tuple[float, float]:
    """Busy and total CPU seconds of the machine since boot (all cores), from /proc/stat."""
    values = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    idle = values[3] + values[4]          # idle + iowait
    total = sum(values[:8])               # guest time is already counted in user
    tick = os.sysconf('SC_CLK_TCK')
    return (total - idle) / tick, total / tick


def load_average() -> Tuple[float, float, float]:
    """Return the 1, 5 and 15 minute load averages."""
    return tuple(float(v) for v in Path('/proc/loadavg').read_text().split()[:3])


# ---------------------------------------------------------------------------- windows


def window_metrics(records: List[WindowRecord], hop_ns: int) -> dict:
    """
    Lost windows and latencies [ms] of a robot's windows in one phase.

    A window is lost when its hop has no window (skipped_hops: ingestion did not publish it or
    transport lost it; the lost in transport also leave a sequence gap, counted apart as
    sequence_gaps) or when it got no prediction.
    """
    sequence_gaps = sum(b.sequence - a.sequence - 1 for a, b in zip(records, records[1:]))
    skipped_hops = sum(max(0, round((b.end_ns - a.end_ns) / hop_ns) - 1)
                       for a, b in zip(records, records[1:]))
    unpredicted = sum(r.prediction_ns is None for r in records)
    latency = {name: [] for name in LATENCIES}
    for r in records:
        if not r.last_input_ns:
            continue
        latency['input_to_window'].append((r.received_ns - r.last_input_ns) / 1e6)
        if r.prediction_ns is not None:
            latency['input_to_prediction'].append((r.prediction_ns - r.last_input_ns) / 1e6)
        if r.decision_ns is not None:
            latency['input_to_decision'].append((r.decision_ns - r.last_input_ns) / 1e6)
    return {'windows': len(records), 'complete_windows': sum(not r.unavailable for r in records),
            'unavailable': dict(Counter(m for r in records for m in r.unavailable)),
            'decided': sum(r.decision_ns is not None for r in records),
            'sequence_gaps': sequence_gaps, 'skipped_hops': skipped_hops,
            'unpredicted': unpredicted, 'lost_windows': skipped_hops + unpredicted,
            'latency_ms': latency}


def usage_between(before: Dict[str, dict], after: Dict[str, dict], wall: float) -> dict:
    """CPU seconds and share of one core over `wall` seconds, RSS (peak, start, end) per name."""
    usage = {}
    for name, start in before.items():
        end = after.get(name) or start
        cpu = end['cpu_s'] - start['cpu_s']
        usage[name] = {'cpu_s': cpu, 'cpu_share': cpu / wall if wall > 0 else math.nan,
                       'peak_rss_mib': end['peak_rss_mib'], 'rss_start_mib': start['rss_mib'],
                       'rss_end_mib': end['rss_mib']}
    return usage


def snapshot(pids: Dict[str, int]) -> Dict[str, dict]:
    """process_usage of every named pid that is still running."""
    return {name: u for name, u in ((n, process_usage(p)) for n, p in pids.items()) if u}
