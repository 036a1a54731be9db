"""Sovereignty: which jurisdictions each data class may go to, and redaction of personal data.

Data classes (fail closed: an unknown class is an error, never "public")::

    public     -> any jurisdiction
    internal   -> any jurisdiction (override it, e.g. {"internal": ["EU", "US", "LOCAL"]})
    personal   -> EU, LOCAL
    regulated  -> LOCAL

``DataClassRules({"personal": ["EU", "UK", "LOCAL"], "health": ["LOCAL"]})`` replaces or
adds classes on top of those defaults (``defaults=False`` starts empty). ``"*"`` means any
jurisdiction; ``None`` is refused so that a typo cannot silently open a class to the world.

Home jurisdiction (for redaction): where a data class's data lives. With redaction on,
a request sent to a deployment outside it has e-mails, phone numbers, card numbers and
ID numbers replaced by placeholders first. The default home is ``LOCAL`` for every class
except ``public`` (whose home is None: public data is never redacted), so turning
redaction on without saying more redacts everything that leaves the machine. Set
``home="EU"`` (global) or ``home={"personal": "EU"}`` to send unredacted within the EU.
A ``LOCAL`` deployment never counts as leaving home.

Strictness: class A is at least as strict as B when A's jurisdictions fit inside B's.
:func:`strictest_data_class` picks, from several classes, the one at least as strict as
every other (data that mixes them must obey it), or None when no class is (their
jurisdictions overlap only partly, or not at all).

Redaction itself (:func:`redact`, :func:`redact_text`: which kinds of personal data, and
how they are found) lives in :mod:`hybridstack.routing.redaction`; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hybridstack.catalog.models import KNOWN_JURISDICTIONS
from hybridstack.errors import ConfigurationError, UnknownDataClassError
from hybridstack.routing.redaction import REDACTION_KINDS, redact, redact_text

__all__ = [
    "DEFAULT_DATA_CLASSES",
    "REDACTION_KINDS",
    "DataClassRules",
    "UnknownDataClassError",
    "redact",
    "redact_text",
    "strictest_data_class",
]

ANY = "*"

#: The built-in data classes: name -> allowed jurisdictions ("*" = any).
DEFAULT_DATA_CLASSES: Mapping[str, tuple[str, ...]] = {
    "public": (ANY,),
    "internal": (ANY,),
    "personal": ("EU", "LOCAL"),
    "regulated": ("LOCAL",),
}

DEFAULT_HOME = "LOCAL"


def _jurisdictions(name: str, value: Any) -> frozenset[str] | None:
    """Normalise one class's rule: None = any, else a frozenset of upper-case codes."""
    if value is None:
        raise ConfigurationError(
            f"data class {name!r}: None is not a rule; use '*' for any jurisdiction or a "
            "list such as ['EU', 'LOCAL']"
        )
    items = [value] if isinstance(value, str) else list(value)
    codes: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(
                f"data class {name!r}: jurisdictions must be codes like 'EU', got {item!r}"
            )
        code = item.strip().upper()
        if code in (ANY, "ANY"):
            return None
        codes.add(code)
    return frozenset(codes)


