"""Camera-only linear probe: does the field camera carry damage and fatigue information at all?

Ridge regression (lambda 10, 100, 1000) on per-window mean/std/min images (brightness
normalised), trained on the field view of teacher_train + field_train with all labels of
data/sim-v1 (split_seed 0), evaluated on field_test; prints macro-F1 per task and lambda.
Run from the repository root after `source tools/env.sh`:
    python tools/experiments/camera_linear_probe.py
Result (docs/distillation.md, Diagnosis 1): damage F1 0.34, fatigue F1 0.37 (lambda 1000).
"""
import numpy as np
from softmaint_train.data import open_dataset, make_splits, Windows
from softmaint_train.config import DataConfig
from softmaint_core.metrics import macro_f1
ds = open_dataset('data/sim-v1')
sp = make_splits(ds.array('episode'), ds.array('domain'), DataConfig())
fm = ds.array('field_mask').astype(bool)
def feats(rows):
    rows = rows[fm[rows,0]]
    cam = ds.take('field_camera', rows).astype(np.float32)/255.
    cam = cam / cam.mean(axis=(1,2,3,4), keepdims=True)   # brightness
    mean = cam.mean(1); std = cam.std(1)
    mn = cam.min(1)
    f = np.concatenate([x.reshape(len(rows), -1) for x in (mean, std, mn)], 1)
    return f, rows
tr_rows = np.sort(np.concatenate([sp.teacher_train, sp.field_train])); te_rows = sp.field_test
Xtr, rtr = feats(tr_rows); Xte, rte = feats(te_rows)
mu, sd = Xtr.mean(0), Xtr.std(0)+1e-6
Xtr=(Xtr-mu)/sd; Xte=(Xte-mu)/sd
for name, k in (('damage',5),('fatigue',3)):
    y = ds.array(name)
    Y = np.eye(k)[y[rtr]]
    for lam in (10., 100., 1000.):
        W = np.linalg.solve(Xtr.T@Xtr + lam*np.eye(Xtr.shape[1]), Xtr.T@(Y - Y.mean(0)))
        pred = (Xte@W).argmax(1)
        print(name, lam, 'F1', round(macro_f1(y[rte], pred, k),3))
