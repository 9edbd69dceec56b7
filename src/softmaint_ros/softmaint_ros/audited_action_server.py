"""An action server that tells the node about the requests rclpy refuses without asking it."""
from typing import Callable

from rclpy.action import ActionServer
from softmaint_core.inputs import ActionRequestAudit


class AuditedActionServer(ActionServer):
    """
    rclpy's ActionServer, calling `on_refused(reason)` for each request it refuses by itself.

    Duplicate goal ids, cancels of unknown, finished or canceling goals, cancels of every goal
    when none runs, results of unknown goals and goals whose result nobody fetched before they
    expired never reach the node's callbacks (softmaint_core.inputs.ActionRequestAudit). The
    requests are classified in execute() (the Waitable API) before rclpy answers them, from the
    goal handles the server accepted; nothing of rclpy's internals is read.
    """

    def __init__(self, node, action_type, action_name: str, execute_callback: Callable,
                 on_refused: Callable[[str], None], **kwargs):
        self._audit = ActionRequestAudit()
        self._on_refused = on_refused
        super().__init__(node, action_type, action_name, execute_callback,
                         handle_accepted_callback=self._on_accepted, **kwargs)

    def _on_accepted(self, goal_handle) -> None:
        self._audit.accepted(bytes(goal_handle.goal_id.uuid), lambda: goal_handle.status)
        goal_handle.execute()

    async def execute(self, taken_data) -> None:
        """Report the requests in `taken_data` that rclpy will refuse, then serve them all."""
        refusals = []        # each request is (header, message), as take_data() returns it
        if 'goal' in taken_data:
            request = taken_data['goal'][1]
            refusals.append(self._audit.goal_refusal(bytes(request.goal_id.uuid)))
        if 'cancel' in taken_data:
            request = taken_data['cancel'][1]
            refusals.append(self._audit.cancel_refusal(bytes(request.goal_info.goal_id.uuid)))
        if 'result' in taken_data:
            request = taken_data['result'][1]
            refusals.append(self._audit.result_refusal(bytes(request.goal_id.uuid)))
        refusals += [self._audit.expired(bytes(goal.goal_id.uuid))
                     for goal in taken_data.get('expired') or ()]
        for reason in filter(None, refusals):
            self._on_refused(reason)
        await super().execute(taken_data)
