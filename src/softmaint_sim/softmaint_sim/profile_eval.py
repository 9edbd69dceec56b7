"""
Evaluate a student on the field episodes of application-profile datasets (one table row each).

    softmaint-dataset generate --out data/profiles/deep_sea --episodes 300 --seed 9001 \
        --workers 1 --field-fraction 0.3 --profile deep_sea          # one per profile
    python -m softmaint_sim.profile_eval models/student.onnx data/profiles/*   # markdown table
    python -m softmaint_sim.profile_eval models/student.onnx data/profiles/* --own-students

--own-students evaluates each profile with the student bringup runs for it (its own under
models/profiles/NAME/ when it ships one, softmaint_core.profiles.student_of). --card writes
each profile's figures (CARD_FIGURES) into the model card of the student that was evaluated,
as `profile.NAME.FIGURE` metrics, and signs it again with --signing-key.

Decision figures: every window's prediction goes through the profile's own policy
(config/softmaint.yaml + config/profiles/NAME.yaml, softmaint_core.decisions.assess, no
hysteresis: each episode is one window) and is compared with the decision its true labels
imply (decisions.ground_truth_action); softmaint_core.metrics.decision_metrics defines
assistance rate, missed critical and decision accuracy. A dataset labels a fault only once its
sensors can show it, so every window counts as "after the fault is detectable". The point
estimate's accuracy (decisions.point_action: most probable classes and mean urgency, no sets,
never asking) tells the model's errors from the policy's caution, and a table per dataset
counts windows per true and decided level (metrics.decision_confusion). The urgency band's
coverage is the share of windows whose true urgency lies in the band the policy holds
possible (decisions.urgency_band: mean +- the profile's urgency_band ensemble stds): what
that parameter means in probability.

Inputs are built as the robot builds them: the dataset's raw field view, normalised with the
model's input spec (softmaint_core.window.batch_inputs), an unsensed environment quantity (NaN
in the view) read as the training mean, i.e. 0 after normalisation, like WindowAssembler does,
camera windows below the spec's min_snr unreadable, and unavailable modalities zeroed.
Outputs go through softmaint_core.postprocess (calibration, conformal sets) and the metrics
are those of the distillation protocol (softmaint_core.metrics: macro-F1, ECE, conformal
coverage, urgency MAE, missed critical).
"""
import argparse
from collections import Counter
import json
from pathlib import Path
import sys
from typing import Dict, List, Tuple

import numpy as np
from softmaint_core.agent import summarise
from softmaint_core.dataset import Dataset
from softmaint_core.decisions import assess, ground_truth_action, point_action, urgency_band
from softmaint_core.metrics import (decision_confusion, decision_metrics, head_metrics,
                                    rate_with_interval, urgency_metrics)
from softmaint_core.profiles import (agent_actions, agent_thresholds, load_parameter_files,
                                     parameter_files, student_of)
from softmaint_core.settings import ActionSettings, LEVELS, Thresholds
from softmaint_core.signing import add_to_card, load_private_key, signature_path
from softmaint_core.student import StudentModel
from softmaint_core.window import batch_inputs

COLUMNS = (('damage.macro_f1', 'damage F1'), ('fatigue.macro_f1', 'fatigue F1'),
           ('fatigue.ece', 'fatigue ECE'), ('fatigue.coverage', 'fatigue cov.'),
           ('damage.ece', 'damage ECE'), ('damage.coverage', 'damage cov.'),
           ('urgency.mae', 'urgency MAE'), ('urgency.spearman', 'urgency ρ'),
           ('urgency.missed_critical', 'missed critical'), ('uncertainty', 'mean uncertainty'))
# A profile's row as its student's model card carries it (--card): figure and, for the
# rates, their 95 % Wilson intervals.
RATES = ('assistance_rate', 'missed_critical_rate', 'decision_accuracy')
CARD_FIGURES = ('episodes', 'damage.macro_f1', 'urgency.mae', 'decision.point_accuracy',
                *(f'decision.{rate}{suffix}' for rate in RATES
                  for suffix in ('', '_ci_low', '_ci_high')))
