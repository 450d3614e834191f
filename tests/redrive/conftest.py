"""Redrive tests use ``queues`` (tests/conftest.py): the sandbox config's queues and DLQs made
with plain boto3; the queue and message helpers are in ``sandbox.testing``."""
