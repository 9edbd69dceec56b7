"""
A maintenance log in which a simulated operator labelled every episode of an exported bag.

    python tools/experiments/operator_log.py DATASET A:B START_SECONDS LOG

For a bag written by `softmaint-dataset export-bag DATASET --episodes A:B --start START_SECONDS`,
appends to LOG (SQLite, created if missing) one assistance request per episode, acknowledged
with the episode's true fatigue class, damage class and urgency, spanning the one onboard window
that holds exactly that episode (it ends FIELD_SPEC.window after the episode's first stamp).
Run it once per bag with the same LOG: softmaint-finetune-bags then reads the labels.
"""
import sys

import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.maintenance_log import MaintenanceLog
from softmaint_core.spec import FIELD_SPEC
from softmaint_sim.bag import EPISODE_GAP
from softmaint_sim.dataset_cli import parse_range


def main(root: str, episodes: str, start: str, log_path: str) -> None:
    data = Dataset(root)
    indices = parse_range(episodes, len(data))
    labels = {k: np.asarray(data.take(k, indices)) for k in ('fatigue', 'damage', 'urgency')}
    period = FIELD_SPEC.window + EPISODE_GAP
    with MaintenanceLog(log_path) as log:
        for position, index in enumerate(indices):
            end = float(start) + position * period + FIELD_SPEC.window
            request = f'req-{root.rstrip("/").split("/")[-1]}-{index}'
            log.append('decision', end, 'request_assistance', 'simulated operator asked',
                       request_id=request, evidence={})
            log.acknowledge(request, end, 'schedule_maintenance', 'simulated operator',
                            {'operator': 'simulated',
                             'fatigue_label': int(labels['fatigue'][position]),
                             'damage_label': int(labels['damage'][position]),
                             'urgency_label': float(labels['urgency'][position])})
    print(f'{len(indices)} labelled episodes of {root} appended to {log_path}')


if __name__ == '__main__':
    main(*sys.argv[1:])
