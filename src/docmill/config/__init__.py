"""docmill's configuration, read once and handed to every layer (``load``)."""

from docmill.config.loader import InvalidConfiguration, Settings, load

__all__ = ["InvalidConfiguration", "Settings", "load"]
