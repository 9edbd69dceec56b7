"""How often the agent would ask a human with the committed model, per max_uncertainty.

Run from the repository root after `source tools/env.sh`, once
tools/experiments/evaluate_committed.py has written runs/committed-default-predictions.npz
(the 309 held-out field-test windows); the report keeps its output:
    python tools/experiments/agent_autonomy.py > docs/reports/default/agent_autonomy.txt
Each window goes through the robot's own postprocess and policy (`assess`, no hysteresis) with
the shipped thresholds of config/softmaint.yaml, all modalities available.
"""
from dataclasses import replace
from pathlib import Path

import numpy as np
from softmaint_core.agent import summarise
from softmaint_core.decisions import assess
from softmaint_core.metadata import load_verified
from softmaint_core.settings import Thresholds
from softmaint_core.postprocess import postprocess
import yaml

MODEL = Path('models/student.onnx')
PREDICTIONS = Path('runs/committed-default-predictions.npz')
SWEEP = (0.6, 0.7, 0.8, 0.9, 1.0)


def summaries(meta, data):
    """The policy's view of every held-out window, built as the agent builds it."""
    names = meta.input_spec.names
    mask = [True] * len(names)
    members = data['urgency'].shape[1]
    for i in range(len(data['damage'])):
        outputs = {k: data[k][i:i + 1] for k in ('fatigue_logits', 'damage_logits', 'urgency')}
        outputs['reconstruction'] = np.zeros((1, members, len(names), 1), np.float32)
        yield summarise(postprocess(outputs, mask, meta), names, len(names))


def main():
    meta = load_verified(MODEL)
    data = np.load(PREDICTIONS)
    params = yaml.safe_load(Path('config/softmaint.yaml').read_text())
    shipped = Thresholds.from_mapping(params['softmaint_agent']['ros__parameters']['thresholds'])
    windows = list(summaries(meta, data))
    right = np.array([np.argmax(s.damage_probs) == label
                      for s, label in zip(windows, data['damage'])])
    print(f'{len(windows)} held-out windows, damage accuracy {right.mean():.3f}\n')
    none_and_damage = np.mean([0 in s.damage_set and len(s.damage_set) > 1 for s in windows])
    print(f'damage sets holding "none" and a damage type: {none_and_damage:.3f} of windows\n')
    print('| max_uncertainty | share of windows with a reason to ask | uncertain | '
          'ambiguous damage set | ambiguous fatigue set | decided alone | '
          'damage accuracy when alone |')
    print('|---|---|---|---|---|---|---|')
    for limit in SWEEP:
        reasons = [assess(s, replace(shipped, max_uncertainty=limit)).reasons for s in windows]
        asks = np.array([bool(r) for r in reasons])

        def share(key):
            return np.mean([key in r for r in reasons])
        alone = f'{right[~asks].mean():.3f}' if (~asks).any() else '–'
        print(f'| {limit:.1f} | {asks.mean():.3f} | {share("uncertain"):.3f} | '
              f'{share("ambiguous_damage"):.3f} | {share("ambiguous_fatigue"):.3f} | '
              f'{(~asks).mean():.3f} | {alone} |')


if __name__ == '__main__':
    main()
