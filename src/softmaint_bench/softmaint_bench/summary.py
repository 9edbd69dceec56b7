"""
The benchmark's headline figures (issue 16) in summary.json, and the offline bag evaluation.

    loss_rate_1robot        worst modality's share of published messages ingestion never got,
                            one robot at the field stream
    decision_p99_ms_1robot  p99 window's last input -> decision, one robot
    robots_sustained        largest robot count with 0 messages or windows lost, nothing
                            refused and p99 input -> decision <= 50 ms
    bag_eval_realtime_factor  seconds of the default scenario's bag per second of offline
                            evaluation (softmaint-evaluate-bag)
    transport_floor         per robot count of --transport-robots: the load generators into bare
                            subscribers, no suite (lost, worst p99 stamp -> receive, CPU); a
                            robot count the transport alone cannot carry no suite can
    rss_growth_mb_10min     largest growth of a node's resident memory [MiB] over the soak
                            phase (start and end of every node in `soak`)
"""
from pathlib import Path
import sys
from typing import Dict, List, Optional

from .child import Child
from .metrics import floor_phases

# The default scenario's bag: the whole demo scenario, simulated faster than real time.
BAG_SCENARIO, BAG_SECONDS, BAG_RATE = 'default', 100.0, 4.0
RECORD_TIMEOUT = 120.0


def worst_loss_rate(phase: dict) -> float:
    """Return the largest share of published messages lost over the phase's modalities."""
    rates = [(robot['published'][s] - robot['received'][s]) / robot['published'][s]
             for robot in phase['per_robot'].values() for s in robot['published']
             if robot['published'][s]]
    return max(rates, default=float('nan'))


def rss_growth(phase: dict) -> Dict[str, dict]:
    """Resident memory of every node at the start and end of the phase [MiB]."""
    return {name: {'start_mib': u['rss_start_mib'], 'end_mib': u['rss_end_mib'],
                   'growth_mib': u['rss_end_mib'] - u['rss_start_mib']}
            for name, u in phase['processes'].items() if 'softmaint_' in name}


def record_default_bag(out: Path, env: Dict[str, str]) -> Path:
    """
    Record the sim robot's default scenario (its own /clock) into a rosbag2 directory.

    The recorder subscribes each topic with the QoS its publishers offer (the sim robot's
    sensors best effort, its latched ground truth reliable and transient local).
    """
    from softmaint_bag.live_replay import SENSOR_TOPICS
    recorder = Child('recorder', [
        sys.executable, '-m', 'softmaint_bag.recorder_node', '--out', str(out),
        '--topics', *SENSOR_TOPICS, '/softmaint/ground_truth', '--ros-args', '-p',
        'use_sim_time:=true'],
        env)
    robot = None
    try:
        recorder.wait_for('recording to', RECORD_TIMEOUT)
        robot = Child('sim robot', [
            sys.executable, '-m', 'softmaint_sim.sim_robot', '--ros-args', '-p',
            f'scenario:={BAG_SCENARIO}', '-p', f'duration:={BAG_SECONDS}', '-p',
            f'rate_factor:={BAG_RATE}', '-p', 'publish_clock:=true'], env)
        if robot.proc.wait(BAG_SECONDS / BAG_RATE + RECORD_TIMEOUT) != 0:
            raise RuntimeError(f'the sim robot failed:\n{robot.tail()}')
    finally:
        if robot is not None:       # still running when its wait timed out
            robot.stop(10.0)
        recorder.stop(30.0)
    return out


def bag_evaluation(bag: Path, model: Path, params: Path, out: Path) -> dict:
    """Evaluate `bag` offline as softmaint-evaluate-bag does; return its metrics."""
    from softmaint_bag.evaluate import evaluate, load_params
    from softmaint_bag.evaluate_cli import write_report
    from softmaint_core.student import StudentModel
    return write_report(evaluate(bag, StudentModel(model), load_params(params)), out)


def transport_floor(phase: dict) -> dict:
    """Headline figures of one transport-floor phase."""
    usage = phase['processes']
    return {'robots': phase['robots'], 'lost_messages': phase['lost_messages'],
            'refused_messages': phase['refused_messages'],
            'p99_stamp_to_receive_ms': max(v['p99'] for v in phase['latency_ms'].values()),
            'meets_target': phase['meets_target'], 'busy_cores': phase['machine']['busy_cores'],
            'generators_cores': sum(u['cpu_share'] for n, u in usage.items()
                                    if n.startswith('load')),
            'subscribers_cores': sum(u['cpu_share'] for n, u in usage.items()
                                     if n.startswith('sink'))}


def summary(phases: List[dict], bag: Optional[dict], machine: dict,
            command: List[str]) -> dict:
    """Assemble summary.json from the phases (and the bag evaluation, when run)."""
    by_name = {p['phase']: p for p in phases}
    one, soak = by_name.get('robots=1'), by_name.get('soak')
    sustained = [p['robots'] for p in phases
                 if p['phase'].startswith('robots=') and p['meets_target']]
    growth = rss_growth(soak) if soak else {}
    return {
        'loss_rate_1robot': worst_loss_rate(one) if one else None,
        'decision_p99_ms_1robot': one['latency_ms']['input_to_decision']['p99'] if one
        else None,
        'robots_sustained': max(sustained, default=0),
        'robots_tried': [p['robots'] for p in phases if p['phase'].startswith('robots=')],
        'bag_eval_realtime_factor': bag['realtime_factor'] if bag else None,
        'bag_seconds': bag['bag_seconds'] if bag else None,
        'rss_growth_mb_10min': max((g['growth_mib'] for g in growth.values()), default=None),
        'soak_seconds': soak['duration_s'] if soak else None,
        'soak_rss_mib': growth,
        'transport_floor': [transport_floor(p) for p in floor_phases(phases)],
        'machine': machine, 'command': command,
    }
