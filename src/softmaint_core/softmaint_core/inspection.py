"""
Inspection: one considered decision over several windows (the Inspect action).

No hysteresis and no request to acknowledge: the windows are aggregated into one summary
(means; majority conformal sets and availability) and assessed once.
"""
from dataclasses import replace
from typing import Sequence

from .decisions import (assess, Decision, decision_title, evidence_of, PredictionSummary,
                        with_shutdown_evidence)
from .settings import Action, ActionSettings, DEFAULT_ACTIONS, LEVELS, Thresholds


def aggregate(summaries: Sequence[PredictionSummary]) -> PredictionSummary:
    """
    One summary for several windows (an inspection).

    Probabilities, urgency and uncertainty are means; a class is in a conformal set, and a
    modality counts as available, when it was so in at least half of the windows (the most
    likely class always is). Damage is voted on as the policy reads it, some damage or none:
    when at least half of the windows hold some damage possible but no one type has a majority
    (windows that each add their own most probable damage under the miss-rate control), the
    most probable damage type of the means joins the set, so that the vote does not leave a
    damaged arm at `{none}` that most of its windows flagged.
    """
    if not summaries:
        raise ValueError('aggregate needs at least one window')
    n = len(summaries)
    first = summaries[0]

    def mean(values):
        return sum(values) / n

    def majority_set(head):
        probs = tuple(mean(p) for p in zip(*(getattr(s, f'{head}_probs') for s in summaries)))
        votes = [sum(i in getattr(s, f'{head}_set') for s in summaries)
                 for i in range(len(probs))]
        best = max(range(len(probs)), key=probs.__getitem__)
        return probs, tuple(i for i, v in enumerate(votes) if 2 * v >= n or i == best)

    fatigue_probs, fatigue_set = majority_set('fatigue')
    damage_probs, damage_set = majority_set('damage')
    none = first.damage_classes.index('none')
    some_damage = sum(any(i != none for i in s.damage_set) for s in summaries)
    if damage_set == (none,) and 2 * some_damage >= n:
        likely = max((i for i in range(len(damage_probs)) if i != none),
                     key=damage_probs.__getitem__)
        damage_set = tuple(sorted((none, likely)))
    names = []
    for s in summaries:
        names.extend(name for name in s.available if name not in names)
    available = tuple(name for name in names
                      if 2 * sum(name in s.available for s in summaries) >= n)
    return replace(first, urgency=mean([s.urgency for s in summaries]),
                   uncertainty=mean([s.uncertainty for s in summaries]),
                   urgency_std=mean([s.urgency_std for s in summaries]),
                   fatigue_probs=fatigue_probs, damage_probs=damage_probs,
                   fatigue_set=fatigue_set, damage_set=damage_set, available=available)


def considered_decision(summaries: Sequence[PredictionSummary], thresholds: Thresholds,
                        actions: ActionSettings = DEFAULT_ACTIONS) -> Decision:
    """Decision over several windows at once (no hysteresis, no request to acknowledge)."""
    summary = aggregate(summaries)
    summary.validate()
    assessment = assess(summary, thresholds, actions)
    level = assessment.target
    evidence = {**evidence_of(summary), 'windows': str(len(summaries)),
                'assistance_reasons': ','.join(assessment.reasons) or 'none'}
    if level == Action.IMMEDIATE_SHUTDOWN or not assessment.reasons:
        return Decision(level, LEVELS.index(level), f'{decision_title(level, actions)}: '
                        f'{assessment.driver} over {len(summaries)} windows.',
                        with_shutdown_evidence(evidence, level, actions),
                        thresholds.workload(level), basis='inspection')
    critical = 'critical_unconfirmed' in assessment.reasons
    return Decision(Action.REQUEST_ASSISTANCE, 3 if critical else 2,
                    f'Request assistance: {"; ".join(assessment.reasons.values())} over '
                    f'{len(summaries)} windows; level {level.label}.', evidence,
                    min(thresholds.workload(level), thresholds.assistance_workload),
                    basis='inspection')
