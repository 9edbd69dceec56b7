"""
Evaluation on held-out field episodes and the report (Markdown + PNG, matplotlib Agg).

Scenarios: every modality the data has ('all'), each single-modality failure, camera only,
tactile + proprioception only, and a lighting shift (camera brightness scaled by
data.lighting_shift). Metrics per scenario: macro-F1, ECE, conformal coverage and set size for
fatigue and damage (calibrated ensemble mean, as the robot computes it), urgency MAE, Spearman
and the missed-critical rate.
"""
import json
from pathlib import Path
from typing import Dict, List

import matplotlib
matplotlib.use('Agg')  # headless: must come before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402,I202
import numpy as np  # noqa: E402
from softmaint_core.metrics import (  # noqa: E402
    confusion_matrix, head_metrics, risk_coverage, urgency_metrics)
from softmaint_core.spec import MODALITIES  # noqa: E402
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS  # noqa: E402
import torch  # noqa: E402

from .calibrate import ensemble_probs  # noqa: E402
from .data import make_inputs, Windows  # noqa: E402

CHUNK = 256


def scenario_masks() -> Dict[str, np.ndarray]:
    """Availability masks (AND-ed with the data's) of the evaluation scenarios."""
    ones = np.ones(len(MODALITIES), dtype=bool)
    masks = {'all': ones}
    for i, name in enumerate(MODALITIES):
        m = ones.copy()
        m[i] = False
        masks[f'no_{name}'] = m
    masks['camera_only'] = np.array([n == 'camera' for n in MODALITIES])
    masks['tactile_proprio'] = np.array([n in ('tactile', 'proprio') for n in MODALITIES])
    return masks


@torch.no_grad()
def student_outputs(student, windows: Windows, stats, mask=None,
                    lighting: float = 1.0) -> Dict[str, np.ndarray]:
    """
    Raw ensemble outputs [n, K, ...] of the student on every window.

    `mask` ([M] for every window or [n, M] per window) is AND-ed with the data's availability.
    """
    student.eval()
    parts = []
    for start in range(0, len(windows), CHUNK):
        index = np.arange(start, min(start + CHUNK, len(windows)))
        rows = mask[index] if mask is not None and np.ndim(mask) == 2 else mask
        inputs, m = make_inputs(windows, index, stats, mask=rows, lighting=lighting)
        out = student(inputs, m)
        parts.append({k: out[k].numpy() for k in ('fatigue', 'damage', 'urgency')})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def labels_of(windows: Windows) -> Dict[str, np.ndarray]:
    """Label arrays of the windows."""
    return {k: windows.arrays[k] for k in ('fatigue', 'damage', 'urgency')}


def metrics_of(outputs, labels, calib) -> Dict[str, float]:
    """Flat metric dict ('damage.macro_f1', ...) of ensemble outputs [n, K, ...]."""
    flat = {}
    for head in ('fatigue', 'damage'):
        probs = ensemble_probs(outputs[head], calib[f'temperature_{head}'])
        for key, value in head_metrics(probs, labels[head], calib[f'conformal_{head}']).items():
            flat[f'{head}.{key}'] = value
    urgency = outputs['urgency'].mean(axis=1)
    for key, value in urgency_metrics(labels['urgency'], urgency).items():
        flat[f'urgency.{key}'] = value
    return flat


def evaluate_student(student, windows: Windows, stats, calib, lighting_shift: float):
    """Metrics of every scenario, and the 'all' outputs for plots."""
    labels = labels_of(windows)
    results, kept = {}, None
    for name, mask in scenario_masks().items():
        out = student_outputs(student, windows, stats, mask=mask)
        results[name] = metrics_of(out, labels, calib)
        if name == 'all':
            kept = out
    out = student_outputs(student, windows, stats, lighting=lighting_shift)
    results['lighting_shift'] = metrics_of(out, labels, calib)
    return results, kept


