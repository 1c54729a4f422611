"""Email notifications (reads the audit log's document events; delivers with aiosmtplib)."""

from notify.i18n import LOCALES
from notify.links import UnsubscribeLinks
from notify.render import build_message, render
from notify.smtp import DeliveryError, Mailer, OutboxDirMailer, SMTPMailer, make_mailer
from notify.worker import NotifyConfig, RunResult, run, run_once

__all__ = [
    "LOCALES",
    "DeliveryError",
    "Mailer",
    "NotifyConfig",
    "OutboxDirMailer",
    "RunResult",
    "SMTPMailer",
    "UnsubscribeLinks",
    "build_message",
    "make_mailer",
    "render",
    "run",
    "run_once",
]
