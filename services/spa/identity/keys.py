"""The built-in issuer's signing keys (Ed25519), published as a JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: the key id, stable for the same key."""
    members = {name: public_jwk[name] for name in ("crv", "kty", "x")}
    digest = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class SigningKeys:
    """The first key signs; every key is published so tokens signed before a rotation verify."""

    def __init__(self, private_keys: list[Ed25519PrivateKey]) -> None:
        if not private_keys:
            raise ValueError("at least one signing key is needed")
        self._signer = private_keys[0]
        self._public: list[dict[str, Any]] = []
        for key in private_keys:
            public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
            public.update(kid=_thumbprint(public), use="sig", alg="EdDSA")
            self._public.append(public)
        self.kid: str = self._public[0]["kid"]

    @classmethod
    def from_files(cls, paths: tuple[Path, ...]) -> SigningKeys:
        keys = []
        for path in paths:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            keys.append(key)
        return cls(keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(key) for key in self._public]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._signer, algorithm="EdDSA", headers={"kid": self.kid})


def write_new_key(path: Path) -> None:
    """Create a new Ed25519 key, readable by its owner only. An existing file is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