def _within(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Whether jurisdictions ``a`` fit inside ``b`` (None = any jurisdiction)."""
    return b is None or (a is not None and a <= b)


def strictest_data_class(
    classes: Iterable[str], allowed: Callable[[str], frozenset[str] | None]
) -> str | None:
    """The class whose allowed jurisdictions fit inside every other's; None if none does.

    ``allowed`` maps a class to its jurisdictions (None = any), e.g.
    :meth:`DataClassRules.allowed`; an unknown class raises there. One class (or the
    same class repeated) is its own strictest; no classes give None.
    """
    unique = list(dict.fromkeys(classes))
    if len(unique) <= 1:
        return unique[0] if unique else None
    sets = {name: allowed(name) for name in unique}
    for name in unique:
        if all(_within(sets[name], sets[other]) for other in unique):
            return name
    return None


class DataClassRules:
    """Data class -> allowed jurisdictions, and each class's home for redaction.

    Args:
        rules: ``{"personal": ["EU", "LOCAL"], "internal": "*"}``; merged over the defaults.
        defaults: start from :data:`DEFAULT_DATA_CLASSES` (True) or from nothing.
        home: home jurisdiction for redaction: one code for every class, or a mapping
            ``{class: code or None}`` (None: never redact that class). See the module doc.
    """

    __slots__ = ("_allowed", "_home")

    def __init__(
        self,
        rules: Mapping[str, str | Iterable[str]] | None = None,
        *,
        defaults: bool = True,
        home: str | Mapping[str, str | None] | None = None,
    ) -> None:
        merged: dict[str, Any] = dict(DEFAULT_DATA_CLASSES) if defaults else {}
        for name, value in (rules or {}).items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigurationError(
                    f"data class names must be non-empty strings, got {name!r}"
                )
            merged[name.strip()] = value
        self._allowed: dict[str, frozenset[str] | None] = {
            name: _jurisdictions(name, value) for name, value in merged.items()
        }
        homes: dict[str, str | None] = {
            name: (None if name == "public" else DEFAULT_HOME) for name in self._allowed
        }
        if isinstance(home, str):
            homes = {name: (None if name == "public" else home.upper()) for name in self._allowed}
        elif home is not None:
            for name, code in home.items():
                if name not in self._allowed:
                    raise UnknownDataClassError(name, tuple(self._allowed))
                homes[name] = None if code is None else code.strip().upper()
        self._home = homes

    @classmethod
    def coerce(cls, value: DataClassRules | Mapping[str, Any] | None) -> DataClassRules:
        if value is None:
            return cls()
        if isinstance(value, DataClassRules):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        raise ConfigurationError(
            f"data_classes must be a DataClassRules or a dict, got {type(value).__name__}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._allowed)

    def __contains__(self, name: object) -> bool:
        return name in self._allowed

    def check(self, name: str) -> None:
        """Raise :class:`UnknownDataClassError` for a name the rules do not know."""
        if name not in self._allowed:
            raise UnknownDataClassError(name, tuple(self._allowed))

    def allowed(self, name: str) -> frozenset[str] | None:
        """Allowed jurisdictions of a class (None = any). Unknown class -> error."""
        try:
            return self._allowed[name]
        except KeyError:
            raise UnknownDataClassError(name, tuple(self._allowed)) from None

    def allows(self, name: str, jurisdiction: str) -> bool:
        allowed = self.allowed(name)
        return allowed is None or jurisdiction.upper() in allowed

    def strictest(self, classes: Iterable[str]) -> str | None:
        """The strictest of ``classes`` under these rules (see :func:`strictest_data_class`)."""
        return strictest_data_class(classes, self.allowed)

    def describe(self, name: str) -> str:
        allowed = self.allowed(name)
        return "any" if allowed is None else (", ".join(sorted(allowed)) or "nowhere")

    def home(self, name: str) -> str | None:
        self.check(name)
        return self._home.get(name)

    def leaves_home(self, name: str, jurisdiction: str) -> bool:
        """True when sending data of class ``name`` to ``jurisdiction`` leaves its home."""
        home = self.home(name)
        if home is None:
            return False
        jurisdiction = jurisdiction.upper()
        return jurisdiction != home and jurisdiction != "LOCAL"

    def unknown_jurisdictions(self) -> list[tuple[str, str]]:
        """(class, code) pairs naming a jurisdiction outside the known list (likely typos)."""
        return [
            (name, code)
            for name, allowed in self._allowed.items()
            for code in sorted(allowed or ())
            if code not in KNOWN_JURISDICTIONS
        ]

    def to_dict(self) -> dict[str, list[str]]:
        return {
            name: ([ANY] if allowed is None else sorted(allowed))
            for name, allowed in self._allowed.items()
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{n}: {self.describe(n)}" for n in self._allowed)
        return f"DataClassRules({body})"
