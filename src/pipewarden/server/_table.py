"""The route table: every route declares who may call it, and a route that does not fails the start-up.

A route is declared with `Guard`:

- ``Guard.public()``: no credential (the health check, the login form);
- ``Guard.signed_in()``: any authenticated principal, acting on itself (whoami, logout);
- ``Guard.needs("artifact.read", "artifact:{name}")``: the action, on the resource named by the path's
  parameters, authorized by the workspace's policy before the handler runs.

Deny by default: `check_table` refuses an app with a route that has no guard, so a route cannot be
added and forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute

from pipewarden.errors import ConfigError
from pipewarden.identity._actions import check_action

__all__ = ["Guard", "GuardedRouter", "RouteSpec", "check_table", "guard_of"]

F = TypeVar("F", bound=Callable[..., Any])
_GUARD_ATTR = "__pipewarden_guard__"


@dataclass(frozen=True, slots=True)
class Guard:
    """Who may call a route: `kind` is ``public``, ``signed_in`` or ``action``."""

    kind: str
    action: str | None = None
    resource: str | None = None

    @classmethod
    def public(cls) -> Guard:
        return cls("public")

    @classmethod
    def signed_in(cls) -> Guard:
        return cls("signed_in")

    @classmethod
    def needs(cls, action: str, resource: str) -> Guard:
        """The route runs `action` on `resource`, a template of the path's parameters (``{name}``)."""
        check_action(action)
        if ":" not in resource:
            raise ConfigError(f"{resource!r}: a resource is '<type>:<name>'")
        return cls("action", action, resource)

    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in Formatter().parse(self.resource or "") if f)

    def resource_for(self, params: Mapping[str, str]) -> str:
        """The resource this call acts on, from the path's parameters."""
        if self.resource is None:
            raise ConfigError("this guard names no resource")
        return self.resource.format_map({k: str(v) for k, v in params.items()})


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One row of the table: method, path and guard (what the authorization tests are generated from)."""

    method: str
    path: str
    guard: Guard
    name: str


class GuardedRouter(APIRouter):
    """An `APIRouter` whose route decorators take the route's `guard` (keyword, required)."""

    def guarded(self, method: str, path: str, *, guard: Guard, **kwargs: Any) -> Callable[[F], F]:
        def decorate(endpoint: F) -> F:
            missing = [
                f for f in guard.fields() if "{" + f + "}" not in path and "{" + f + ":path}" not in path
            ]
            if missing:
                raise ConfigError(f"{method} {path}: its guard's resource names {missing}, not in the path")
            from fastapi import Depends

            from pipewarden.server._caller import guard_dependency
            from pipewarden.server._problems import problem_responses

            setattr(endpoint, _GUARD_ATTR, guard)
            dependencies = [Depends(guard_dependency(guard)), *kwargs.pop("dependencies", [])]
            # Every route declares the problem documents it can answer with; a route adds its own.
            responses = {**problem_responses(signed_in=guard.kind != "public"), **kwargs.pop("responses", {})}
            self.add_api_route(
                path, endpoint, methods=[method], dependencies=dependencies, responses=responses, **kwargs
            )
            return endpoint

        return decorate

    def get_(self, path: str, *, guard: Guard, **kwargs: Any) -> Callable[[F], F]:
        return self.guarded("GET", path, guard=guard, **kwargs)

    def post_(self, path: str, *, guard: Guard, **kwargs: Any) -> Callable[[F], F]:
        return self.guarded("POST", path, guard=guard, **kwargs)

    def put_(self, path: str, *, guard: Guard, **kwargs: Any) -> Callable[[F], F]:
        return self.guarded("PUT", path, guard=guard, **kwargs)

    def delete_(self, path: str, *, guard: Guard, **kwargs: Any) -> Callable[[F], F]:
        return self.guarded("DELETE", path, guard=guard, **kwargs)


def guard_of(route: APIRoute) -> Guard | None:
    guard = getattr(route.endpoint, _GUARD_ATTR, None)
    return guard if isinstance(guard, Guard) else None


def _flatten(routes: list[Any]) -> list[Any]:
    """Every route, with included routers opened (FastAPI keeps them as nested entries)."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            flat.extend(_flatten(list(inner.routes)))
        else:
            flat.append(route)
    return flat


def check_table(
    routes: list[Any], *, allowed_unguarded: frozenset[str] = frozenset()
) -> tuple[RouteSpec, ...]:
    """Every route's guard, as the table; `ConfigError` naming each route that has none (any kind of
    route: an API route, a plain route or a mount), except the paths in `allowed_unguarded`."""
    table: list[RouteSpec] = []
    missing: list[str] = []
    for route in _flatten(routes):
        path = getattr(route, "path", repr(route))
        guard = guard_of(route) if isinstance(route, APIRoute) else None
        if guard is None:
            if path not in allowed_unguarded:
                methods = sorted(getattr(route, "methods", None) or ("*",))
                missing.extend(f"{m} {path}" for m in methods)
            continue
        table.extend(RouteSpec(m, route.path, guard, route.name) for m in sorted(route.methods or ()))
    if missing:
        raise ConfigError(
            f"routes without a guard (every route must declare who may call it): {', '.join(missing)}"
        )
    return tuple(table)
