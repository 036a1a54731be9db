"""hybridstack.routing: request + skill + data class + policy + health -> plan.

* :class:`Router` builds a :class:`Plan` (ordered :class:`Candidate` deployments, every
  exclusion with its reason) and validates routes against the sovereignty rules.
* Orders are values: :class:`Order` (``rank(survivors, ctx)``), the built-in
  ``weighted``/``cheapest``/``fastest``, :class:`KeyOrder` for one-value orders, and
  :func:`register_order` to name a new one in policy strings.
* :class:`SkillTable` ranks families per skill; :class:`DataClassRules` maps data classes
  to jurisdictions (fail closed); :class:`Policy` and :class:`RouteConstraints` say how
  to order and what to allow; :func:`redact` removes personal data from a request.
"""

from hybridstack.plan import Candidate, Exclusions, Plan
from hybridstack.routing.filters import RouteEntry
from hybridstack.routing.orders import (
    KeyOrder,
    Order,
    OrderContext,
    Ranked,
    get_order,
    register_order,
)
from hybridstack.routing.policies import PRIMARY_POLICIES, Policy, RouteConstraints
from hybridstack.routing.router import Router, default_key_available
from hybridstack.routing.skills import DEFAULT_SKILL_TABLE, SkillTable
from hybridstack.routing.sovereignty import (
    DEFAULT_DATA_CLASSES,
    REDACTION_KINDS,
    DataClassRules,
    UnknownDataClassError,
    redact,
    redact_text,
)

__all__ = [
    "DEFAULT_DATA_CLASSES",
    "DEFAULT_SKILL_TABLE",
    "PRIMARY_POLICIES",
    "REDACTION_KINDS",
    "Candidate",
    "DataClassRules",
    "Exclusions",
    "KeyOrder",
    "Order",
    "OrderContext",
    "Plan",
    "Policy",
    "Ranked",
    "RouteConstraints",
    "RouteEntry",
    "Router",
    "SkillTable",
    "UnknownDataClassError",
    "default_key_available",
    "get_order",
    "redact",
    "redact_text",
    "register_order",
]
