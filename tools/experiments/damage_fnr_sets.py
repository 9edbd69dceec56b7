"""
Decisions with damage sets that control the false-negative rate of "some damage".

    python tools/experiments/damage_fnr_sets.py MODEL.onnx CONFIG.yaml --alpha A [A ...]
    python tools/experiments/damage_fnr_sets.py MODEL.onnx CONFIG.yaml --threshold L [L ...]

The class-conditional sets of a model hold each damage class on ~90 % of its windows, so the
policy can leave ~10 % of damaged arms at `{none}`. Conformal risk control (Angelopoulos et al.,
"Conformal Risk Control", ICLR 2024) of the miss rate instead: on the damaged windows of the
config's field_cal split, lambda is the smallest P(damage) = 1 - p(none) that lets at most
alpha of them through (softmaint_core.calibration.conformal_floor); a window whose set is
`{none}` with P(damage) >= lambda gets its most probable damage class added (add_likely_damage,
as softmaint_core.postprocess does for a card with the threshold). --threshold takes lambdas
as given instead. Prints, for the model's class-conditional sets (a threshold in the card is
ignored) and for each lambda, the default policy's decision figures on field_cal and on
data/sim-v21-test: the trade between missed critical states and the decision accuracy.
"""
import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
from softmaint_core.calibration import add_likely_damage, conformal_floor
from softmaint_core.dataset import Dataset
from softmaint_core.student import StudentModel
from softmaint_sim.profile_eval import decisions, predict, profile_policy
from softmaint_train.config import load_config
from softmaint_train.data import make_splits


def guarded(predictions, none: int, lam: float):
    """Return the predictions with the most probable damage added to {none} sets at P >= lam."""
    return [dataclasses.replace(p, damage_set=np.flatnonzero(add_likely_damage(
        np.isin(np.arange(len(p.damage_probs)), p.damage_set), p.damage_probs, none, lam
    )).tolist()) for p in predictions]


def main() -> None:
    """Print the decision figures of every threshold on field_cal and the held-out windows."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', type=Path)
    parser.add_argument('config', type=Path)
    parser.add_argument('--alpha', type=float, nargs='*', default=[])
    parser.add_argument('--threshold', type=float, nargs='*', default=[])
    args = parser.parse_args()
    model = StudentModel(args.model)
    model.meta = dataclasses.replace(model.meta, damage_miss_alpha=None,
                                     damage_miss_threshold=None)
    meta, cfg = model.meta, load_config(args.config)
    none = list(meta.damage_classes).index('none')
    policy = profile_policy(Path('config'), 'default')
    sim = Dataset(Path(cfg.data.root))
    cal = make_splits(sim.array('episode'), sim.array('domain'), cfg.data).field_cal
    test = Dataset(Path('data/sim-v21-test'))
    index = np.flatnonzero(test.array('domain') == 1)
    splits = {'cal': (sim, cal, *predict(model, sim, cal)),
              'test': (test, index, *predict(model, test, index))}
    damaged = np.asarray(sim.array('damage')[cal]) != none
    p_damage = np.array([1 - p.damage_probs[none] for p in splits['cal'][2]])[damaged]
    cases = [('class-conditional sets', math.inf)]
    cases += [(f'alpha {a:g}', conformal_floor(p_damage, a)) for a in args.alpha]
    cases += [('given', t) for t in args.threshold]
    print(f'{meta.model_id}: {damaged.sum()} damaged of {len(cal)} calibration windows')
    for label, lam in cases:
        line = f'{label:24s} lambda {lam:6.3f}'
        for name, (data, rows, predictions, mask) in splits.items():
            m = {k.split('.', 1)[1]: v for k, v in decisions(
                guarded(predictions, none, lam), mask, data, rows, meta, policy).items()}
            line += (f" | {name}: missed critical {m['missed_critical_rate']:.4f}, decision "
                     f"accuracy {m['decision_accuracy']:.3f}, over-acting "
                     f"{m['over_acting_rate']:.3f}, assistance {m['assistance_rate']:.3f}")
        print(line)


if __name__ == '__main__':
    main()
