"""Reading an inventory file: the shared TOML loader and error format of :mod:`xanet.config`.

The only I/O of the inventory. Every problem is reported at once, one line each, as every
xanet file reports them (``inventory.toml: sites[12].parent: unknown site 'hub-0227'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xanet.config import ConfigError, parse_model, read_toml
from xanet.inventory.index import Inventory


class InventoryError(ConfigError):
    """An inventory that cannot be used: ``.source`` (the file) and ``.problems`` (one
    ``key.path: reason`` each); the message is one ``file: key.path: reason`` line per
    problem. A :class:`~xanet.config.ConfigError` (and so a ``ValueError``)."""


def parse_inventory(data: Mapping[str, Any], source: str = "<inventory>") -> Inventory:
    """Validate already-parsed TOML data; InventoryError lists every problem."""
    return parse_model(data, Inventory, source, InventoryError)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory TOML file.

    Raises InventoryError naming the file and each problem with its key path; a TOML
    syntax error names the line and column.
    """
    return parse_inventory(read_toml(path, InventoryError), str(path))
