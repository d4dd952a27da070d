"""Web routes: the reporter's form and portal (/report/, /track/, /my/) and the console (/desk/)."""

from django.urls import path

from . import import_views, problem_views, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("report/", views.report, name="report"),
    path("report/categories/", views.report_categories, name="report_categories"),
    path("report/done/<str:token>/", views.report_done, name="report_done"),
    path("track/<str:token>/", views.track, name="track"),
    path("track/<str:token>/reply/", views.track_reply, name="track_reply"),
    path("track/<str:token>/attach/", views.track_attach, name="track_attach"),
    path("track/<str:token>/confirm/", views.track_confirm, name="track_confirm"),
    path("track/<str:token>/reopen/", views.track_reopen, name="track_reopen"),
    path("track/<str:token>/rate/", views.track_rate, name="track_rate"),
    path("track/<str:token>/files/<int:attachment_id>/", views.track_download, name="track_download"),
    path("my/", views.my_incidents, name="my_incidents"),
    path("desk/", views.queue, name="queue"),
    path("desk/bulk/", views.queue_bulk, name="queue_bulk"),
    path("desk/export.csv", views.queue_export, name="queue_export"),
    path("desk/views/", views.queue_save_view, name="queue_save_view"),
    path("desk/views/<int:pk>/delete/", views.queue_delete_view, name="queue_delete_view"),
    path("desk/preview/", views.markdown_preview, name="markdown_preview"),
    path("desk/incidents/<str:reference>/", views.incident_detail, name="incident"),
    path("desk/incidents/<str:reference>/edit/", views.incident_edit, name="incident_edit"),
    path("desk/incidents/<str:reference>/comment/", views.incident_comment, name="incident_comment"),
    path("desk/incidents/<str:reference>/attach/", views.incident_attach, name="incident_attach"),
    path(
        "desk/incidents/<str:reference>/files/<int:attachment_id>/",
        views.incident_download,
        name="incident_download",
    ),
    path("desk/incidents/<str:reference>/problem/", problem_views.incident_problem, name="incident_problem"),
    path("desk/incidents/<str:reference>/parent/", problem_views.incident_parent, name="incident_parent"),
    path("desk/incidents/<str:reference>/<str:action>/", views.incident_action, name="incident_action"),
    path("desk/imports/", import_views.import_list, name="imports"),
    path("desk/imports/<int:pk>/", import_views.import_detail, name="import"),
    path("desk/problems/", problem_views.problem_list, name="problems"),
    path("desk/problems/<int:pk>/", problem_views.problem_detail, name="problem"),
    path("desk/problems/<int:pk>/state/", problem_views.problem_state, name="problem_state"),
    path("desk/problems/<int:pk>/incidents/", problem_views.problem_incidents, name="problem_incidents"),
    path("desk/problems/<int:pk>/follow-ups/", problem_views.problem_follow_up, name="problem_follow_up"),
    path("desk/problems/<int:pk>/edit/", problem_views.problem_edit, name="problem_edit"),
    path(
        "desk/problems/<int:pk>/follow-ups/<int:follow_up_id>/done/",
        problem_views.follow_up_done,
        name="follow_up_done",
    ),
    path("survey/<str:token>/", problem_views.survey, name="survey"),
    path("desk/teams/", views.team_list, name="teams"),
    path("desk/teams/<slug:slug>/", views.team_detail, name="team"),
]
