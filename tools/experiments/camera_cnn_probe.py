"""Camera-only CNN probe: a frame CNN + mean over time + linear head, 300 steps, damage only.

Trains models.FrameCNN (pool = argv[1]: flatten or mean) on the field camera of
teacher_train + field_train with all labels of data/sim-v1 (split_seed 0); prints the loss
every 50 steps and the damage macro-F1 on field_test. Run from the repository root after
`source tools/env.sh`:
    python tools/experiments/camera_cnn_probe.py flatten
Result (docs/distillation.md, Diagnosis 1): loss 1.62 -> 1.16, damage F1 0.43.
"""
import numpy as np, torch, math
import torch.nn.functional as F
from softmaint_train.data import open_dataset, make_splits, Windows, fit_normalisation, make_inputs, make_targets, VIEW_SPECS
from softmaint_train.config import DataConfig, ModelConfig
from softmaint_train.models import FrameCNN
torch.manual_seed(0); torch.set_num_threads(2)
ds = open_dataset('data/sim-v1')
sp = make_splits(ds.array('episode'), ds.array('domain'), DataConfig())
fm = ds.array('field_mask').astype(bool)
rows = np.sort(np.concatenate([sp.teacher_train, sp.field_train])); rows = rows[fm[rows,0]]
w = Windows.load(ds, 'field', rows); st = fit_normalisation(w)
te = sp.field_test[fm[sp.field_test,0]]; wt = Windows.load(ds, 'field', te)
import sys
pool = sys.argv[1]
cnn = FrameCNN((3,32,32), (16,32,32), 32, pool=pool, frame_norm=True)
head = torch.nn.Sequential(torch.nn.GELU(), torch.nn.Linear(32, 5))
ps = list(cnn.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(ps, lr=2e-3)
rng = np.random.default_rng(0)
for step in range(300):
    idx = np.sort(rng.choice(len(w), 64, replace=False))
    inp, _ = make_inputs(w, idx, st); y = make_targets(w, idx)['damage']
    z = head(cnn(inp['camera']).mean(1))
    loss = F.cross_entropy(z, y)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0: print(step, loss.item(), flush=True)
with torch.no_grad():
    inp, _ = make_inputs(wt, np.arange(len(wt)), st)
    pred = head(cnn(inp['camera']).mean(1)).argmax(1).numpy()
from softmaint_core.metrics import macro_f1
print(pool, 'test damage F1', macro_f1(wt.arrays['damage'], pred, 5))
