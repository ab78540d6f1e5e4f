"""ctxspec's conformance suite: models, machines, adapters, runner and report."""

__version__ = "0.1.0"
