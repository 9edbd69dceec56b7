"""
What would controlling each profile's missed critical states directly buy?

    python tools/experiments/decision_risk_control.py CAL_ROOT TEST_ROOT [--alpha 0.01]

CAL_ROOT/<profile> and TEST_ROOT/<profile> are field datasets of each profile (softmaint-dataset
generate --field-fraction 1.0 --profile P, two seeds). The models' miss-rate control sets one λ
for "some damage" (a `{none}` damage set gets its most probable damage at P(damage) >= λ), the
same for every profile. Controlled at the decision instead (conformal risk control, Angelopoulos
et al., "Conformal Risk Control", ICLR 2024): on the calibration windows of a profile, under its
policy, the loss of a critical window is 1 when the decided level is below schedule_maintenance;
it grows with λ, so λ_P is the largest λ of a grid whose bound n/(n + 1) R(λ) + 1/(n + 1) stays
at or below alpha for it and every smaller λ. Prints, per profile, the held-out decision figures
at the card's λ and at λ_P.
"""
import argparse
import dataclasses
from pathlib import Path

from damage_fnr_sets import guarded
import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.profiles import student_of
from softmaint_core.student import StudentModel
from softmaint_sim.profile_eval import decisions, predict, profile_policy

GRID = np.round(np.arange(0.02, 0.50, 0.01), 3)


def field_predictions(model: StudentModel, root: Path):
    """Predictions without the card's λ (sets as calibrated), masks, dataset and rows."""
    data = Dataset(root)
    rows = np.flatnonzero(data.array('domain') == 1)
    return (*predict(model, data, rows), data, rows)


def figures(model, predictions, mask, data, rows, policy, lam: float) -> dict:
    """Decision figures of the policy with damage added to `{none}` sets at P(damage) >= lam."""
    none = list(model.meta.damage_classes).index('none')
    return {k.split('.', 1)[1]: v for k, v in decisions(
        guarded(predictions, none, lam), mask, data, rows, model.meta, policy).items()}


def controlled_lambda(model, cal, policy, alpha: float) -> float:
    """Largest λ of GRID whose conformal risk bound, and every smaller λ's, is <= alpha."""
    chosen = None
    for lam in GRID:
        m = figures(model, *cal, policy, lam)
        n = m['critical_windows']
        if n / (n + 1) * m['missed_critical_rate'] + 1 / (n + 1) > alpha:
            break
        chosen = lam
    if chosen is None:
        raise SystemExit(f'no λ of the grid keeps the bound at {alpha}: too few critical '
                         'calibration windows or a model that misses too many')
    return float(chosen)


def main() -> None:
    """Print each profile's held-out figures at the card's λ and at its controlled λ."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('cal_root', type=Path)
    parser.add_argument('test_root', type=Path)
    parser.add_argument('--alpha', type=float, default=0.01)
    args = parser.parse_args()
    for root in sorted(p for p in args.cal_root.iterdir() if p.is_dir()):
        profile = root.name
        model = StudentModel(student_of(profile, Path('models')))
        card_lam = model.meta.damage_miss_threshold
        model.meta = dataclasses.replace(model.meta, damage_miss_threshold=None)
        policy = profile_policy(Path('config'), profile)
        cal = field_predictions(model, root)
        test = field_predictions(model, args.test_root / profile)
        lam = controlled_lambda(model, cal, policy, args.alpha)
        for label, value in (('card', card_lam), ('controlled', lam)):
            m = figures(model, *test, policy, value)
            print(f"{profile:26s} {label:10s} λ {value:.3f}: missed critical "
                  f"{m['missed_critical_rate']:.4f}, decision accuracy "
                  f"{m['decision_accuracy']:.3f}, assistance {m['assistance_rate']:.3f}, "
                  f"over-acting {m['over_acting_rate']:.3f} ({m['critical_windows']} critical "
                  'held-out windows)')


if __name__ == '__main__':
    main()
