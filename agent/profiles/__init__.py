"""Device profiles: what to poll of a kind of device (UPS, sensors, hosts) and how to read it.

Modules: :mod:`~agent.profiles.model` (what a profile may say; pure),
:mod:`~agent.profiles.load` (the catalog: shipped profiles and a user directory),
:mod:`~agent.profiles.select` (which profiles a device gets; pure),
:mod:`~agent.profiles.evaluate` (var-binds to checked values; pure). The SNMP side is
:mod:`agent.snmp.profilewalk`. docs/profiles.md describes the format.
"""
