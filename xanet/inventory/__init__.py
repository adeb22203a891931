"""The inventory: province, communes, sites, devices and the elements monitored on them.

One TOML file describes what exists and what each monitored *element* means:

* an element is a device (its reachability) or one interface of a device (its ifName),
  tagged with the service it stands for (fibre, broadband, mobile 2G/3G/4G);
* a site may hang behind another site's uplink (``parent``), so an outage can be
  attributed to its root instead of alerting once per child;
* communes sit directly under the province (the 2025 two-level structure); an old-style
  district is optional.

* a device may carry what an agent needs to poll it (address, port, SNMP version, a
  credentials reference, profiles, interval); its site's agent polls it, and
  ``agentconfig`` renders that agent's config from the inventory.

The package, by layer: ``model`` (the tables), ``consistency`` (cross-references between
them), ``index`` (the root model and its lookups), ``load`` (the only I/O: the shared
TOML loader and error format), ``official`` (the optional check against the 2025 list)
and ``check`` (``python -m xanet.inventory``). Everything above is importable from here.
Besides: ``agentconfig`` (an agent's config rendered), the spreadsheets ``tables`` (their
layout and cell rules), ``merge`` (rows into an inventory, the diff), ``export`` (an
inventory as sheet rows), ``sheets`` (xlsx/CSV files), ``importer`` (an import end to
end) and ``template`` (the template workbook). The format is documented in
``docs/inventory.md``.
"""

from xanet.inventory.check import main
from xanet.inventory.index import Inventory
from xanet.inventory.load import InventoryError, load_inventory, parse_inventory
from xanet.inventory.model import (
    SERVICE_LABELS_VI,
    TECHNOLOGY_SERVICE,
    TOPIC_SAFE_ID_PATTERN,
    Agent,
    AgentDefaults,
    Commune,
    Credentials,
    Device,
    District,
    Element,
    Province,
    Service,
    Site,
    Technology,
    element_key,
    is_topic_safe,
)
from xanet.inventory.official import validate_official_codes

__all__ = [
    "SERVICE_LABELS_VI",
    "TECHNOLOGY_SERVICE",
    "TOPIC_SAFE_ID_PATTERN",
    "Agent",
    "AgentDefaults",
    "Commune",
    "Credentials",
    "Device",
    "District",
    "Element",
    "Inventory",
    "InventoryError",
    "Province",
    "Service",
    "Site",
    "Technology",
    "element_key",
    "is_topic_safe",
    "load_inventory",
    "main",
    "parse_inventory",
    "validate_official_codes",
]
