"""The catalog: families and deployments, loaded, merged, validated and looked up.

``Catalog.default()`` parses the bundled ``data/catalog.toml`` once, on first use.
``with_file`` / ``with_entries`` / ``without`` return *new* catalogs; a catalog never
changes after it is built, so one can be shared by concurrent calls without locks.

Merging rules (the file format itself is described at the top of ``data/catalog.toml``):

* a family, site or deployment with the name of an existing one **replaces** it;
* with ``override = true`` it **patches** the existing one with only the fields given
  (a family's ``skills`` are merged key by key; a deployment's ``price`` is replaced as a
  whole, so a new figure never keeps an old ``as_of``; a site patch also applies to every
  deployment already at that site);
* a new deployment inherits the fields of the site named after its ``@`` (replacing a
  site without ``override`` changes only what deployments loaded after it inherit);
* the merged result is validated as a whole (every deployment's family exists, aliases
  are unique, retired names point at a family) before it is returned: a bad file raises
  one :class:`~hybridstack.errors.CatalogError` and nothing of it is applied.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hybridstack._validation import close_matches, did_you_mean
from hybridstack.catalog import loader, refs
from hybridstack.catalog.models import Deployment, Family, Feature, Price
from hybridstack.catalog.refs import RetiredName
from hybridstack.errors import CatalogError, UnknownModelError


class Catalog:
    """An immutable-by-convention set of families and deployments.

    ``Catalog.default()`` is the bundled catalog; ``catalog.with_file(path)`` and
    ``catalog.with_entries(families=..., deployments=...)`` return *new* catalogs with
    the user's additions and overrides (same name replaces), validated as a whole:
    a bad file raises :class:`~hybridstack.errors.CatalogError` naming the file, the
    entry and the field, and nothing of it is applied.
    """

    families: Mapping[str, Family]
    #: Keyed by ``Deployment.id`` (``family@site``), in file order.
    deployments: Mapping[str, Deployment]
    #: Site templates: host-wide defaults new deployments at that site inherit.
    sites: Mapping[str, Mapping[str, Any]]
    #: Names that no longer work (``deepseek-chat`` …), keyed by name.
    retired: Mapping[str, RetiredName]
    #: Where the entries came from, in load order (files, ``<code>``, the bundle).
    sources: tuple[str, ...]

    def __init__(
        self,
        families: Iterable[Family] = (),
        deployments: Iterable[Deployment] = (),
        *,
        sites: Mapping[str, Mapping[str, Any]] | None = None,
        retired: Iterable[RetiredName] = (),
    ):
        self._set(families={}, deployments={}, sites={}, retired={}, sources=())
        entries = loader.entries_from_code(list(families), list(deployments), "<code>")
        for name, template in (sites or {}).items():
            entries.sites.append(loader.RawEntry("sites", name, dict(template)))
        for item in retired:
            entries.retired.append(loader.RawEntry("retired", item.name, item))
        if entries.families or entries.deployments or entries.sites or entries.retired:
            merged = _merge(self, entries)
            self._set(
                families=merged.families,
                deployments=merged.deployments,
                sites=merged.sites,
                retired=merged.retired,
                sources=merged.sources,
            )

    # --- building -----------------------------------------------------------------------

    @classmethod
    def default(cls) -> Catalog:
        """The bundled catalog (cached; cheap to call)."""
        return _bundled()

    @classmethod
    def from_file(cls, path: str | Path, *, base: Catalog | None = None) -> Catalog:
        """Load TOML/YAML/JSON on top of ``base`` (default: empty)."""
        return (base if base is not None else cls()).with_file(path)

    def with_file(self, path: str | Path) -> Catalog:
        """A new catalog: this one plus the entries of a TOML (.toml), YAML (.yaml/.yml)
        or JSON (.json) file; see the module docstring for the merging rules."""
        return _merge(self, loader.read_file(path))

    def with_entries(
        self,
        *,
        families: Iterable[Family | Mapping[str, Any]] = (),
        deployments: Iterable[Deployment | Mapping[str, Any]] = (),
        source: str = "<code>",
    ) -> Catalog:
        """A new catalog with entries given in code: models, or dicts shaped like file
        tables (a deployment dict names ``family`` and ``site``; ``override=True`` patches)."""
        return _merge(self, loader.entries_from_code(list(families), list(deployments), source))

    def without(self, *refs_: str) -> Catalog:
        """A copy without the deployments/families named."""
        families = dict(self.families)
        deployments = dict(self.deployments)
        for ref in refs_:
            family = None
            if "@" not in ref and ":" not in ref:
                family = refs.canonical_family(self, ref)
            if family is not None:
                families.pop(family, None)
                deployments = {k: d for k, d in deployments.items() if d.family != family}
            else:
                for found in self.resolve(ref):
                    deployments.pop(found.id, None)
        retired = {k: r for k, r in self.retired.items() if r.replacement in families}
        return Catalog._make(families, deployments, self.sites, retired, self.sources)

    # --- lookups ------------------------------------------------------------------------

    def family(self, name: str) -> Family:
        """The family by name or alias; UnknownModelError with a hint otherwise."""
        found = refs.canonical_family(self, name)
        if found is None:
            names = [*self.families, *self._lookups.aliases]
            raise UnknownModelError(name, close_matches(name, names))
        return self.families[found]

    def deployment(self, ref: str) -> Deployment:
        """Exactly one deployment by ``family@site`` or ``provider:model`` (first match)."""
        return refs.resolve_one(self, ref)

    def resolve(self, ref: str) -> list[Deployment]:
        """All deployments a reference names: ``family`` → every deployment of it;
        ``family@site`` → that one; ``operator:model`` / ``protocol:model`` → those that
        serve that provider model id. Unknown → UnknownModelError with "did you mean"."""
        return refs.resolve(self, ref)

    def deployments_of(self, family: str) -> list[Deployment]:
        """Every deployment of a family (name or alias), in catalog order."""
        name = self.family(family).name
        return [d for d in self.deployments.values() if d.family == name]

    def context_window(self, deployment: Deployment) -> int:
        """The deployment's override, else its family's window."""
        if deployment.context_window is not None:
            return deployment.context_window
        return self.family(deployment.family).context_window

    def features(self, deployment: Deployment) -> frozenset[Feature]:
        """The deployment's feature override, else its family's features."""
        if deployment.features is not None:
            return deployment.features
        return self.family(deployment.family).features

    def filter(
        self,
        *,
        skill: str | None = None,
        jurisdiction: str | Iterable[str] | None = None,
        protocol: str | Iterable[str] | None = None,
        max_price: float | None = None,
        features: Iterable[Feature] = (),
        min_context: int | None = None,
        min_strength: float = 0.0,
        include_unavailable: bool = False,
    ) -> list[Deployment]:
        """Deployments matching every condition given, in catalog order.

        ``skill``: the family has that skill with a strength above 0 (and at least
        ``min_strength``). ``jurisdiction`` / ``protocol``: one value or several.
        ``max_price``: blended USD per 1M tokens (see :meth:`blended_price`) at most this.
        ``features``: all of them supported. Disabled and retired deployments are left
        out unless ``include_unavailable``.
        """
        jurisdictions = _as_set(jurisdiction, str.upper)
        protocols = _as_set(protocol, str.lower)
        needed = frozenset(features)
        found = []
        for d in self.deployments.values():
            if not include_unavailable and (not d.enabled or d.retired):
                continue
            if jurisdictions is not None and d.jurisdiction not in jurisdictions:
                continue
            if protocols is not None and d.protocol not in protocols:
                continue
            if max_price is not None and self.blended_price(d) > max_price:
                continue
            if needed and not needed <= self.features(d):
                continue
            if min_context is not None and self.context_window(d) < min_context:
                continue
            if skill is not None:
                strength = self.families[d.family].skills.get(skill, 0.0)
                if strength <= 0.0 or strength < min_strength:
                    continue
            found.append(d)
        return found

    @staticmethod
    def blended_price(deployment: Deployment | Price) -> float:
        """USD per 1M tokens at 3 input tokens to 1 output token (a common yardstick),
        for a short prompt at the dearest hour (a price's base tier, peak windows)."""
        price = deployment.price if isinstance(deployment, Deployment) else deployment
        rates = price.rates()
        return (3 * rates.input_per_mtok + rates.output_per_mtok) / 4

    def skills(self) -> list[str]:
        """Every skill some family has a strength for, sorted."""
        return sorted({s for f in self.families.values() for s in f.skills})

    def jurisdictions(self) -> list[str]:
        """Every jurisdiction some deployment is in, sorted."""
        return sorted({d.jurisdiction for d in self.deployments.values()})

    def to_rows(self, deployments: Iterable[Deployment] | None = None) -> list[dict[str, Any]]:
        """One flat dict per deployment, for a ``models`` table or a DataFrame."""
        rows = []
        for d in self.deployments.values() if deployments is None else deployments:
            family = self.family(d.family)
            rows.append(
                {
                    "id": d.id,
                    "family": d.family,
                    "site": d.site,
                    "vendor": family.vendor,
                    "operator": d.operator,
                    "protocol": d.protocol,
                    "model": d.model,
                    "region": d.region,
                    "jurisdiction": d.jurisdiction,
                    "context_window": self.context_window(d),
                    "max_output_tokens": family.max_output_tokens,
                    "features": sorted(self.features(d)),
                    "skills": dict(family.skills),
                    "input_per_mtok": d.price.input_per_mtok,
                    "output_per_mtok": d.price.output_per_mtok,
                    "cached_input_per_mtok": d.price.cached_input_per_mtok,
                    "blended_per_mtok": round(self.blended_price(d), 6),
                    "price_tiers": [t.model_dump() for t in d.price.tiers],
                    "price_windows": [
                        w.model_dump(mode="json", exclude_defaults=True) for w in d.price.windows
                    ],
                    "price_as_of": d.price.as_of.isoformat(),
                    "price_source": d.price.source,
                    "api_key_env": d.api_key_env,
                    "quota_scope": d.quota_scope,
                    "enabled": d.enabled,
                    "retired": d.retired,
                }
            )
        return rows

    # --- container protocol ----------------------------------------------------------------

    def __iter__(self) -> Iterator[Deployment]:
        return iter(self.deployments.values())

    def __len__(self) -> int:
        return len(self.deployments)

    def __contains__(self, ref: object) -> bool:
        """``"family@site"`` or a family name/alias is in the catalog."""
        if not isinstance(ref, str):
            return False
        key = ref.strip().lower()
        return key in self.deployments or key in self.families or key in self._lookups.aliases

    def __repr__(self) -> str:
        return f"<Catalog {len(self.families)} families, {len(self.deployments)} deployments>"

    # --- internals ------------------------------------------------------------------------

    @classmethod
    def _make(
        cls,
        families: Mapping[str, Family],
        deployments: Mapping[str, Deployment],
        sites: Mapping[str, Mapping[str, Any]],
        retired: Mapping[str, RetiredName],
        sources: tuple[str, ...],
    ) -> Catalog:
        catalog = cls.__new__(cls)
        catalog._set(
            families=families,
            deployments=deployments,
            sites=sites,
            retired=retired,
            sources=sources,
        )
        return catalog

    def _set(
        self,
        *,
        families: Mapping[str, Family],
        deployments: Mapping[str, Deployment],
        sites: Mapping[str, Mapping[str, Any]],
        retired: Mapping[str, RetiredName],
        sources: Iterable[str],
    ) -> None:
        self.families = MappingProxyType(dict(families))
        self.deployments = MappingProxyType(dict(deployments))
        self.sites = MappingProxyType({k: MappingProxyType(dict(v)) for k, v in sites.items()})
        self.retired = MappingProxyType(dict(retired))
        self.sources = tuple(sources)
        self.__dict__.pop("_lookups", None)

    @functools.cached_property
    def _lookups(self) -> _Lookups:
        return _Lookups.build(self)


@dataclass(frozen=True)
class _Lookups:
    """Indexes for reference resolution, built once per catalog on first lookup."""

    #: alias (lower case) -> family; retired names are not here.
    aliases: Mapping[str, str]
    #: retired name (lower case) -> entry.
    retired: Mapping[str, RetiredName]
    #: operators, protocols and sites: what may stand before ``:`` in ``provider:model``.
    providers: frozenset[str]
    provider_forms: tuple[str, ...]
    #: Everything a suggestion may be drawn from.
    all_references: tuple[str, ...]

    @classmethod
    def build(cls, catalog: Catalog) -> _Lookups:
        retired = {name.lower(): entry for name, entry in catalog.retired.items()}
        aliases = {
            alias.lower(): family.name
            for family in catalog.families.values()
            for alias in family.aliases
            if alias.lower() not in retired
        }
        deployments = list(catalog.deployments.values())
        providers = frozenset(
            p for d in deployments for p in (d.operator.lower(), d.protocol, d.site)
        )
        forms = tuple(dict.fromkeys(f"{d.operator.lower()}:{d.model}" for d in deployments))
        sites = tuple(dict.fromkeys(d.site for d in deployments))
        everything = (*catalog.families, *aliases, *sites, *catalog.deployments, *forms)
        return cls(aliases, retired, providers, forms, tuple(dict.fromkeys(everything)))


# --- merging ------------------------------------------------------------------------------


@functools.cache
def _bundled() -> Catalog:
    return _merge(Catalog(), loader.read_bundled())


def _merge(base: Catalog, entries: loader.Entries) -> Catalog:
    """``base`` plus ``entries``, validated as a whole; ``base`` itself is never changed."""
    source = entries.source
    families = dict(base.families)
    deployments = dict(base.deployments)
    sites = {name: dict(template) for name, template in base.sites.items()}
    retired = dict(base.retired)

    site_patches: dict[str, dict[str, Any]] = {}
    for entry in _once(entries.sites, source):
        template = loader.check_site(entry.key, _fields(entry), source=source)
        if entry.override:
            known = set(sites) | {d.site for d in deployments.values()}
            _require(entry.key in known, entry, known, source, "site")
            sites[entry.key] = {**sites.get(entry.key, {}), **template}
            site_patches[entry.key] = template
        else:
            sites[entry.key] = template

    for entry in _once(entries.families, source):
        if isinstance(entry.data, Family):
            families[entry.key] = entry.data
            continue
        fields = _fields(entry)
        if entry.override:
            _require(entry.key in families, entry, families, source, "family")
            data = families[entry.key].model_dump()
            for key, value in fields.items():
                both_tables = isinstance(value, Mapping) and isinstance(data.get(key), Mapping)
                data[key] = {**data[key], **value} if key == "skills" and both_tables else value
        else:
            data = {**fields, "name": entry.key}
        families[entry.key] = loader.build_family(data, source=source, entry=entry.label)

    for dep_id, existing in deployments.items():
        if existing.site in site_patches:
            data = {**_dump(existing), **site_patches[existing.site]}
            deployments[dep_id] = loader.build_deployment(
                data, source=source, entry=f"sites.{existing.site}"
            )

    for entry in _once(entries.deployments, source):
        if isinstance(entry.data, Deployment):
            loader.check_deployment(entry.data, source=source, entry=entry.label)
            deployments[entry.key] = entry.data
            continue
        family, _, site = entry.key.partition("@")
        fields = _fields(entry)
        if entry.override:
            _require(entry.key in deployments, entry, deployments, source, "deployment")
            data = {**_dump(deployments[entry.key]), **fields}
            inherited: list[str] = []
        else:
            template = sites.get(site, {})
            inherited = [key for key in template if key not in fields]
            data = {**template, **fields, "family": family, "site": site}
        deployments[entry.key] = loader.build_deployment(
            data,
            source=source,
            entry=entry.label,
            inherited=inherited,
            site_entry=f"sites.{site}",
        )

    for entry in _once(entries.retired, source):
        if isinstance(entry.data, RetiredName):
            retired[entry.key] = entry.data
            continue
        fields = _fields(entry)
        if entry.override:
            _require(entry.key in retired, entry, retired, source, "retired name")
            data = {**retired[entry.key].model_dump(), **fields}
        else:
            data = {**fields, "name": entry.key}
        retired[entry.key] = loader.build_retired(data, source=source, entry=entry.label)

    _check_whole(families, deployments, retired, source)
    return Catalog._make(families, deployments, sites, retired, (*base.sources, source))


def _check_whole(
    families: Mapping[str, Family],
    deployments: Mapping[str, Deployment],
    retired: Mapping[str, RetiredName],
    source: str,
) -> None:
    """Rules that span entries: every reference between them must land."""
    owner: dict[str, str] = {}
    for family in families.values():
        for alias in family.aliases:
            key = alias.lower()
            if key in families:
                raise CatalogError(
                    f"alias {alias!r} is already the name of a family",
                    source=source,
                    entry=f"families.{family.name}",
                    field="aliases",
                )
            if owner.setdefault(key, family.name) != family.name:
                raise CatalogError(
                    f"alias {alias!r} is also an alias of {owner[key]!r}; "
                    "an alias names one family",
                    source=source,
                    entry=f"families.{family.name}",
                    field="aliases",
                )
    for deployment in deployments.values():
        if deployment.family in families:
            continue
        if deployment.family in owner:
            hint = (
                f"; {deployment.family!r} is an alias of {owner[deployment.family]!r}: "
                f"name the family itself ({owner[deployment.family]}@{deployment.site})"
            )
        else:
            hint = did_you_mean(deployment.family, families) or (
                f"; define [families.{deployment.family}] first"
            )
        raise CatalogError(
            f"unknown family {deployment.family!r}{hint}",
            source=source,
            entry=f"deployments.{deployment.id}",
            field="family",
        )
    for name, entry in retired.items():
        if name.lower() in families:
            raise CatalogError(
                f"{name!r} is the name of a live family; a retired name cannot be one",
                source=source,
                entry=f"retired.{name}",
                field="name",
            )
        if entry.replacement not in families:
            raise CatalogError(
                f"unknown family {entry.replacement!r}{did_you_mean(entry.replacement, families)}",
                source=source,
                entry=f"retired.{name}",
                field="replacement",
            )


def _once(items: Iterable[loader.RawEntry], source: str) -> Iterator[loader.RawEntry]:
    """Each entry of one load, refusing the same name twice."""
    seen: set[str] = set()
    for entry in items:
        if entry.key in seen:
            raise CatalogError(
                f"{entry.key!r} is given twice in one load; give each entry once",
                source=source,
                entry=entry.label,
            )
        seen.add(entry.key)
        yield entry


def _require(
    exists: bool, entry: loader.RawEntry, known: Iterable[str], source: str, what: str
) -> None:
    if not exists:
        raise CatalogError(
            f"override = true patches an existing {what}, but there is no {entry.key!r}"
            f"{did_you_mean(entry.key, known)} (drop override to add a new one)",
            source=source,
            entry=entry.label,
            field="override",
        )


def _fields(entry: loader.RawEntry) -> dict[str, Any]:
    """The table's fields (entries holding a ready model are handled before this)."""
    return dict(entry.data)


def _dump(deployment: Deployment) -> dict[str, Any]:
    """A deployment's fields for re-validation after a patch (its key kept, too)."""
    data = deployment.model_dump()
    if deployment.api_key is not None:
        data["api_key"] = deployment.api_key
    return data


def _as_set(value: str | Iterable[str] | None, norm: Any) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {norm(value)}
    return {norm(v) for v in value}