def teacher_metrics(outputs, labels) -> Dict[str, float]:
    """Teacher metrics (uncalibrated, T = 1; conformal sets not applicable: q-hat 1)."""
    as_ensemble = {'fatigue': outputs['fatigue'][:, None], 'damage': outputs['damage'][:, None],
                   'urgency': outputs['urgency'][:, None]}
    calib = {'temperature_fatigue': 1.0, 'temperature_damage': 1.0,
             'conformal_fatigue': 1.0, 'conformal_damage': 1.0}
    return metrics_of(as_ensemble, labels, calib)


def save_predictions(path: Path, outputs, labels, calib) -> None:
    """Store what the plots need: raw and calibrated probabilities, labels, urgency."""
    np.savez_compressed(
        path, fatigue_logits=outputs['fatigue'], damage_logits=outputs['damage'],
        urgency=outputs['urgency'], fatigue=labels['fatigue'], damage=labels['damage'],
        true_urgency=labels['urgency'],
        temperatures=np.array([calib['temperature_fatigue'], calib['temperature_damage']]))


# ----------------------------------------------------------------------------- report

def _aggregate(records: List[dict], key: str, scenario: str = 'all'):
    values = [r['student'][scenario].get(key, float('nan')) for r in records]
    values = [v for v in values if v == v]  # drop NaN (and metrics older records lack)
    if not values:
        return 'n/a'
    return f'{np.mean(values):.3f} ± {np.std(values):.3f}'


def _group(records: List[dict]):
    groups = {}
    for r in records:
        groups.setdefault((r['variant'], r['label_fraction']), []).append(r)
    return groups


HEADLINE = (('damage.macro_f1', 'damage F1'), ('fatigue.macro_f1', 'fatigue F1'),
            ('urgency.mae', 'urgency MAE'), ('urgency.spearman', 'urgency ρ'),
            ('damage.ece', 'damage ECE'), ('damage.ece_floor', 'damage ECE floor'),
            ('fatigue.ece', 'fatigue ECE'),
            ('damage.coverage', 'damage cov.'), ('damage.set_size', 'damage set'),
            ('fatigue.coverage', 'fatigue cov.'), ('urgency.missed_critical', 'missed crit.'))


def headline_table(records: List[dict]) -> str:
    """Markdown table: one row per (variant, label fraction), mean ± std over seeds."""
    lines = ['| model | labels | seeds | ' + ' | '.join(h for _, h in HEADLINE) + ' |',
             '|---|---|---|' + '---|' * len(HEADLINE)]
    teachers = {}
    for r in records:   # one row per distinct teacher (runs may share one)
        teachers.setdefault(r.get('teacher_seed', r['seed']), r['teacher'])
    if teachers:
        t = list(teachers.values())
        cells = []
        for key, _ in HEADLINE:
            vals = [x[key] for x in t if key in x and x[key] == x[key]]
            cells.append(f'{np.mean(vals):.3f} ± {np.std(vals):.3f}' if vals and
                         'coverage' not in key and 'set' not in key else 'n/a')
        lines.append(f'| teacher (upper bound, teacher view) | sim 100 % | {len(t)} | '
                     + ' | '.join(cells) + ' |')
    for (variant, frac), group in sorted(_group(records).items(),
                                         key=lambda kv: (kv[0][1], kv[0][0])):
        cells = [_aggregate(group, key) for key, _ in HEADLINE]
        lines.append(f'| {variant} | {100 * frac:g} % | {len(group)} | ' + ' | '.join(cells)
                     + ' |')
    return '\n'.join(lines)


