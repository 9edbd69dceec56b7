"""
What a profile's urgency_band holds, and what it costs: decision figures for several bands.

    python tools/experiments/urgency_band.py DATASET [DATASET ...]

For each profile dataset (data/profiles-v22/NAME, docs/profiles.md), the student bringup runs
for that profile predicts its field episodes once; the profile's own policy then decides them
with the urgency band (decisions.urgency_band: mean +- urgency_band ensemble stds) set to 0,
0.5, 1 and 2 in turn. Prints, per band, the share of windows whose true urgency the band holds,
assistance, missed critical, decision accuracy and why it asked.
"""
import dataclasses
import json
from pathlib import Path
import sys

import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.profiles import student_of
from softmaint_core.student import StudentModel
from softmaint_sim.profile_eval import decisions, predict, profile_policy

BANDS = (0.0, 0.5, 1.0, 2.0)


def main(roots) -> None:
    """Print one line per profile and band."""
    for root in map(Path, roots):
        card = json.loads((root / 'card.json').read_text())
        name = card['parameters'].get('profile', 'default')
        model = StudentModel(student_of(name, Path('models')))
        data = Dataset(root)
        index = np.flatnonzero(data.array('domain') == 1)
        predictions, mask = predict(model, data, index)
        thresholds, actions = profile_policy(Path('config'), name)
        for band in BANDS:
            policy = (dataclasses.replace(thresholds, urgency_band=band), actions)
            m = {k.split('.', 1)[1]: v for k, v in decisions(
                predictions, mask, data, index, model.meta, policy).items()}
            print(f'{name} band {band:.1f} (profile {thresholds.urgency_band}): holds the true '
                  f"urgency {m['urgency_band_coverage']:.3f}, assistance "
                  f"{m['assistance_rate']:.3f}, missed critical "
                  f"{m['missed_critical_rate']:.4f}, decision accuracy "
                  f"{m['decision_accuracy']:.3f}, asked because {m['asked_because']}")


if __name__ == '__main__':
    main(sys.argv[1:])
