"""SNMPv3 User-based Security Model crypto for the lean path: keys, digests, AES. Pure.

* key localisation (RFC 3414 A.2): password -> Ku (the password repeated to 1 MB and
  hashed) -> Kul = H(Ku | engineID | Ku). The 1 MB expansion costs milliseconds, so
  both steps are cached: Ku per (password, hash), Kul per (engine ID, password, hash);
* HMAC authentication: HMAC-MD5-96, HMAC-SHA-96 (RFC 3414) and the RFC 7860
  HMAC-SHA-2 family (SHA-224/256/384/512 truncated to 16/24/32/48 octets);
* privacy: AES-128 in CFB-128 mode (RFC 3826), through the ``cryptography`` package
  (imported when the first message is encrypted: ~6 MB of RSS).
  The 16-octet IV is engineBoots | engineTime | the 8-octet salt sent as
  msgPrivacyParameters.

DES, 3DES and the AES-192/256 key extensions (Blumenthal/Reeder drafts) are not
here: :func:`agent.snmp.routing.lean_supports` sends such credentials to pysnmp. What a
message means (discovery, time window, reports) is :mod:`agent.snmp.usm_session`'s.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
    from cryptography.hazmat.primitives.ciphers import Cipher

_EXPANDED_OCTETS: Final = 1_048_576  # RFC 3414 A.2: the password repeated to 1 MB
_CHUNK_OCTETS: Final = 8_192  # divides _EXPANDED_OCTETS


@dataclass(frozen=True, slots=True)
class AuthProtocol:
    name: str
    hash_name: str
    mac_octets: int  # the truncated digest sent in msgAuthenticationParameters


AUTH_PROTOCOLS: Final = {
    "MD5": AuthProtocol("MD5", "md5", 12),
    "SHA": AuthProtocol("SHA", "sha1", 12),
    "SHA224": AuthProtocol("SHA224", "sha224", 16),
    "SHA256": AuthProtocol("SHA256", "sha256", 24),
    "SHA384": AuthProtocol("SHA384", "sha384", 32),
    "SHA512": AuthProtocol("SHA512", "sha512", 48),
}
AES_KEY_OCTETS: Final = 16
SALT_OCTETS: Final = 8


# Sized for a central poller with per-device credentials (a province: ~2,600 devices x
# auth + priv): a cyclic poll order over more keys than the cache holds would miss every
# time, and a miss of password_to_key costs the 1 MB hash (~2-3 ms). Entries are ~200 B.
_KEY_CACHE_ENTRIES: Final = 16_384


@lru_cache(maxsize=_KEY_CACHE_ENTRIES)
def password_to_key(password: bytes, hash_name: str) -> bytes:
    """Ku: ``password`` repeated to 1 MB, hashed (RFC 3414 A.2.1/A.2.2, RFC 7860)."""
    if not password:
        raise ValueError("empty SNMPv3 password")
    # Hashed in chunks of a cyclic buffer: no 1 MB string (it would stay in the heap).
    cycle = password * (_CHUNK_OCTETS // len(password) + 2)
    hasher = hashlib.new(hash_name)
    for offset in range(0, _EXPANDED_OCTETS, _CHUNK_OCTETS):
        start = offset % len(password)
        hasher.update(cycle[start : start + _CHUNK_OCTETS])
    return hasher.digest()


@lru_cache(maxsize=_KEY_CACHE_ENTRIES)
def localized_key(password: bytes, hash_name: str, engine_id: bytes) -> bytes:
    """Kul = H(Ku | engineID | Ku), cached per (engine ID, password, hash)."""
    ku = password_to_key(password, hash_name)
    return hashlib.new(hash_name, ku + engine_id + ku).digest()


def localized_priv_key(password: bytes, hash_name: str, engine_id: bytes) -> bytes:
    """The AES-128 key: the first 16 octets of the localized privacy key (RFC 3826 1.2)."""
    key = localized_key(password, hash_name, engine_id)
    if len(key) < AES_KEY_OCTETS:  # pragma: no cover - every hash above has >= 16 octets
        raise ValueError("localized key too short for AES-128")
    return key[:AES_KEY_OCTETS]


def digest(protocol: AuthProtocol, key: bytes, message: bytes) -> bytes:
    """The truncated HMAC of ``message`` (its auth parameters zeroed by the caller)."""
    return hmac.digest(key, message, protocol.hash_name)[: protocol.mac_octets]


def sign(protocol: AuthProtocol, key: bytes, message: bytes, offset: int) -> bytes:
    """``message`` with its zeroed authentication parameters at ``offset`` filled in."""
    mac = digest(protocol, key, message)
    return message[:offset] + mac + message[offset + protocol.mac_octets :]


def verify(protocol: AuthProtocol, key: bytes, message: bytes, offset: int, mac: bytes) -> bool:
    """Whether ``mac`` (found at ``offset``) authenticates ``message``."""
    if len(mac) != protocol.mac_octets:
        return False
    zeroed = message[:offset] + bytes(protocol.mac_octets) + message[offset + len(mac) :]
    return hmac.compare_digest(digest(protocol, key, zeroed), mac)


def _aes_cfb(key: bytes, boots: int, engine_time: int, salt: bytes) -> Cipher[CFB]:
    if len(salt) != SALT_OCTETS:
        raise ValueError(f"AES privacy parameters of {len(salt)} octets, not {SALT_OCTETS}")
    # Imported on first use: cryptography's Rust binding costs ~6 MB of RSS, which an
    # agent with authNoPriv devices only need not pay.
    from cryptography.hazmat.decrepit.ciphers.modes import CFB  # CFB's home since 47
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    iv = boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt
    return Cipher(algorithms.AES(key), CFB(iv))


def aes_encrypt(key: bytes, boots: int, engine_time: int, salt: bytes, plaintext: bytes) -> bytes:
    """AES-128-CFB (RFC 3826 3.1.3): no padding, the ciphertext is as long as the data."""
    encryptor = _aes_cfb(key, boots, engine_time, salt).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


def aes_decrypt(key: bytes, boots: int, engine_time: int, salt: bytes, ciphertext: bytes) -> bytes:
    """AES-128-CFB decryption (RFC 3826 3.1.4); ValueError for bad privacy parameters."""
    decryptor = _aes_cfb(key, boots, engine_time, salt).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()
