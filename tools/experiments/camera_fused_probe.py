"""Camera-only probe of the student's fused (attention) encoder, 300 steps, damage only.

argv[1] is a ModelConfig mapping ("{}" = defaults); AUX=1 adds a classifier on the camera's
own feature (the per-modality head later adopted as unimodal_ce). Same data as the other
camera probes (data/sim-v1, split_seed 0, all labels, field_test). Run from the repository
root after `source tools/env.sh`:
    python tools/experiments/camera_fused_probe.py "{}"
    AUX=1 python tools/experiments/camera_fused_probe.py "{}"
Result (docs/distillation.md, Diagnosis 1): loss 1.64 -> 1.55, damage F1 0.24; with AUX=1 0.43.
"""
import numpy as np, torch, math, sys
import torch.nn.functional as F
from softmaint_train.data import open_dataset, make_splits, Windows, fit_normalisation, make_inputs, make_targets, VIEW_SPECS
from softmaint_train.config import DataConfig, ModelConfig
from softmaint_train.models import MultiModalEncoder, shapes_from_spec
from softmaint_core.metrics import macro_f1
import os
torch.manual_seed(0); torch.set_num_threads(2)
ds = open_dataset('data/sim-v1')
sp = make_splits(ds.array('episode'), ds.array('domain'), DataConfig())
fm = ds.array('field_mask').astype(bool)
rows = np.sort(np.concatenate([sp.teacher_train, sp.field_train])); rows = rows[fm[rows,0]]
w = Windows.load(ds, 'field', rows); st = fit_normalisation(w)
te = sp.field_test[fm[sp.field_test,0]]; wt = Windows.load(ds, 'field', te)
mask = np.array([1,0,0,0], bool)
cfg = ModelConfig(**eval(sys.argv[1]))
enc = MultiModalEncoder(shapes_from_spec(VIEW_SPECS['field']), cfg)
head = torch.nn.Sequential(torch.nn.Linear(cfg.d_model, cfg.d_model), torch.nn.GELU(), torch.nn.Linear(cfg.d_model, 5))
aux = torch.nn.Linear(cfg.embedding, 5)
ps = list(enc.parameters()) + list(head.parameters()) + list(aux.parameters())
opt = torch.optim.AdamW(ps, lr=2e-3)
rng = np.random.default_rng(0)
for step in range(300):
    idx = np.sort(rng.choice(len(w), 64, replace=False))
    inp, m = make_inputs(w, idx, st, mask=mask); y = make_targets(w, idx)['damage']
    hh, ff = enc(inp, m)
    z = head(hh)
    loss = F.cross_entropy(z, y) + (F.cross_entropy(aux(ff[:, 0]), y) if os.environ.get('AUX') else 0)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0: print(step, loss.item(), flush=True)
enc.eval()
with torch.no_grad():
    inp, m = make_inputs(wt, np.arange(len(wt)), st, mask=mask)
    pred = head(enc(inp, m)[0]).argmax(1).numpy()
print(sys.argv[1], 'test damage F1', macro_f1(wt.arrays['damage'], pred, 5))
