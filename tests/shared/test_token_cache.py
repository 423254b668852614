"""A token's signature is checked once, then remembered until the token expires; an expired
token is never taken from memory, and the memory is bounded."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.shared import auth
from services.shared.auth import StaticKeySet, TokenVerifier
from services.shared.problems import AuthenticationRequired
from tests.stack import MORNING, SettableClock


class CountingKeys:
    """A key set that counts how often a signature check needs a key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        self._keys = StaticKeySet({"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
        self.lookups = 0

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        self.lookups += 1
        return await self._keys.key_for(kid)


def _token(private: Ed25519PrivateKey, *, sub: str = "gp-system", lifetime: int = 300) -> str:
    now = int(MORNING.timestamp())
    claims = {"sub": sub, "iss": "spa-platform", "aud": "spa", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "k1"})


@pytest.fixture
def private() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _verifier(keys: CountingKeys, clock: SettableClock | None = None) -> TokenVerifier:
    return TokenVerifier(
        keys,
        clock=clock or SettableClock(MORNING),
        issuer="spa-platform",
        audience="spa",
        algorithms=("EdDSA",),
    )


async def test_a_token_is_checked_once_while_it_lasts(private: Ed25519PrivateKey) -> None:
    keys = CountingKeys(private)
    verifier = _verifier(keys)
    token = _token(private)

    first = await verifier.verify(token)
    again = await verifier.verify(token)

    assert first == again
    assert first.client_id == "gp-system"
    assert keys.lookups == 1


async def test_an_expired_token_is_refused_though_it_was_once_accepted(
    private: Ed25519PrivateKey,
) -> None:
    keys = CountingKeys(private)
    clock = SettableClock(MORNING)
    verifier = _verifier(keys, clock)
    token = _token(private, lifetime=60)
    await verifier.verify(token)

    clock.now += timedelta(seconds=60 + verifier.leeway)

    with pytest.raises(AuthenticationRequired):
        await verifier.verify(token)
    assert keys.lookups == 2


async def test_a_forged_token_is_never_remembered(private: Ed25519PrivateKey) -> None:
    keys = CountingKeys(private)
    verifier = _verifier(keys)
    forged = _token(Ed25519PrivateKey.generate())

    for _ in range(2):
        with pytest.raises(AuthenticationRequired):
            await verifier.verify(forged)
    assert keys.lookups == 2


async def test_memory_of_tokens_is_bounded(
    private: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 3)
    keys = CountingKeys(private)
    verifier = _verifier(keys)
    tokens = [_token(private, sub=f"client-{n}") for n in range(5)]

    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[-1])  # still remembered
    await verifier.verify(tokens[0])  # forgotten: checked again

    assert keys.lookups == 6
