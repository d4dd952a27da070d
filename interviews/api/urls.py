from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from .views import (
    CalibrationViewSet,
    CandidateImageView,
    CandidateNotepadView,
    CandidateProblemsView,
    CandidateSolutionsView,
    CandidateView,
    CandidateViewSet,
    CaseAnalyticsView,
    CaseViewSet,
    ComparisonView,
    RaterAnalyticsView,
    SessionViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("cases", CaseViewSet, basename="interview-case")
router.register("sessions", SessionViewSet, basename="interview-session")
router.register("candidates", CandidateViewSet, basename="interview-candidate")
router.register("calibration", CalibrationViewSet, basename="interview-calibration")

TOKEN = "<str:token>"  # noqa: S105 - a URL converter, not a secret
urlpatterns: list[URLPattern | URLResolver] = [
    *router.urls,
    path("reports/comparison/", ComparisonView.as_view(), name="interview-comparison"),
    path("reports/cases/", CaseAnalyticsView.as_view(), name="interview-case-analytics"),
    path("reports/raters/", RaterAnalyticsView.as_view(), name="interview-rater-analytics"),
    path(f"candidate/{TOKEN}/", CandidateView.as_view(), name="interview-candidate-view"),
    path(
        f"candidate/{TOKEN}/problems/", CandidateProblemsView.as_view(), name="interview-candidate-problems"
    ),
    path(
        f"candidate/{TOKEN}/solutions/",
        CandidateSolutionsView.as_view(),
        name="interview-candidate-solutions",
    ),
    path(f"candidate/{TOKEN}/image/", CandidateImageView.as_view(), name="interview-candidate-image"),
    path(f"candidate/{TOKEN}/notepad/", CandidateNotepadView.as_view(), name="interview-candidate-notepad"),
]
