"""
Decisions with damage sets that control the false-negative rate of "some damage".

    python tools/experiments/damage_fnr_sets.py MODEL.onnx CONFIG.yaml ALPHA [ALPHA ...]

The class-conditional sets of a model hold each damage class on ~90 % of its windows, so the
policy can leave ~10 % of damaged arms at `{none}`. Conformal risk control (Angelopoulos et al.,
"Conformal Risk Control", ICLR 2024) of the miss rate instead: on the damaged windows of the
config's field_cal split, lambda is the smallest P(damage) = 1 - p(none) that lets at most
alpha of them through (softmaint_core.calibration.conformal_floor); a test window whose
set is `{none}` with P(damage) >= lambda gets its most probable damage class added
(add_likely_damage, as softmaint_core.postprocess does for a card with the threshold). Prints, for the model's own sets
and for each alpha, the default policy's decision figures on data/sim-v21-test.
"""
import dataclasses
import math
from pathlib import Path
import sys

import numpy as np
from softmaint_core.calibration import add_likely_damage, conformal_floor
from softmaint_core.dataset import Dataset
from softmaint_core.student import StudentModel
from softmaint_sim.profile_eval import decisions, field_inputs, profile_policy
from softmaint_train.config import load_config
from softmaint_train.data import make_splits


def predict(model, data, index):
    feeds, mask = field_inputs(data, model.spec, index)
    return [model.predict({k: v[b:b + 1] for k, v in feeds.items()}, mask[b])[0]
            for b in range(len(index))], mask


def main(model_path: str, config: str, *alphas: str) -> None:
    model = StudentModel(Path(model_path))
    meta, cfg = model.meta, load_config(config)
    none = list(meta.damage_classes).index('none')
    sim = Dataset(Path(cfg.data.root))
    cal = make_splits(sim.array('episode'), sim.array('domain'), cfg.data).field_cal
    cal_preds, _ = predict(model, sim, cal)
    damaged = np.asarray(sim.array('damage')[cal]) != none
    p_damage = np.array([1 - p.damage_probs[none] for p in cal_preds])[damaged]
    policy = profile_policy(Path('config'), 'default')
    test = Dataset(Path('data/sim-v21-test'))
    index = np.flatnonzero(test.array('domain') == 1)
    preds, mask = predict(model, test, index)
    for alpha in (None,) + tuple(float(a) for a in alphas):
        lam = math.inf if alpha is None else conformal_floor(p_damage, alpha)
        guarded = [dataclasses.replace(p, damage_set=np.flatnonzero(add_likely_damage(
            np.isin(np.arange(len(p.damage_probs)), p.damage_set), p.damage_probs, none, lam
        )).tolist()) for p in preds]
        m = {k.split('.', 1)[1]: v
             for k, v in decisions(guarded, mask, test, index, meta, policy).items()}
        print(f'{meta.model_id} alpha {alpha} lambda {lam:.3f} ({damaged.sum()} damaged cal): '
              f"assistance {m['assistance_rate']:.3f}, missed critical "
              f"{m['missed_critical_rate']:.4f}, decision accuracy {m['decision_accuracy']:.3f}, "
              f"over-acting {m['over_acting_rate']:.3f}")


if __name__ == '__main__':
    main(*sys.argv[1:])
