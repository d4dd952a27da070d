"""The web interface, one module per audience (URL names and behaviour as before the split):

- portal: the reporter's form, tracking page and portal;
- desk_queue: the responders' queue;
- incident_page: the responders' incident page;
- team_pages: the team pages;
- common: helpers they share.

Views parse input and pick what the user may see; every write goes through incidents.services or
incidents.lifecycle, and visibility comes only from incidents.selectors (404 outside it).
"""

from .desk_queue import filtered_queue, queue, queue_bulk, queue_delete_view, queue_export, queue_save_view
from .incident_page import (
    incident_action,
    incident_attach,
    incident_comment,
    incident_detail,
    incident_download,
    incident_edit,
    markdown_preview,
)
from .portal import (
    home,
    my_incidents,
    report,
    report_categories,
    report_done,
    track,
    track_attach,
    track_confirm,
    track_download,
    track_rate,
    track_reopen,
    track_reply,
)
from .team_pages import team_detail, team_list

__all__ = [
    "filtered_queue",
    "home",
    "incident_action",
    "incident_attach",
    "incident_comment",
    "incident_detail",
    "incident_download",
    "incident_edit",
    "markdown_preview",
    "my_incidents",
    "queue",
    "queue_bulk",
    "queue_delete_view",
    "queue_export",
    "queue_save_view",
    "report",
    "report_categories",
    "report_done",
    "team_detail",
    "team_list",
    "track",
    "track_attach",
    "track_confirm",
    "track_download",
    "track_rate",
    "track_reopen",
    "track_reply",
]
