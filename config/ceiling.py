"""The bench's ceilings (bench/suite.py), served only when ``BENCH_CEILING_VIEWS`` is on.

Each figure of the bench is measured next to these, in the same server and run: a bare JSON answer (what
gunicorn, WSGI and Django's middleware cost at least) and a bare one-insert view (that plus one ORM INSERT
into the incidents table in autocommit: what a create could cost at least). They authenticate nobody and
check nothing, which is why production never routes to them.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from incidents.models import Incident


def ceiling_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@csrf_exempt
def ceiling_insert(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body or b"{}")
    incident = Incident.objects.create(
        title=str(data.get("title", "ceiling")),
        description=str(data.get("description", "")),
        reporter_email=str(data.get("reporter_email", "")),
    )
    return JsonResponse({"id": incident.pk, "title": incident.title}, status=201)


urlpatterns: list[URLPattern] = [
    path("bench/ceiling/json/", ceiling_json, name="bench-ceiling-json"),
    path("bench/ceiling/insert/", ceiling_insert, name="bench-ceiling-insert"),
]
