"""What the app holds for its lifetime: the workspace and the parts built over it, made once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pipewarden.events import Event

if TYPE_CHECKING:
    from pipewarden.events import Events
    from pipewarden.identity import Authenticator, Policy
    from pipewarden.server._settings import ServerSettings
    from pipewarden.store import ArtifactStore
    from pipewarden.workspace import Workspace

__all__ = ["RequestEvents", "ServerState"]


class RequestEvents:
    """Events about requests that reach no handler: refused before anyone was authenticated."""

    def __init__(self, events: Events) -> None:
        self._events = events

    def emit_denied(self, action: str, resource: str, origin: str, reason: str) -> None:
        self._events.emit(
            Event(
                action=action,
                actor="anonymous",
                actor_kind="anonymous",
                resource=resource,
                outcome="denied",
                origin=origin,
                attributes={"reason": reason},
            )
        )


@dataclass
class ServerState:
    """The workspace a server serves, and its authenticator, policy, events and store."""

    workspace: Workspace
    settings: ServerSettings

    @cached_property
    def workspace_events(self) -> Events:
        return self.workspace.events()

    @cached_property
    def events(self) -> RequestEvents:
        return RequestEvents(self.workspace_events)

    @cached_property
    def policy(self) -> Policy:
        from pipewarden.identity import Policy

        return Policy.for_workspace(self.workspace.root)

    @cached_property
    def authenticator(self) -> Authenticator:
        from pipewarden.identity import Authenticator, TokenCache

        seconds = self.settings.token_cache_seconds
        return Authenticator(
            self.workspace.database(),
            events=self.workspace_events,
            keyring=self.workspace.keyring(),
            policy=self.policy,
            token_cache=TokenCache(lifetime=seconds) if seconds > 0 else None,
        )

    @cached_property
    def store(self) -> ArtifactStore:
        return self.workspace.store()
