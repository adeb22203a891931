"""The SNMP protocol and security-level names xanet accepts, wherever a credential is named. Pure.

The inventory (:mod:`xanet.inventory.model`, its credential tables) and the agent
(:mod:`agent.credentials`, which holds the rules) accept the same names; they live here so
the shared package needs nothing of the agent.
"""

from __future__ import annotations

from typing import Literal

AuthProtocol = Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"]
PrivProtocol = Literal["AES", "AES192", "AES256", "DES"]
#: The two USM security levels xanet uses (noAuthNoPriv is never offered).
SecurityLevel = Literal["authPriv", "authNoPriv"]
