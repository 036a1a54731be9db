"""The static half of a route: the sources' ranked groups through the static filters.

What no request can change, walked once per ``(skill, data class, model, call
constraints)``: each deployment of the groups :func:`~hybridstack.routing.sources.route_groups`
ranks is checked by :func:`~hybridstack.routing.filters.static_reason`, and becomes a
:class:`RouteEntry` or an exclusion with its reason. :func:`build_static_route` makes the
:class:`StaticRoute` the router caches; :func:`any_routable` is the same walk stopping at
the first deployment that passes (route validation needs no more).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hybridstack.catalog.models import Deployment
from hybridstack.routing.filters import (
    RouteEntry,
    StaticExclusions,
    StaticRoute,
    allowed_jurisdictions,
    static_reason,
)
from hybridstack.routing.policies import RouteConstraints
from hybridstack.routing.skills import SkillTable
from hybridstack.routing.sources import CatalogIndex, route_groups
from hybridstack.routing.sovereignty import DataClassRules
from hybridstack.tokens import tokenizer_for

__all__ = ["Routes", "any_routable", "build_static_route"]

#: Pinned routes, keyed by ``(skill or None, data class)``, as the router holds them.
Routes = Mapping[tuple[str | None, str], tuple[str, ...]]


def build_static_route(
    index: CatalogIndex,
    rules: DataClassRules,
    skill_table: SkillTable,
    routes: Routes,
    constraints: Sequence[RouteConstraints | None],
    skill: str | None,
    data_class: str,
    model: str | None,
) -> StaticRoute:
    """The entries (in rank order) and exclusions of one route, before any request.

    ``constraints`` are the router's and the call's (either may be None).

    Raises:
        UnknownDataClassError: the rules do not know ``data_class``.
    """
    allowed = rules.allowed(data_class)  # unknown class -> UnknownDataClassError
    active = [c for c in constraints if c is not None and not c.empty]
    groups, origin, unlisted = route_groups(
        index, skill_table, routes, skill or "general", data_class, model
    )
    catalog = index.catalog
    families = catalog.families
    position = index.position
    reasons: dict[str, str] = {}
    entries: list[RouteEntry] = []
    placed: set[str] = set()
    for group_index, (rank_reason, deployments) in enumerate(groups):
        for dep in deployments:
            dep_id = dep.id
            if dep_id in placed:
                continue
            placed.add(dep_id)
            family = families.get(dep.family)
            if family is None:
                reasons[dep_id] = f"family {dep.family} is not in the catalog"
                continue
            context_window = dep.context_window or family.context_window
            features = dep.features if dep.features is not None else family.features
            why = static_reason(dep, context_window, features, allowed, data_class, active, rules)
            if why is not None:
                reasons[dep_id] = why
                continue
            entry = RouteEntry(dep, group_index, rank_reason, position.get(dep_id, len(position)))
            entry.context_window = context_window
            entry.features = features
            entry.tokenizer = tokenizer_for(family.name, family.vendor)
            entry.leaves_home = rules.leaves_home(data_class, dep.jurisdiction)
            entries.append(entry)
    kept = frozenset(e.id for e in entries)
    return StaticRoute(
        tuple(entries),
        StaticExclusions(catalog.deployments, reasons, kept, unlisted),
        allowed_jurisdictions(rules, data_class, active),
        rules.home(data_class),
        origin,
    )


def any_routable(
    index: CatalogIndex,
    rules: DataClassRules,
    skill_table: SkillTable,
    routes: Routes,
    constraints: Sequence[RouteConstraints | None],
    skill: str,
    data_class: str,
    key_available: Callable[[Deployment], bool] | None,
) -> bool:
    """Whether any deployment passes the static filters (and has a key, when
    ``key_available`` is given): the first one found answers, so validating a big
    catalog builds no full route."""
    allowed = rules.allowed(data_class)
    active = [c for c in constraints if c is not None and not c.empty]
    groups, _, _ = route_groups(index, skill_table, routes, skill, data_class, None)
    families = index.catalog.families
    for _, deployments in groups:
        for dep in deployments:
            family = families.get(dep.family)
            if family is None:
                continue
            window = dep.context_window or family.context_window
            features = dep.features if dep.features is not None else family.features
            why = static_reason(dep, window, features, allowed, data_class, active, rules)
            if why is None and (key_available is None or key_available(dep)):
                return True
    return False
