from typing import Any

from django.apps import AppConfig

# The session key that tells the navbar (templates/base.html) to show "Interviews". Decided once at sign-in,
# so that no page pays a query for it; a user added to a panel later sees the entry after signing in again.
NAV_SESSION_KEY = "interviews_nav"


def remember_interviews_nav(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from .selectors import may_use_interviews

    if request is not None and hasattr(request, "session"):
        request.session[NAV_SESSION_KEY] = may_use_interviews(user)


class InterviewsConfig(AppConfig):
    name = "interviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(remember_interviews_nav, dispatch_uid="interviews-nav")
