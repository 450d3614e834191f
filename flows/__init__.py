"""Runbooks: Prefect flows that compose the steps in ``tasks/``. No boto3 here."""

from flows import heartbeats

heartbeats.install()