def failure_table(records: List[dict]) -> str:
    """Markdown table of damage macro-F1 per scenario (mean ± std over seeds)."""
    scenarios = list(scenario_masks()) + ['lighting_shift']
    lines = ['| model | labels | ' + ' | '.join(scenarios) + ' | worst single-modality drop |',
             '|---|---|' + '---|' * (len(scenarios) + 1)]
    for (variant, frac), group in sorted(_group(records).items(),
                                         key=lambda kv: (kv[0][1], kv[0][0])):
        cells = [_aggregate(group, 'damage.macro_f1', s) for s in scenarios]
        drops = []
        for r in group:
            base = r['student']['all']['damage.macro_f1']
            drops.append(max(base - r['student'][f'no_{m}']['damage.macro_f1']
                             for m in MODALITIES))
        cells.append(f'{100 * np.mean(drops):.1f} ± {100 * np.std(drops):.1f} pts')
        lines.append(f'| {variant} | {100 * frac:g} % | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


ABLATION_KEYS = (('damage.macro_f1', 'damage F1'), ('fatigue.macro_f1', 'fatigue F1'),
                 ('urgency.mae', 'urgency MAE'), ('urgency.spearman', 'urgency ρ'),
                 ('damage.ece', 'damage ECE'))


def ablation_table(records: List[dict], reference: str = 'distilled') -> str:
    """
    Markdown table of every variant against `reference` at the same label fraction.

    Cells are mean ± std over seeds; Δ damage F1 is paired (same seed, same labelled
    episodes) and given in points. Empty when no variant other than reference/scratch exists.
    """
    groups = _group(records)

    def row(name, frac, group, delta):
        cells = [_aggregate(group, key) for key, _ in ABLATION_KEYS]
        return f'| {name} | {100 * frac:g} % | {len(group)} | ' + ' | '.join(cells) + \
            f' | {delta} |'

    rows, fractions = [], set()
    for (variant, frac), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = {r['seed']: r for r in groups.get((reference, frac), [])}
        if variant in (reference, 'scratch') or not base:
            continue
        deltas = [100 * (r['student']['all']['damage.macro_f1']
                         - base[r['seed']]['student']['all']['damage.macro_f1'])
                  for r in group if r['seed'] in base]
        delta = f'{np.mean(deltas):+.1f} ± {np.std(deltas):.1f}' if deltas else 'n/a'
        rows.append(row(variant, frac, group, delta))
        fractions.add(frac)
    if not rows:
        return ''
    head = ['| variant | labels | seeds | ' + ' | '.join(h for _, h in ABLATION_KEYS)
            + ' | Δ damage F1 vs reference [pts] |', '|---|---|---|' + '---|' * 6]
    refs = [row(f'{reference} (reference)', frac, groups[(reference, frac)], '0')
            for frac in sorted(fractions)]
    return '\n'.join(head + refs + rows)


def draw_confusion(ax, cm: np.ndarray, names, title: str) -> None:
    """Draw a confusion matrix with counts, coloured by row share (true class)."""
    ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap='Blues', vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha='center', va='center', fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=35, ha='right', fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title)


def _plot_confusion(pred_file: Path, out: Path) -> None:
    data = np.load(pred_file)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, head, names in ((axes[0], 'fatigue', FATIGUE_LEVELS),
                            (axes[1], 'damage', DAMAGE_TYPES)):
        t = data['temperatures'][0 if head == 'fatigue' else 1]
        probs = ensemble_probs(data[f'{head}_logits'], float(t))
        draw_confusion(ax, confusion_matrix(data[head], probs.argmax(-1), len(names)), names,
                       f'{head} (held-out field test)')
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def _reliability(probs, labels, bins=10):
    conf = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    acc = np.array([correct[which == b].mean() if (which == b).any() else np.nan
                    for b in range(bins)])
    return (edges[:-1] + edges[1:]) / 2, acc


