"""Model references: what a string such as ``qwen-plus@dashscope-sg`` names in a catalog.

Four forms, tried in this order::

    family@site      one deployment                       qwen-plus@dashscope-sg
    provider:model   the deployments serving a wire id    openai:gpt-4o-mini,
                     (provider = operator, protocol or    groq:llama-3.3-70b-versatile
                     site; model may also be a family)
    family           every deployment of the family       llama-3.3-70b (aliases too)
    site             every deployment at one host         groq-us

A name listed in the catalog's ``retired`` table never resolves silently: it raises
:class:`~hybridstack.errors.UnknownModelError` whose hint says when it was retired and
what to use instead. Anything unknown raises the same error with up to three
"did you mean" suggestions (difflib) drawn from families, sites, ids and
``provider:model`` forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from hybridstack._validation import close_matches, did_you_mean
from hybridstack.errors import UnknownModelError

if TYPE_CHECKING:
    from hybridstack.catalog.catalog import Catalog
    from hybridstack.catalog.models import Deployment


class RetiredName(BaseModel):
    """A model name that no longer works, when it stopped, and what replaced it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    retired_on: date
    #: The family to use instead.
    replacement: str = Field(min_length=1)
    source: str = ""
    #: One sentence on how to migrate (shown in the hint).
    note: str = ""

    def hint(self, use: str | None = None) -> str:
        when = self.retired_on.isoformat()
        text = f"{self.name} was retired on {when}; use {use or self.replacement}."
        return f"{text} {self.note}" if self.note else text


def resolve(catalog: Catalog, ref: str) -> list[Deployment]:
    """Every deployment ``ref`` names, in catalog order; UnknownModelError otherwise."""
    text = ref.strip()
    if not text:
        raise UnknownModelError(ref, hint="A reference must not be empty (e.g. 'qwen-plus').")
    if "@" in text:
        return [_resolve_id(catalog, text)]
    if ":" in text:
        return _resolve_provider(catalog, text)
    return _resolve_name(catalog, text)


def resolve_one(catalog: Catalog, ref: str) -> Deployment:
    """Exactly one deployment: ``family@site``, the first ``provider:model`` match, or a
    family/site with a single deployment."""
    found = resolve(catalog, ref)
    if len(found) == 1 or "@" in ref or ":" in ref:
        return found[0]
    ids = ", ".join(d.id for d in found[:6]) + (" …" if len(found) > 6 else "")
    raise UnknownModelError(
        ref,
        hint=f"as one deployment: it names {len(found)}; pick one of {ids}.",
    )


def canonical_family(catalog: Catalog, name: str, *, ref: str | None = None) -> str | None:
    """The family a name or alias means; None when unknown; raises for retired names."""
    lowered = name.strip().lower()
    if lowered in catalog.families:
        return lowered
    retired = catalog._lookups.retired.get(lowered)
    if retired is not None:
        raise UnknownModelError(ref or name, hint=retired.hint())
    return catalog._lookups.aliases.get(lowered)


def suggestions(catalog: Catalog, ref: str, *, prefer: Iterable[str] = ()) -> list[str]:
    """Up to three "did you mean" candidates: ``prefer`` first, then the whole catalog."""
    preferred = close_matches(ref, prefer)
    rest = close_matches(ref, catalog._lookups.all_references)
    return list(dict.fromkeys(preferred + rest))[:3]


# --- the forms ---------------------------------------------------------------------------


def _resolve_id(catalog: Catalog, ref: str) -> Deployment:
    family_part, _, site = ref.strip().partition("@")
    site = site.strip().lower()
    family = canonical_family(catalog, family_part, ref=ref)
    if family is None:
        raise UnknownModelError(ref, suggestions(catalog, ref, prefer=catalog.deployments))
    found = catalog.deployments.get(f"{family}@{site}")
    if found is not None:
        return found
    sites = [d.site for d in catalog.deployments_of(family)]
    hint = (
        f"{family} is deployed at: {', '.join(sites)}."
        if sites
        else f"{family} has no deployments in this catalog."
    )
    ids = [f"{family}@{s}" for s in sites]
    _raise(ref, suggestions(catalog, ref, prefer=ids), hint)


def _resolve_provider(catalog: Catalog, ref: str) -> list[Deployment]:
    provider, _, model = ref.strip().partition(":")
    provider = provider.strip().lower()
    model = model.strip()
    lookups = catalog._lookups
    if provider not in lookups.providers:
        operators = sorted({d.operator.lower() for d in catalog})
        hint = f"Known operators: {', '.join(operators)} (a protocol or site also works)."
        _raise(ref, suggestions(catalog, ref, prefer=lookups.provider_forms), hint)

    def at_provider(d: Deployment) -> bool:
        return provider in (d.operator.lower(), d.protocol, d.site)

    served = [d for d in catalog if at_provider(d)]
    found = [d for d in served if d.model == model]
    if not found:
        found = [d for d in served if d.model.lower() == model.lower()]
    if not found:
        family = canonical_family(catalog, model, ref=ref)
        found = [d for d in served if d.family == family]
    if found:
        return found
    forms = [f"{provider}:{d.model}" for d in served]
    models = sorted({d.model for d in served})
    hint = f"{provider} serves: {', '.join(models)}." if len(models) <= 8 else ""
    _raise(ref, suggestions(catalog, ref, prefer=forms), hint)


def _resolve_name(catalog: Catalog, ref: str) -> list[Deployment]:
    family = canonical_family(catalog, ref)
    if family is not None:
        found = catalog.deployments_of(family)
        if found:
            return found
        _raise(ref, (), f"The family {family} has no deployments in this catalog.")
    site = ref.strip().lower()
    at_site = [d for d in catalog if d.site == site]
    if at_site:
        return at_site
    _raise(ref, suggestions(catalog, ref, prefer=catalog.families), "")


def _raise(ref: str, found: Iterable[str], hint: str) -> NoReturn:
    raise UnknownModelError(ref, list(found), hint)


#: Route-constraint lists that name catalog entries: deployments (ids or family names)
#: or operators. The router compares them exactly.
NAMED_LIST_FIELDS = ("deny_deployments", "allow_deployments", "deny_operators", "allow_operators")


def unnamed_entry(catalog: Catalog, field: str, names: Iterable[str]) -> str | None:
    """Why the first of ``names`` (a list of ``field``) names nothing in ``catalog``, or None.

    A deny entry with a typo, an alias or a retired name would deny nothing, silently
    (the router matches ids, family names and operators exactly), so callers refuse it.
    """
    effect = "deny nothing" if field.startswith("deny") else "allow nothing"
    operators = {d.operator for d in catalog} if field.endswith("operators") else None
    for name in sorted(names):
        if operators is not None:
            if name in operators:
                continue
            what, hint = "an operator", did_you_mean(name, operators)
        else:
            if name in catalog.deployments or name in catalog.families:
                continue
            what = "a deployment id (family@site) or a family name"
            try:
                hint = f"; it is an alias: write the family's name {catalog.family(name).name!r}"
            except UnknownModelError as unknown:
                text = str(unknown).removeprefix(f"unknown model {name!r} ")
                hint = (
                    f"; {text}"
                    if "retired" in text
                    else did_you_mean(name, [*catalog.deployments, *catalog.families])
                )
        return f"{name!r} is not {what} in the catalog{hint} (left as it is, it would {effect})"
    return None
