"""
Evaluate a student on the field episodes of application-profile datasets (one table row each).

    softmaint-dataset generate --out data/profiles/deep_sea --episodes 300 --seed 9001 \
        --workers 1 --field-fraction 0.3 --profile deep_sea          # one per profile
    python -m softmaint_sim.profile_eval models/student.onnx data/profiles/*   # markdown table
    python -m softmaint_sim.profile_eval models/student.onnx data/profiles/* --own-students

--own-students evaluates each profile with the student bringup runs for it (its own under
models/profiles/NAME/ when it ships one, softmaint_core.profiles.student_of).

Inputs are built as the robot builds them: the dataset's raw field view, normalised with the
model's input spec (softmaint_core.window.normalise), an unsensed environment quantity (NaN in
the view) read as the training mean, i.e. 0 after normalisation, like WindowAssembler does, and
unavailable modalities zeroed. Outputs go through softmaint_core.postprocess (calibration,
conformal sets) and the metrics are those of the distillation protocol
(softmaint_core.metrics: macro-F1, ECE, conformal coverage, urgency MAE, missed critical).
"""
import argparse
import json
from pathlib import Path
import sys
from typing import Dict, List, Tuple

import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.metrics import head_metrics, urgency_metrics
from softmaint_core.profiles import student_of
from softmaint_core.student import StudentModel
from softmaint_core.window import normalise

COLUMNS = (('damage.macro_f1', 'damage F1'), ('fatigue.macro_f1', 'fatigue F1'),
           ('fatigue.ece', 'fatigue ECE'), ('fatigue.coverage', 'fatigue cov.'),
           ('damage.ece', 'damage ECE'), ('damage.coverage', 'damage cov.'),
           ('urgency.mae', 'urgency MAE'), ('urgency.spearman', 'urgency ρ'),
           ('urgency.missed_critical', 'missed critical'), ('uncertainty', 'mean uncertainty'))


def field_inputs(data: Dataset, spec, index: np.ndarray
                 ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Model inputs [B, ...] of field episodes `index` and their masks, as onboard windows."""
    mask = np.asarray(data.array('field_mask')[index])
    feeds = {}
    for i, mod in enumerate(spec.modalities):
        x = normalise(mod, np.asarray(data.array(f'field_{mod.name}')[index]))
        x[~mask[:, i]] = 0.0
        feeds[mod.name] = x
    return feeds, mask


def evaluate(model_path: Path, root: Path) -> Dict[str, float]:
    """Metrics of the student `model_path` on the field episodes of dataset `root`."""
    model = StudentModel(model_path)
    meta = model.meta
    data = Dataset(root)
    index = np.flatnonzero(data.array('domain') == 1)
    feeds, mask = field_inputs(data, model.spec, index)
    predictions = [model.predict({k: v[b:b + 1] for k, v in feeds.items()}, mask[b])[0]
                   for b in range(len(index))]
    result = {'episodes': float(len(index)), 'model_id': meta.model_id}
    for head, qhat in (('fatigue', meta.conformal_fatigue), ('damage', meta.conformal_damage)):
        probs = np.stack([getattr(p, f'{head}_probs') for p in predictions]).astype(np.float64)
        labels = np.asarray(data.array(head)[index])
        result.update({f'{head}.{k}': v for k, v in head_metrics(probs, labels, qhat).items()})
    urgency = urgency_metrics(np.asarray(data.array('urgency')[index], dtype=np.float64),
                              np.array([p.urgency for p in predictions]))
    result.update({f'urgency.{k}': v for k, v in urgency.items()})
    result['uncertainty'] = float(np.mean([p.uncertainty for p in predictions]))
    return result


def table(rows: Dict[str, Dict[str, float]]) -> str:
    """Markdown table, one row per dataset."""
    lines = ['| profile | student | field episodes | ' + ' | '.join(c[1] for c in COLUMNS)
             + ' |', '|---|---|---|' + '---|' * len(COLUMNS)]
    for name, metrics in rows.items():
        cells = [f'{metrics[key]:.3f}' for key, _ in COLUMNS]
        lines.append(f'| {name} | {metrics["model_id"]} | {int(metrics["episodes"])} | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv: List[str] = None) -> int:
    """Print the per-profile table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog='python -m softmaint_sim.profile_eval',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('model', type=Path, help='student ONNX (metadata JSON beside it)')
    parser.add_argument('datasets', type=Path, nargs='+', help='profile dataset directories')
    parser.add_argument('--own-students', action='store_true',
                        help="a profile's own student (models/profiles/NAME/student.onnx "
                        'beside MODEL) where it ships one')
    parser.add_argument('--json', type=Path, help='also write the metrics here')
    args = parser.parse_args(argv)
    rows = {}
    for root in args.datasets:
        card = json.loads((root / 'card.json').read_text())
        name = card['parameters'].get('profile', 'default')
        model = student_of(name, args.model.parent) if args.own_students else args.model
        rows[name] = evaluate(model, root)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
