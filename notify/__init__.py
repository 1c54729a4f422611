"""Email notifications (reads the audit log's document events; delivers with aiosmtplib)."""

__all__: list[str] = []
