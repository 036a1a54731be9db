"""Route validation: every route checked against the catalog and the rules before any call.

What :meth:`Router.validate <hybridstack.routing.Router.validate>` runs. A pinned
deployment (``family@site`` or a site name, in the skill table or in ``routes``) that
lies outside a data class it would serve is a :class:`SovereigntyError`; a reference
that names nothing, a data class allowing an unknown jurisdiction code, and a route
with no allowed deployment at all are warnings (the last one a :class:`NoRouteError`
when strict).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hybridstack.errors import (
    ConfigurationError,
    NoRouteError,
    SovereigntyError,
    UnknownModelError,
)
from hybridstack.routing.skills import SkillTable
from hybridstack.routing.sources import CatalogIndex, pinned_route
from hybridstack.routing.sovereignty import DataClassRules
from hybridstack.routing.static import Routes

__all__ = ["validate_routes"]


def validate_routes(
    index: CatalogIndex,
    rules: DataClassRules,
    skill_table: SkillTable,
    routes: Routes,
    *,
    routable: Callable[[str, str], bool],
    exclusions: Callable[[str, str], Mapping[str, str]],
    strict: bool,
) -> list[str]:
    """The warnings for every route of ``skill_table`` and ``routes`` under ``rules``.

    ``routable(skill, data_class)`` says whether any deployment can serve a route, and
    ``exclusions(skill, data_class)`` why none can (for the strict NoRouteError).

    Raises:
        SovereigntyError: a pinned deployment lies outside a data class it would serve.
        NoRouteError: with ``strict``, a route has no allowed deployment.
    """
    warnings: list[str] = []
    catalog = index.catalog
    for name, code in rules.unknown_jurisdictions():
        warnings.append(
            f"data class {name!r} allows {code!r}, which is not a known jurisdiction code"
        )

    def check_refs(label: str, refs: Sequence[str]) -> None:
        for ref in refs:
            try:
                catalog.resolve(ref)
            except UnknownModelError as err:
                warnings.append(f"{label}: {err}")

    for skill in sorted(skill_table.user_skills):
        check_refs(f"skill table {skill!r}", skill_table.ranked(skill))
    for (route_skill, route_class), refs in routes.items():
        check_refs(f"route {route_skill + '/' if route_skill else ''}{route_class}", refs)

    skills = list(skill_table.known_skills(catalog))
    skills += [s for (s, _), _ in routes.items() if s and s not in skills]
    for skill in skills:
        for data_class in rules.names:
            route = pinned_route(routes, skill, data_class)
            if route is not None:
                origin, refs = route
                name, where = origin.removeprefix("route "), origin
            else:
                refs = skill_table.ranked(skill)
                name, where = f"{skill}/{data_class}", f"skill table entry for {skill!r}"
            _check_pins(index, rules, name, skill, data_class, where, refs)
            try:
                usable = routable(skill, data_class)
            except ConfigurationError as err:
                warnings.append(f"route {skill}/{data_class}: {err}")
                continue
            if not usable:
                message = (
                    f"route {skill}/{data_class}: no allowed deployment (data class "
                    f"{data_class!r} may go to: {rules.describe(data_class)})"
                )
                if strict:
                    raise NoRouteError(message, exclusions(skill, data_class))
                warnings.append(message)
    return warnings


def _check_pins(
    index: CatalogIndex,
    rules: DataClassRules,
    route: str,
    skill: str,
    data_class: str,
    where: str,
    refs: Sequence[str],
) -> None:
    allowed = rules.allowed(data_class)
    if allowed is None:
        return
    for ref in refs:
        if index.ref_kind(ref) not in ("deployment", "site"):
            continue  # a family's out-of-bounds deployments are filtered per call
        for dep in index.resolve_quiet(ref) or ():
            if dep.jurisdiction not in allowed:
                raise SovereigntyError(
                    f"route {route}: {where} pins {dep.id} in "
                    f"{dep.jurisdiction}, but data class {data_class!r} may only go to "
                    f"{rules.describe(data_class)}. Name the family instead (its "
                    "deployments are then filtered per data class) or pin it only for "
                    f"classes that allow {dep.jurisdiction}, e.g. "
                    f"routes={{'{skill}/public': [{dep.id!r}]}}",
                    route=route,
                    deployment=dep.id,
                )
