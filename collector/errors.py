"""The collector's error tree."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class WriteError(CollectorError):
    """A batch could not be written to InfluxDB."""


class WriteUnavailable(WriteError):
    """The database is unreachable or overloaded: retry later, keep the data."""


class WriteRejected(WriteError):
    """The database refused the data itself (HTTP 4xx): retrying cannot help."""
