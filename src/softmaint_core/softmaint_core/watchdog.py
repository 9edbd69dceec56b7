"""
The agent's watchdog deadlines: when predictions count as stale, and how old they are.

The agent node checks them on a timer; offline evaluation at the same tick times
(agent.AgentCore owns both), so a bag replay goes stale exactly where the node would.
"""
from typing import Optional


def stale_due(last_prediction: Optional[float], started: float, timeout: float,
              startup_grace: float = 0.0) -> float:
    """
    Time at which the watchdog calls predictions stale.

    `timeout` after the newest prediction; before the first one, timeout + startup_grace after
    `started`: the first window needs a whole window of data (plus up to one hop and the
    model's start) before a prediction can exist.
    """
    if last_prediction is None:
        return started + timeout + startup_grace
    return last_prediction + timeout


def stale_age(last_prediction: Optional[float], started: float, now: float,
              timeout: float, startup_grace: float = 0.0) -> Optional[float]:
    """
    Watchdog: age [s] of the newest prediction when it is stale (see stale_due), else None.

    Before the first prediction the age counts from `started`. A clock that went backwards
    (a restarted simulation) gives a negative age, which is not stale; agent.AgentCore starts
    a new timeline then, so that the watchdog is not blind until the old stamps come round.
    """
    if now < stale_due(last_prediction, started, timeout, startup_grace):
        return None
    return now - (started if last_prediction is None else last_prediction)
