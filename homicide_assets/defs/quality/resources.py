"""``AlertChannelResource``: where alerts to analysts go (SMTP email and/or a webhook)."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar

from homicide_assets.lib.alerts import ENV_PREFIX, AlertChannel


class AlertChannelResource(ConfigurableResource):
    """The alert channel. Unset parts are not used; with nothing set, alerts are stored only
    (the ``alerts`` table), and each alert records that no channel took it."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "homicide-assets@localhost"
    #: comma-separated recipients
    smtp_to: str | None = None
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    def channel(self) -> AlertChannel:
        return AlertChannel(
            smtp_host=self.smtp_host or None,
            smtp_port=int(self.smtp_port),
            smtp_from=self.smtp_from,
            smtp_to=tuple(a.strip() for a in (self.smtp_to or "").split(",") if a.strip()),
            smtp_starttls=bool(self.smtp_starttls),
            smtp_user=self.smtp_user or None,
            smtp_password=self.smtp_password or None,
            webhook_url=self.webhook_url or None,
            timeout_seconds=float(self.timeout_seconds),
        )


_FIELDS = {
    "smtp_host": "SMTP_HOST", "smtp_port": "SMTP_PORT", "smtp_from": "SMTP_FROM", "smtp_to": "SMTP_TO",
    "smtp_starttls": "SMTP_STARTTLS", "smtp_user": "SMTP_USER", "smtp_password": "SMTP_PASSWORD",
    "webhook_url": "WEBHOOK_URL",
}


def alert_channel_resource() -> AlertChannelResource:
    """An ``AlertChannelResource`` bound through ``EnvVar`` to each ``HOMICIDE_ALERT_*`` variable
    that is set when the definitions load (so values are read at run time and never logged)."""
    kwargs = {}
    for field_name, suffix in _FIELDS.items():
        name = ENV_PREFIX + suffix
        if os.environ.get(name):
            if field_name == "smtp_port":
                kwargs[field_name] = EnvVar.int(name)
            elif field_name == "smtp_starttls":
                kwargs[field_name] = os.environ[name].strip().lower() in ("1", "true", "yes")
            else:
                kwargs[field_name] = EnvVar(name)
    return AlertChannelResource(**kwargs)
