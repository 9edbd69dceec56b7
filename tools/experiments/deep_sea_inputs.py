"""
Which input makes a student read the deep-sea episodes worse: clipped inputs, masked sensors.

    python tools/experiments/deep_sea_inputs.py MODEL.onnx [MODEL.onnx ...]

On data/profiles-v22/deep_sea under the deep-sea policy, prints each model's damage F1 and
urgency MAE (softmaint_sim.profile_eval.evaluate) with the normalised inputs clipped at
+-50, 10 and 5 training standard deviations, and with each modality masked in turn (as a failed
sensor: mask 0, input 0).
"""
from pathlib import Path
import sys

import numpy as np
from softmaint_sim import profile_eval

DATA = Path('data/profiles-v22/deep_sea')
original_inputs = profile_eval.field_inputs


def field_inputs(clip=None, masked=None):
    def inputs(data, spec, index):
        feeds, mask = original_inputs(data, spec, index)
        if clip is not None:
            feeds = {k: np.clip(v, -clip, clip) for k, v in feeds.items()}
        if masked is not None:
            i = spec.names.index(masked)
            mask = mask.copy()
            mask[:, i] = False
            feeds[masked] = np.zeros_like(feeds[masked])
        return feeds, mask
    return inputs


def main(models) -> None:
    policy = profile_eval.profile_policy(Path('config'), 'deep_sea')
    cases = [('as recorded', {})] + [(f'clipped at +-{c:g}', {'clip': c}) for c in (50, 10, 5)]
    cases += [(f'{name} masked', {'masked': name})
              for name in ('camera', 'tactile', 'proprio', 'environment')]
    for label, change in cases:
        profile_eval.field_inputs = field_inputs(**change)
        for model in models:
            r = profile_eval.evaluate(Path(model), DATA, policy)
            print(f"{r['model_id']:20s} {label:22s} damage F1 {r['damage.macro_f1']:.3f}, "
                  f"urgency MAE {r['urgency.mae']:.3f}")
    profile_eval.field_inputs = original_inputs


if __name__ == '__main__':
    main(sys.argv[1:])
