"""docmill: document-processing job queues with supervised worker pools."""

__version__ = "0.1.0"
