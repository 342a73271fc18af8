"""The lifecycle shared by nodes that load something heavy or fallible (``rclpy.lifecycle``).

``configure`` loads and checks (:meth:`LoadingNode.load`; a refusal leaves the node alive,
unconfigured, with ERROR on ``/diagnostics``) and creates the node's publishers and
subscriptions (:meth:`LoadingNode.connect`); ``activate`` starts publishing, ``deactivate``
stops, ``cleanup`` and ``shutdown`` free everything. With the ``autostart`` parameter (default
true) the node configures and activates itself at start, so a graph runs without a lifecycle
manager (the pattern of yolo_ros's lifecycle nodes).
"""
from __future__ import annotations

from typing import List, Tuple, Type

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from .diagnostics import ERROR


class LoadingNode(LifecycleNode):
    """Subclasses set ``self.health`` and ``self.params`` in ``__init__`` and implement
    :meth:`load`, :meth:`connect` and :meth:`free`. ``load_cause`` names the problem on
    ``/diagnostics``; ``load_errors`` are the exceptions that mean "refused"."""

    load_cause: str = "load"
    load_errors: Tuple[Type[BaseException], ...] = (ValueError, OSError)

    def _init_lifecycle(self) -> None:
        self.active = False
        self._pubs: List = []
        self._subs: List = []
        self.health.set_value("state", "unconfigured")

    # -- what a node provides ------------------------------------------------------------------
    def load(self) -> None:
        """Load and check what the node needs; raise one of ``load_errors`` to refuse."""
        raise NotImplementedError

    def connect(self) -> Tuple[List, List]:
        """Create and return (lifecycle publishers, subscriptions)."""
        raise NotImplementedError

    def free(self) -> None:
        """Drop what :meth:`load` made."""

    # -- transitions ---------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.load()
        except self.load_errors as exc:
            self.health.problem(self.load_cause, f"configure refused: {exc}", ERROR)
            self.health.hold_forever(self.load_cause)
            return TransitionCallbackReturn.FAILURE
        self.health.clear(self.load_cause)
        self._pubs, self._subs = self.connect()
        self.health.set_value("state", "inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        self.health.set_value("state", "active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.health.set_value("state", "inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.health.set_value("state", "unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.health.set_value("state", "finalized")
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        self.active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_lifecycle_publisher(pub)
        self._subs, self._pubs = [], []
        self.free()

    def autostart(self) -> None:
        """Configure and activate now if the ``autostart`` parameter says so."""
        if self.params["autostart"] and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()
