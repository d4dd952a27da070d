"""The incident's representation in the OpenAPI document: one answer, two shapes (issue 11).

Whoever sees an incident as a responder gets `Incident`; whoever sees it as its reporter (a reporter, a
confidential reporter, a responder who reported outside their teams' domains) gets `ReporterIncident`, which
has exactly the fields of the reporter's page. Every operation that answers an incident declares `oneOf`
the two (`INCIDENT_RESPONSE`), and the postprocessing hook below makes `oneOf` decide: `ReporterIncident`
admits no other field (a responder's answer never matches it), and the reporter's identity fields are
optional in both, since they are absent for whoever may not know a confidential reporter.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer

from . import serializers as s

INCIDENT_COMPONENTS = ("Incident", "ReporterIncident")


def incident_response(*, many: bool = False) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(
        component_name="IncidentAsSeen",
        serializers=[s.IncidentSerializer, s.ReporterIncidentSerializer],
        resource_type_field_name=None,
        many=many,
    )


INCIDENT_RESPONSE = incident_response()


def incident_shapes(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS: see the module's docstring."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in INCIDENT_COMPONENTS:
        component = schemas.get(name)
        if component is None:
            continue
        component["required"] = [
            field for field in component.get("required", []) if field not in s.REPORTER_IDENTITY_FIELDS
        ]
    if "ReporterIncident" in schemas:
        schemas["ReporterIncident"]["additionalProperties"] = False
    return result
