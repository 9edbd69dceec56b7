"""
How much of the decision error is urgency and how much the classes: decisions with either known.

    python tools/experiments/decision_oracle.py MODEL.onnx [DATASET]

On the field episodes of DATASET (default data/sim-v21-test) under the default policy, prints
the decision figures (softmaint_sim.profile_eval.decisions) of the model as it is, with its
urgency replaced by the true one (ensemble std 0), and with its fatigue and damage replaced by
the true classes (certain, one-member sets).
"""
import dataclasses
from pathlib import Path
import sys

import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.student import StudentModel
from softmaint_sim.profile_eval import decisions, predict, profile_policy


def certain(size: int, label: int) -> np.ndarray:
    """Return the probabilities of a prediction sure of `label`."""
    probs = np.zeros(size)
    probs[label] = 1.0
    return probs


def main(model_path: str, root: str = 'data/sim-v21-test') -> None:
    """Print the three cases' decision figures."""
    model = StudentModel(Path(model_path))
    data = Dataset(Path(root))
    index = np.flatnonzero(data.array('domain') == 1)
    predictions, mask = predict(model, data, index)
    truth = {name: np.asarray(data.array(name)[index]) for name in ('fatigue', 'damage',
                                                                     'urgency')}
    cases = {
        'as predicted': predictions,
        'true urgency': [dataclasses.replace(p, urgency=float(u), urgency_std=0.0)
                         for p, u in zip(predictions, truth['urgency'])],
        'true classes': [dataclasses.replace(
            p, fatigue_probs=certain(len(p.fatigue_probs), f), fatigue_set=[int(f)],
            damage_probs=certain(len(p.damage_probs), d), damage_set=[int(d)])
            for p, f, d in zip(predictions, truth['fatigue'], truth['damage'])],
    }
    policy = profile_policy(Path('config'), 'default')
    for label, cased in cases.items():
        m = {k.split('.', 1)[1]: v for k, v in decisions(
            cased, mask, data, index, model.meta, policy).items()}
        print(f"{model.meta.model_id} {label:13s} decision accuracy {m['decision_accuracy']:.3f} "
              f"(point estimate {m['point_accuracy']:.3f}), missed critical "
              f"{m['missed_critical_rate']:.4f}, assistance {m['assistance_rate']:.3f}")


if __name__ == '__main__':
    main(*sys.argv[1:])
