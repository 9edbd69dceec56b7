"""Urgency ceiling: how well log RUL is explained by the privileged physics, simulation -> field.

Least squares of log RUL on log(environment acceleration), log(load), stiffness, severity and
damage type (privileged truth of data/sim-v1), fitted on the simulation domain, urgency
computed from the prediction on the field domain. Run from the repository root after
`source tools/env.sh`:
    python tools/experiments/urgency_ceiling.py
Result (docs/distillation.md, Diagnosis 2): urgency MAE 0.114, Spearman 0.88.
"""
import numpy as np, json
from softmaint_core.dataset import Dataset
ds = Dataset('data/sim-v1')
card = json.load(open('data/sim-v1/card.json'))
cols = card['privileged_columns']
P = ds.array('privileged'); u = ds.array('urgency'); dom = ds.array('domain')
print('urgency==1', (u>=0.999).mean(), 'urgency==0', (u<=1e-6).mean())
rul = P[:, cols.index('rul')]
print('rul quantiles', np.quantile(rul, [0,0.01,0.1,0.5,0.9,0.99,1]))
print('check u vs rul', np.abs(u - np.clip(1-rul/20000,0,1)).max())
# log-linear fit of log RUL from ideal privileged
def fit(X, y, name):
    X = np.c_[X, np.ones(len(X))]
    tr = dom==0; te = dom==1
    w,*_ = np.linalg.lstsq(X[tr], y[tr], rcond=None)
    pred = X[te]@w
    return pred
lr = np.log(np.maximum(rul, 1.0))
feat = ['stiffness_fraction','damage_severity','env_acceleration','load_factor','fatigue_rate','damage_rate']
for f in feat: print(f, np.quantile(P[:, cols.index(f)],[0,.5,1]))
X = np.c_[np.log(P[:, cols.index('env_acceleration')]), np.log(P[:, cols.index('load_factor')]),
          P[:, cols.index('stiffness_fraction')], P[:, cols.index('damage_severity')], np.eye(5)[ds.array('damage')]]
pred = fit(X, lr, 'ideal')
te = dom==1
from scipy.stats import spearmanr
up = np.clip(1-np.exp(pred)/20000,0,1)
print('ideal-linear log-rul: urgency MAE', np.abs(up-u[te]).mean(), 'rho', spearmanr(up,u[te]).statistic)
X2 = np.c_[np.log(P[:, cols.index('fatigue_rate')]+1e-12), np.log(P[:, cols.index('damage_rate')]+1e-12)]
print(P[:5, cols.index('cycles')], P[:5, cols.index('cycle_frequency')])
