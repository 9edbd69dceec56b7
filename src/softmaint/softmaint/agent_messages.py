"""Messages of the maintenance agent: decisions, assistance requests, log entries."""
from builtin_interfaces.msg import Time as TimeMsg
from softmaint_core.agent import OpenRequest
from softmaint_core.decisions import Decision
from softmaint_core.maintenance_log import Entry
from softmaint_interfaces.msg import AssistanceRequest, MaintenanceDecision, MaintenanceLogEntry
from softmaint_ros.diagnostics import key_values
from softmaint_ros.stamps import time_msg


def decision_msg(decision: Decision, stamp: TimeMsg, prediction_stamp: TimeMsg,
                 model_id: str) -> MaintenanceDecision:
    """Build the MaintenanceDecision message of a policy decision."""
    msg = MaintenanceDecision(action=int(decision.action), action_name=decision.action.label,
                              priority=decision.priority, reason=decision.reason,
                              workload_limit=decision.workload_limit,
                              request_id=decision.request_id, model_id=model_id,
                              prediction_stamp=prediction_stamp)
    msg.header.stamp = stamp
    msg.evidence = key_values({**decision.evidence, 'basis': decision.basis})
    return msg


def request_msg(request: OpenRequest, model_id: str) -> AssistanceRequest:
    """Build the AssistanceRequest message of an open request."""
    return AssistanceRequest(
        request_id=request.request_id, opened=time_msg(request.opened),
        updated=time_msg(request.updated), priority=request.priority,
        reasons=list(request.reasons), reason=request.reason,
        candidate_actions=list(request.candidates), level=request.level,
        evidence=key_values(request.evidence), model_id=model_id)


def log_entry_msg(entry: Entry) -> MaintenanceLogEntry:
    """Build the MaintenanceLogEntry message of a maintenance log entry."""
    return MaintenanceLogEntry(stamp=time_msg(entry.stamp), kind=entry.kind,
                               action=entry.action, summary=entry.summary,
                               request_id=entry.request_id or '',
                               model_id=entry.model_id or '',
                               evidence=key_values(entry.evidence))
