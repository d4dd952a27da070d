"""GET /api/v1/reports/summary/: the figures of SPEC section 6 as JSON."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.permissions import IsResponder
from reporting import figures

from .serializers import SummaryQuerySerializer, SummarySerializer


class SummaryView(APIView):
    """The figures over the incidents you may see, for a period and the filters of the incident list."""

    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="reports_summary",
        parameters=[SummaryQuerySerializer],
        responses={
            200: SummarySerializer,
            400: OpenApiResponse(description="Invalid filter: `{field: [messages]}`"),
            403: OpenApiResponse(description="Only responders see reports"),
        },
    )
    def get(self, request: Request) -> Response:
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = figures.summary(request.user, query.validated_data["filters"])
        return Response(SummarySerializer(data).data)
