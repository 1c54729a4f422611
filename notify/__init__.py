"""Email notifications (reads the audit log's document events; delivers with aiosmtplib)."""

from notify.feed import set_cadence
from notify.render import build_message, render
from notify.smtp import DeliveryError, Mailer, OutboxDirMailer, SMTPMailer, make_mailer
from notify.worker import NotifyConfig, RunResult, run, run_once

__all__ = [
    "DeliveryError",
    "Mailer",
    "NotifyConfig",
    "OutboxDirMailer",
    "RunResult",
    "SMTPMailer",
    "build_message",
    "make_mailer",
    "render",
    "run",
    "run_once",
    "set_cadence",
]
