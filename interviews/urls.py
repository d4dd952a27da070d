from django.urls import path

from . import views

app_name = "interviews"

urlpatterns = [
    path("", views.sessions, name="sessions"),
    path("sessions/<int:pk>/", views.console, name="console"),
    path("sessions/<int:pk>/report/", views.report, name="report"),
    path("c/<str:token>/", views.candidate, name="candidate"),
    path("reports/", views.reports_index, name="reports"),
    path("reports/raters/", views.rater_analytics_page, name="rater_analytics"),
    path("reports/<slug:slug>/v<int:number>/comparison/", views.comparison_page, name="comparison"),
    path("reports/<slug:slug>/v<int:number>/analytics/", views.case_analytics_page, name="case_analytics"),
    path("calibration/", views.calibration_list, name="calibration"),
    path("calibration/<int:pk>/", views.calibration_session, name="calibration_session"),
    path("from-incident/<str:reference>/", views.from_incident, name="from_incident"),
    path("cases/<slug:slug>/", views.case_page, name="case"),
    path("cases/<slug:slug>/findings/<int:pk>/", views.case_finding, name="case_finding"),
    path("cases/<slug:slug>/<str:action>/", views.case_action, name="case_action"),
]
