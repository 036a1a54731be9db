"""Sources: where a route's candidates come from, as ranked groups of deployments.

``model=`` names them directly; else a pinned route (``routes={"personal": [...]}``),
else the skill table and its catalog-strength fall-backs. Each reference contributes
one group (a family, a pinned deployment, a site, a ``provider:model``), in rank.

References the catalog lacks (the default skill table names families a user catalog
may not have) are skipped here without building a "did you mean" hint: with thousands
of deployments that hint costs milliseconds per reference, and nobody reads it (the
router's ``validate()`` warns about the user's own unknown references, hint included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment
from hybridstack.catalog.refs import canonical_family
from hybridstack.errors import ConfigurationError, UnknownModelError
from hybridstack.routing.skills import SkillTable
from hybridstack.routing.sovereignty import DataClassRules

__all__ = ["CatalogIndex", "Groups", "parse_route_key", "ref_kind", "route_groups"]

#: ``[(rank reason, deployments)]``, the origin ("skill code", "route personal" …), and
#: why a deployment that is in no group is out.
Groups = tuple[list[tuple[str, list[Deployment]]], str, Callable[[Deployment], str]]


class CatalogIndex:
    """Lookups the router needs per build, made once per catalog."""

    __slots__ = ("_by_site", "by_family", "catalog", "position")

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.position = {dep_id: i for i, dep_id in enumerate(catalog.deployments)}
        by_family: dict[str, list[Deployment]] = {}
        for dep in catalog.deployments.values():
            by_family.setdefault(dep.family, []).append(dep)
        self.by_family = by_family
        self._by_site: dict[str, list[Deployment]] | None = None

    def resolve_quiet(self, ref: str) -> list[Deployment] | None:
        """What ``catalog.resolve(ref)`` returns, or None where it would raise
        UnknownModelError (without building its "did you mean" hint)."""
        catalog = self.catalog
        text = ref.strip()
        if not text:
            return None
        try:
            if "@" in text:
                family_part, _, site = text.partition("@")
                family = canonical_family(catalog, family_part, ref=text)
                if family is None:
                    return None
                dep = catalog.deployments.get(f"{family}@{site.strip().lower()}")
                return None if dep is None else [dep]
            if ":" in text:
                provider = text.partition(":")[0].strip().lower()
                if provider not in catalog._lookups.providers:
                    return None
                return catalog.resolve(text)  # a known provider: rare, and exact
            family = canonical_family(catalog, text)
            if family is not None:
                return list(self.by_family.get(family, ())) or None
            by_site = self._by_site
            if by_site is None:
                by_site = self._by_site = {}
                for dep in catalog.deployments.values():
                    by_site.setdefault(dep.site, []).append(dep)
            return list(by_site.get(text.lower(), ())) or None
        except UnknownModelError:  # a retired name (its hint is cheap) or no match
            return None

    def ref_kind(self, ref: str) -> str:
        return ref_kind(ref, self.catalog)


def ref_kind(ref: str, catalog: Catalog) -> str:
    """``deployment`` (family@site), ``model`` (provider:model), ``family`` or ``site``."""
    if "@" in ref:
        return "deployment"
    if ":" in ref:
        return "model"
    try:
        return "family" if canonical_family(catalog, ref) is not None else "site"
    except UnknownModelError:  # a retired name
        return "site"


def parse_route_key(key: str | tuple[str, str], rules: DataClassRules) -> tuple[str | None, str]:
    """A ``routes=`` key (``"personal"``, ``"code/personal"``, ``("code", "personal")``)."""
    if isinstance(key, tuple):
        if len(key) != 2:
            raise ConfigurationError(f"route key {key!r} must be (skill, data_class)")
        skill, data_class = key
    elif "/" in key:
        skill, _, data_class = key.partition("/")
    else:
        skill, data_class = None, key
    if data_class not in rules:
        raise ConfigurationError(
            f"route {key!r}: unknown data class {data_class!r}; known: {', '.join(rules.names)}. "
            "Route keys are a data class ('personal') or 'skill/data_class' ('code/personal'); "
            "use skill_table= for routes by skill alone"
        )
    return (skill.strip() if skill else None), data_class


def route_groups(
    index: CatalogIndex,
    table: SkillTable,
    routes: Mapping[tuple[str | None, str], tuple[str, ...]],
    skill: str,
    data_class: str,
    model: str | None,
) -> Groups:
    """Ranked groups for one (skill, data class, model)."""
    catalog = index.catalog
    if model is not None:
        deployments = catalog.resolve(model)  # UnknownModelError with "did you mean"
        return (
            [(f"model {model!r} requested", list(deployments))],
            f"model {model}",
            lambda _dep: f"not named by model {model!r}",
        )
    route = pinned_route(routes, skill, data_class)
    fallbacks: Sequence[tuple[str, float]] = []
    unlisted: Callable[[Deployment], str]
    if route is not None:
        origin, refs = route
        unlisted = lambda _dep: f"not in {origin}"  # noqa: E731
    else:
        if skill not in table and not any(skill in fam.skills for fam in catalog.families.values()):
            known = ", ".join(table.known_skills(catalog))
            raise ConfigurationError(
                f"unknown skill {skill!r}; known skills: {known}. Add it with "
                f"skill_table={{{skill!r}: ['family', ...]}} or a catalog skill strength"
            )
        origin = f"skill {skill}"
        refs = table.ranked(skill)
        fallbacks = table.fallbacks(skill, catalog)
        unlisted = lambda dep: f"family {dep.family} not ranked for skill {skill!r}"  # noqa: E731
    groups: list[tuple[str, list[Deployment]]] = []
    for ref in refs:
        found = index.resolve_quiet(ref)
        if not found:
            continue  # defaults name families a catalog may not have; validate() warns
        rank = len(groups) + 1
        kind = index.ref_kind(ref)
        if kind == "deployment":
            what = f"pinned deployment {ref}"
        elif kind == "model":
            what = f"model {ref}"
        elif kind == "site":
            what = f"pinned site {ref}"
        else:
            what = f"family {found[0].family}"
        groups.append((f"{origin}: {what} ranked {rank}", found))
    for family, strength in fallbacks:
        deployments = index.by_family.get(family, [])
        if deployments:
            rank = len(groups) + 1
            groups.append(
                (
                    f"{origin}: family {family} ranked {rank} "
                    f"(fallback by catalog strength {strength:.2f})",
                    list(deployments),
                )
            )
    return groups, origin, unlisted


def pinned_route(
    routes: Mapping[tuple[str | None, str], tuple[str, ...]], skill: str, data_class: str
) -> tuple[str, tuple[str, ...]] | None:
    """The pinned route for (skill, data class), with its origin text; None if none."""
    refs = routes.get((skill, data_class))
    if refs is not None:
        return f"route {skill}/{data_class}", refs
    refs = routes.get((None, data_class))
    if refs is not None:
        return f"route {data_class}", refs
    return None
