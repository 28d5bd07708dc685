"""miocreate_async: an asyncio-native, typed client for the MioCreate Face Swap API."""

from ._version import __version__

__all__ = ["__version__"]
