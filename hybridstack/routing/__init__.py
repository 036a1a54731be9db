"""hybridstack.routing: request + skill + data class + policy + health -> plan.

* :class:`Router` builds a :class:`Plan` (ordered :class:`Candidate` deployments, every
  exclusion with its reason) and validates routes against the sovereignty rules.
* :class:`SkillTable` ranks families per skill; :class:`DataClassRules` maps data classes
  to jurisdictions (fail closed); :class:`Policy` and :class:`RouteConstraints` say how
  to order and what to allow; :func:`redact` removes personal data from a request.
"""

from hybridstack.plan import Candidate, Plan
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
    "Plan",
    "Policy",
    "RouteConstraints",
    "Router",
    "SkillTable",
    "UnknownDataClassError",
    "default_key_available",
    "redact",
    "redact_text",
]