DECISION_COLUMNS = (('decision.assistance_rate', 'assistance'),
                    ('decision.missed_critical_rate', 'missed critical'),
                    ('decision.decision_accuracy', 'decision accuracy'),
                    ('decision.decision_accuracy_alone', 'accuracy when deciding alone'),
                    ('decision.over_acting_rate', 'over-acting'),
                    ('decision.point_accuracy', "point estimate's accuracy"),
                    ('decision.urgency_band_coverage', 'urgency band holds the truth'))
Policy = Tuple[Thresholds, ActionSettings]


def profile_policy(config: Path, name: str) -> Policy:
    """Thresholds and action settings of profile `name` as the agent reads them."""
    files = parameter_files(config / 'softmaint.yaml', name, config / 'profiles')
    agent = load_parameter_files(files)['softmaint_agent']
    return agent_thresholds(agent), agent_actions(agent)


def field_inputs(data: Dataset, spec, index: np.ndarray
                 ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Model inputs [B, ...] of field episodes `index` and their masks, as onboard windows."""
    raw = {name: data.array(f'field_{name}')[index] for name in spec.names}
    return batch_inputs(spec, raw, np.asarray(data.array('field_mask')[index]))


def decisions(predictions, mask: np.ndarray, data: Dataset, index: np.ndarray, meta,
              policy: Policy) -> Dict[str, float]:
    """Decision figures of `policy` on the predictions against the true labels' decisions."""
    thresholds, actions = policy
    names = meta.input_spec.names
    decided, asked, truth, point, held, reasons = [], [], [], [], [], Counter()
    for p, available, fatigue, damage, urgency in zip(
            predictions, mask, data.array('fatigue')[index], data.array('damage')[index],
            data.array('urgency')[index]):
        summary = summarise(p, [n for n, a in zip(names, available) if a], len(names),
                            meta.fatigue_classes, meta.damage_classes)
        assessment = assess(summary, thresholds, actions)
        decided.append(assessment.target)
        asked.append(bool(assessment.reasons))
        reasons.update(assessment.reasons.keys())
        point.append(point_action(summary, thresholds))
        low, high = urgency_band(summary, thresholds)
        held.append(low <= urgency <= high)
        truth.append(ground_truth_action(meta.fatigue_classes[fatigue],
                                         meta.damage_classes[damage], float(urgency),
                                         thresholds))
    decided, asked, truth = np.array(decided), np.array(asked), np.array(truth)
    never_asked = np.zeros_like(asked)
    return {**{f'decision.{k}': v for k, v in decision_metrics(decided, asked, truth).items()},
            'decision.point_accuracy': decision_metrics(np.array(point), never_asked,
                                                        truth)['decision_accuracy'],
            **rate_with_interval(np.array(held), 'decision.urgency_band_coverage'),
            'decision.confusion': decision_confusion(decided, asked, truth).tolist(),
            'decision.asked_because': dict(sorted(reasons.items()))}


def predict(model: StudentModel, data: Dataset, index: np.ndarray):
    """(Prediction of every field episode `index`, as onboard; their availability masks)."""
    feeds, mask = field_inputs(data, model.spec, index)
    return [model.predict({k: v[b:b + 1] for k, v in feeds.items()}, mask[b])[0]
            for b in range(len(index))], mask


def evaluate(model_path: Path, root: Path, policy: Policy) -> Dict[str, float]:
    """Metrics and the decision figures of `policy` of the student on dataset `root`."""
    model = StudentModel(model_path)
    meta = model.meta
    data = Dataset(root)
    index = np.flatnonzero(data.array('domain') == 1)
    predictions, mask = predict(model, data, index)
    result = {'episodes': float(len(index)), 'model_id': meta.model_id}
    for head, qhat in (('fatigue', meta.conformal_fatigue), ('damage', meta.conformal_damage)):
        probs = np.stack([getattr(p, f'{head}_probs') for p in predictions]).astype(np.float64)
        labels = np.asarray(data.array(head)[index])
        result.update({f'{head}.{k}': v for k, v in head_metrics(probs, labels, qhat).items()})
    urgency = urgency_metrics(np.asarray(data.array('urgency')[index], dtype=np.float64),
                              np.array([p.urgency for p in predictions]))
    result.update({f'urgency.{k}': v for k, v in urgency.items()})
    result['uncertainty'] = float(np.mean([p.uncertainty for p in predictions]))
    result.update(decisions(predictions, mask, data, index, meta, policy))
    return result


def _cell(metrics: Dict[str, float], key: str) -> str:
    if f'{key}_ci_low' not in metrics:
        return f'{metrics[key]:.3f}'
    return f'{metrics[key]:.3f} ({metrics[key + "_ci_low"]:.3f}-{metrics[key + "_ci_high"]:.3f})'


def table(rows: Dict[str, Dict[str, float]], columns=COLUMNS) -> str:
    """Markdown table, one row per dataset (rates with their 95 % Wilson interval)."""
    lines = ['| profile | student | field episodes | ' + ' | '.join(c[1] for c in columns)
             + ' |', '|---|---|---|' + '---|' * len(columns)]
    for name, metrics in rows.items():
        cells = [_cell(metrics, key) for key, _ in columns]
        lines.append(f'| {name} | {metrics["model_id"]} | {int(metrics["episodes"])} | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def reason_lines(rows: Dict[str, Dict[str, float]]) -> str:
    """Markdown, per dataset: windows asked about with each reason (a window may have two)."""
    return '\n'.join(f'- {name}: ' + (', '.join(
        f'{reason} {count}' for reason, count in metrics['decision.asked_because'].items())
        or 'never asked') for name, metrics in rows.items())


def confusion_tables(rows: Dict[str, Dict[str, float]]) -> str:
    """Markdown, per dataset: windows per true level (rows) and decided level (columns)."""
    header = ('| true \\ decided | ' + ' | '.join(level.label for level in LEVELS)
              + ' | asked |\n|---|' + '---|' * (len(LEVELS) + 1))
    parts = []
    for name, metrics in rows.items():
        lines = [f'{name}:\n', header]
        for level, counts in zip(LEVELS, metrics['decision.confusion']):
            lines.append(f'| {level.label} | ' + ' | '.join(map(str, counts)) + ' |')
        parts.append('\n'.join(lines))
    return '\n\n'.join(parts)


def card_figures(name: str, metrics: Dict[str, float]) -> Dict[str, float]:
    """Profile `name`'s figures as model-card metrics, profile.NAME.FIGURE (CARD_FIGURES)."""
    return {f'profile.{name}.{key.removeprefix("decision.")}': float(metrics[key])
            for key in CARD_FIGURES}


def main(argv: List[str] = None) -> int:
    """Print the per-profile table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog='python -m softmaint_sim.profile_eval',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('model', type=Path, help='student ONNX (metadata JSON beside it)')
    parser.add_argument('datasets', type=Path, nargs='+', help='profile dataset directories')
    parser.add_argument('--own-students', action='store_true',
                        help="a profile's own student (models/profiles/NAME/student.onnx "
                        'beside MODEL) where it ships one')
    parser.add_argument('--config', type=Path, default=Path('config'),
                        help='directory of softmaint.yaml and profiles/ (default: ./config)')
    parser.add_argument('--json', type=Path, help='also write the metrics here')
    parser.add_argument('--card', action='store_true',
                        help="write each profile's figures into the card of the model it ran")
    parser.add_argument('--signing-key', type=Path,
                        help='private key that signs the cards again (--card)')
    args = parser.parse_args(argv)
    if not (args.config / 'softmaint.yaml').is_file():
        parser.error(f'no {args.config / "softmaint.yaml"}: run from the repository or pass '
                     '--config')
    rows, models = {}, {}
    for root in args.datasets:
        card = json.loads((root / 'card.json').read_text())
        name = card['parameters'].get('profile', 'default')
        models[name] = student_of(name, args.model.parent) if args.own_students else args.model
        if args.card and signature_path(models[name]).is_file() and not args.signing_key:
            parser.error(f'{models[name]} is signed and --card changes its card: pass '
                         '--signing-key to sign it again (else the robot refuses it as altered)')
        rows[name] = evaluate(models[name], root, profile_policy(args.config, name))
    print(table(rows))
    print("\nDecisions under each profile's policy (rates with 95 % Wilson intervals):\n")
    print(table(rows, DECISION_COLUMNS))
    print('\nWhy it asked (windows with each reason; a window may have two):\n')
    print(reason_lines(rows))
    print('\nWindows per true level and decided level:\n')
    print(confusion_tables(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, sort_keys=True))
    key = load_private_key(args.signing_key) if args.signing_key else None
    for name, model in models.items() if args.card else ():
        add_to_card(model, card_figures(name, rows[name]), key)
        print(f'card of {model}: profile.{name}.* written', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