def _plot_reliability(pred_file: Path, out: Path) -> None:
    data = np.load(pred_file)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, head, idx in ((axes[0], 'fatigue', 0), (axes[1], 'damage', 1)):
        for t, label in ((1.0, 'T = 1'), (float(data['temperatures'][idx]), 'calibrated')):
            probs = ensemble_probs(data[f'{head}_logits'], t)
            centres, acc = _reliability(probs, data[head])
            ax.plot(centres, acc, 'o-', label=f'{label} (T={t:.2f})')
        ax.plot([0, 1], [0, 1], 'k--', lw=0.8)
        ax.set_xlabel('confidence')
        ax.set_ylabel('accuracy')
        ax.set_title(f'{head} reliability')
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def _plot_risk_coverage(pred_file: Path, out: Path) -> None:
    data = np.load(pred_file)
    fig, ax = plt.subplots(figsize=(5, 4))
    for head, idx in (('fatigue', 0), ('damage', 1)):
        probs = ensemble_probs(data[f'{head}_logits'], float(data['temperatures'][idx]))
        coverage, risk, aurc = risk_coverage(probs, data[head])
        ax.plot(coverage, risk, label=f'{head} (AURC {aurc:.3f})')
    ax.set_xlabel('coverage (most confident first)')
    ax.set_ylabel('risk (error rate)')
    ax.legend()
    ax.set_title('risk-coverage, held-out field test')
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def _plot_failures(records: List[dict], out: Path) -> None:
    scenarios = list(scenario_masks()) + ['lighting_shift']
    groups = _group(records)
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(groups), 1)
    for g, ((variant, frac), group) in enumerate(sorted(groups.items(),
                                                        key=lambda kv: (kv[0][1], kv[0][0]))):
        means = [np.mean([r['student'][s]['damage.macro_f1'] for r in group]) for s in scenarios]
        stds = [np.std([r['student'][s]['damage.macro_f1'] for r in group]) for s in scenarios]
        ax.bar(np.arange(len(scenarios)) + g * width, means, width, yerr=stds,
               label=f'{variant} {100 * frac:g} %')
    ax.set_xticks(np.arange(len(scenarios)) + 0.4 - width / 2, scenarios, rotation=25,
                  ha='right', fontsize=8)
    ax.set_ylabel('damage macro-F1')
    ax.set_title('per failure mode (held-out field test)')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def load_records(path: Path) -> List[dict]:
    """Run records: a results.jsonl (one object per line) or one record.json (indented)."""
    text = Path(path).read_text()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return whole if isinstance(whole, list) else [whole]


def write_report(records: List[dict], predictions: Path, out_dir: Path, title: str,
                 command: str) -> Path:
    """Write report.md and its PNGs into out_dir; return the Markdown path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    if predictions and Path(predictions).is_file():
        for name, fn in (('confusion.png', _plot_confusion),
                         ('reliability.png', _plot_reliability),
                         ('risk_coverage.png', _plot_risk_coverage)):
            fn(Path(predictions), out_dir / name)
            figures.append(name)
    _plot_failures(records, out_dir / 'failure_modes.png')
    figures.append('failure_modes.png')
    seeds = sorted({r['seed'] for r in records})
    sets = sorted({r['calibration'].get('conformal_sets', 'marginal') for r in records})
    text = [f'# {title}', '', f'Produced by `{command}`.', '',
            f'Held-out field-domain test episodes; seeds {seeds}; mean ± std over seeds. '
            'Student probabilities are the calibrated ensemble mean (as on the robot); '
            f'coverage is that of split-conformal sets ({" and ".join(sets)}) at the stored '
            'alpha. "ECE floor" is the '
            'ECE a perfectly calibrated model with the same probabilities would show on this '
            'many windows (labels drawn from its own probabilities).', '',
            '## Headline (all field modalities)', '', headline_table(records), '',
            '## Damage macro-F1 per failure mode', '', failure_table(records), '']
    ablations = ablation_table(records)
    if ablations:
        text += ['## Ablations (one switch changed from the distilled student)', '', ablations,
                 '']
    for fig in figures:
        text += [f'![{fig}]({fig})', '']
    path = out_dir / 'report.md'
    path.write_text('\n'.join(text))
    return path
