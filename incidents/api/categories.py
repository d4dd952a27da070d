"""`/api/v1/categories/`: the category tree of each domain. Admins create, rename, move and deactivate;
everyone signed in reads (reporters see the active ones). Validation is desk_config's (CategoryConfig)."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.db import transaction
from django.db.models import Q, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import changed_fields, record_change
from config.api import CursorPagination
from incidents.deskconfig import CategoryConfig, plain
from incidents.models import Category
from incidents.selectors import desk_user

from .permissions import ReadAnyWriteAdmin, is_desk_admin
from .views import ERRORS


class CategorySerializer(CategoryConfig):
    """A category: `domain` and `path` name it; `parent` is the path above it (null at the top)."""

    id = serializers.IntegerField(read_only=True)
    parent = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta(CategoryConfig.Meta):
        fields = ["id", *CategoryConfig.Meta.fields, "parent"]

    def get_parent(self, obj: Category) -> str | None:
        parent_path, _, _ = obj.path.rpartition("/")
        return parent_path or None


class CategoryFilter(filters.FilterSet):
    domain = filters.CharFilter(field_name="domain__slug")
    active = filters.BooleanFilter()
    under = filters.CharFilter(method="filter_under", help_text="A path: that category and its subtree.")

    class Meta:
        model = Category
        fields: list[str] = []

    def filter_under(self, qs: QuerySet[Category], name: str, value: str) -> QuerySet[Category]:
        path = value.strip("/")
        return qs.filter(Q(path=path) | Q(path__startswith=f"{path}/"))


class CategoryPagination(CursorPagination):
    ordering = "id"


@extend_schema_view(retrieve=extend_schema(responses={200: CategorySerializer, 404: ERRORS[404]}))
class CategoryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    serializer_class = CategorySerializer
    permission_classes = [permissions.IsAuthenticated, ReadAnyWriteAdmin]
    filter_backends = [DjangoFilterBackend]
    filterset_class = CategoryFilter
    pagination_class = CategoryPagination
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Category]:
        qs = Category.objects.select_related("domain", "default_team", "required_qualification")
        user = self.request.user
        if not (desk_user(user).is_responder or is_desk_admin(user)):
            qs = qs.filter(active=True)
        return qs

    @extend_schema(responses={201: CategorySerializer, 400: ERRORS[400]})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            category = serializer.save()
            record_change(actor=request.user, obj=category, action="create")
        return Response(self.get_serializer(category).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CategorySerializer, 400: ERRORS[400], 404: ERRORS[404]})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        with transaction.atomic():
            instance = self.get_queryset().select_for_update(of=("self",)).get(pk=self.get_object().pk)
            before = plain(CategorySerializer(instance).data)
            serializer = self.get_serializer(instance, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            category = serializer.save()
            after = plain(CategorySerializer(category).data)
            fields = changed_fields(before, after)
            if fields:
                record_change(actor=request.user, obj=category, action="change", fields=fields)
        return Response(after)

    @extend_schema(request=None, responses={200: CategorySerializer, 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Hide the category and its subtree from new reports; incidents that have it keep it."""
        return self._set_active(request, active=False)

    @extend_schema(request=None, responses={200: CategorySerializer, 400: ERRORS[400], 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Offer the category for new reports again (its parent must be active)."""
        return self._set_active(request, active=True)

    def _set_active(self, request: Request, *, active: bool) -> Response:
        with transaction.atomic():
            instance = self.get_queryset().select_for_update(of=("self",)).get(pk=self.get_object().pk)
            if instance.active == active:
                return Response(CategorySerializer(instance).data)  # nothing to do, nothing to record
            serializer = CategorySerializer(instance, data={"active": active}, partial=True)
            serializer.is_valid(raise_exception=True)
            category = serializer.save()
            record_change(actor=request.user, obj=category, action="change", fields=["active"])
        return Response(CategorySerializer(category).data)
