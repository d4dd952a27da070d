"""gunicorn reads this file from the working directory by default (the image's /app; `make` targets run
from the checkout). Its access log redacts monitoring routing keys (intake.logs)."""

logger_class = "intake.logs.GunicornLogger"
