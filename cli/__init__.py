"""The ``tierbook`` command line: thin entry points onto the runbooks in ``flows/``."""
