"""
Would evidence over consecutive windows help? Decisions on one window vs on K of the same arm.

    python tools/experiments/repeated_windows.py MODEL.onnx [--episodes N] [--windows K]

For N field episodes of the held-out generator seed (data/sim-v21-test's, 4049), simulates K
consecutive 2 s windows of the same arm in the same state: the command runs on (its phase
advances by one window each time), the sensor faults persist, the sensor noise is drawn anew;
over 2 K seconds the degradation does not move. Prints the default policy's decision figures
for the first window alone, for the K windows fused (mean of the calibrated probabilities
and urgencies, sets and the miss-rate rule recomputed with the card's thresholds on the fused
probabilities) and for the K windows as the onboard Inspect action aggregates them
(softmaint_core.inspection.aggregate: means, majority sets). If most decision errors are noise
of one window, fusing removes them; if they are the arm (a fault the sensors do not show), it
cannot.
"""
import argparse
import dataclasses
from pathlib import Path

import numpy as np
from softmaint_core.agent import summarise
from softmaint_core.calibration import add_likely_damage, prediction_set
from softmaint_core.decisions import assess, ground_truth_action
from softmaint_core.inspection import aggregate
from softmaint_core.metrics import decision_metrics
from softmaint_core.student import StudentModel
from softmaint_core.window import batch_inputs
from softmaint_sim import degradation as dg
from softmaint_sim.episode import (EpisodeGenerator, episode_rng, field_samples, field_view,
                                   sample_params, WINDOW)
from softmaint_sim.profile_eval import profile_policy
from tqdm import tqdm

FIELD = 1


def windows_of(gen: EpisodeGenerator, seed: int, index: int, count: int):
    """Field views [count] of one arm's consecutive windows, their masks, and its labels."""
    params = sample_params(episode_rng(seed, index), index, FIELD, None)
    rows, masks = [], []
    for k in range(count):
        later = dataclasses.replace(
            params, phase=params.phase + 2 * np.pi * params.frequency * WINDOW * k)
        rng = np.random.default_rng([seed, index, 1000 + k])
        streams, _ = gen.simulate(later, rng)
        view, mask = field_view(field_samples(later, streams, rng, gen.noise[FIELD]))
        rows.append(view)
        masks.append(mask)
    geo = gen.arms[FIELD].geo
    labels = params.state.labels(dg.acceleration(params.env),
                                 dg.load_factor(max(params.amplitude)), geo)
    return rows, np.array(masks), labels


def fused(predictions, meta):
    """One prediction from several windows' of the same arm: mean probabilities and urgency."""
    damage = np.mean([p.damage_probs for p in predictions], axis=0)
    fatigue = np.mean([p.fatigue_probs for p in predictions], axis=0)
    none = list(meta.damage_classes).index('none')
    damage_set = prediction_set(damage, meta.conformal_damage)
    if meta.damage_miss_threshold is not None:
        damage_set = add_likely_damage(damage_set, damage, none, meta.damage_miss_threshold)
    return dataclasses.replace(
        predictions[0], damage_probs=damage, fatigue_probs=fatigue,
        damage_set=np.flatnonzero(damage_set).tolist(),
        fatigue_set=np.flatnonzero(prediction_set(fatigue, meta.conformal_fatigue)).tolist(),
        urgency=float(np.mean([p.urgency for p in predictions])),
        urgency_std=float(np.mean([p.urgency_std for p in predictions])))


def summary_of(prediction, available, meta):
    """The policy's input for a prediction of a window with these modalities available."""
    names = meta.input_spec.names
    return summarise(prediction, [n for n, a in zip(names, available) if a], len(names),
                     meta.fatigue_classes, meta.damage_classes)


def main() -> None:
    """Print single-window and fused decision figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', type=Path)
    parser.add_argument('--episodes', type=int, default=500)
    parser.add_argument('--windows', type=int, default=5)
    parser.add_argument('--seed', type=int, default=4049)
    args = parser.parse_args()
    model = StudentModel(args.model)
    meta, spec = model.meta, model.spec
    thresholds, actions = profile_policy(Path('config'), 'default')
    gen = EpisodeGenerator()
    cases = {'first window': [], f'{args.windows} windows fused': [],
             f'{args.windows} windows inspected': []}
    truth = []
    try:
        for index in tqdm(range(args.episodes), desc='arms'):
            rows, masks, labels = windows_of(gen, args.seed, index, args.windows)
            raw = {name: np.stack([r[name] for r in rows]) for name in spec.names}
            feeds, available = batch_inputs(spec, raw, masks)
            predictions = [model.predict({k: v[b:b + 1] for k, v in feeds.items()},
                                         available[b])[0] for b in range(len(rows))]
            summaries = [summary_of(p, available[b], meta) for b, p in enumerate(predictions)]
            for label, s in zip(cases, (summaries[0],
                                        summary_of(fused(predictions, meta), available[0], meta),
                                        aggregate(summaries))):
                a = assess(s, thresholds, actions)
                cases[label].append((a.target, bool(a.reasons)))
            truth.append(ground_truth_action(meta.fatigue_classes[labels['fatigue']],
                                             meta.damage_classes[labels['damage']],
                                             float(labels['urgency']), thresholds))
    finally:
        gen.close()
    for label, outcomes in cases.items():
        decided, asked = (np.array(x) for x in zip(*outcomes))
        m = decision_metrics(decided, asked, np.array(truth))
        left = round(m['missed_critical_rate'] * m['critical_windows'])
        print(f"{meta.model_id} {label:20s} decision accuracy {m['decision_accuracy']:.3f}, "
              f"missed critical {left} of {m['critical_windows']}, assistance "
              f"{m['assistance_rate']:.3f}, over-acting {m['over_acting_rate']:.3f} "
              f"({len(truth)} arms)")


if __name__ == '__main__':
    main()
