"""Re-evaluate the committed default model (models/student.pt) and write its report here.

Run from the repository root after `source tools/env.sh`:
    python tools/experiments/evaluate_committed.py
The teacher row is that of the run that produced the model (its checkpoint is not kept).
"""
import json
from pathlib import Path

from softmaint_train.data import make_splits, open_dataset, Windows
from softmaint_train.evaluate import evaluate_student, labels_of, save_predictions, write_report
from softmaint_train.checkpoints import load_checkpoint

OUT = Path('docs/reports/default')
student, ckpt = load_checkpoint('models/student.pt')
meta = json.loads(Path('models/student.json').read_text())
cfg = meta['training_config']
ds = open_dataset(cfg['data']['root'])
from softmaint_train.config import config_from_dict  # noqa: E402
splits = make_splits(ds.array('episode'), ds.array('domain'), config_from_dict(cfg).data)
test = Windows.load(ds, 'field', splits.field_test)
results, outputs = evaluate_student(student, test, ckpt['stats'], ckpt['calibration'],
                                    cfg['data']['lighting_shift'])
teacher = {'damage.macro_f1': 0.640, 'fatigue.macro_f1': 0.799, 'urgency.mae': 0.307,
           'urgency.spearman': 0.370, 'damage.ece': 0.071, 'fatigue.ece': 0.082,
           'urgency.missed_critical': 0.500}   # from that run's report (commit 371af92)
record = {'variant': 'default (committed)', 'seed': 0, 'label_fraction': 1.0,
          'student': results, 'teacher': teacher, 'calibration': ckpt['calibration']}
PRED = Path('runs/committed-default-predictions.npz')
save_predictions(PRED, outputs, labels_of(test), ckpt['calibration'])
(OUT / 'record.json').write_text(json.dumps(record, indent=2))
write_report([record], PRED, OUT, 'softmaint student: committed default',
             'softmaint-train reproduce --config config/train/default.yaml (commit 371af92); '
             're-evaluated by python tools/experiments/evaluate_committed.py')
