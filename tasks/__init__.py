"""Steps: Prefect tasks that call boto3, one module per AWS concern. The only place boto3 is
imported. See ``tasks/aws.py`` (clients), ``tasks/retry.py`` (retries and waits) and
``tasks/steps.py`` (the ``@step`` decorator)."""
