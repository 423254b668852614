"""Which claims grant scopes and name the client is configuration, so tokens of Microsoft Entra
ID and Keycloak are understood as well as our own; a token lacking the scope gets our 403."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key
from pydantic import ValidationError

from services.routing.main import create_app
from services.routing.rules.parsing import default_document
from services.routing.settings import RoutingSettings
from services.shared.auth import StaticKeySet, TokenVerifier
from services.shared.problems import AuthenticationRequired
from tests.stack import MORNING, SettableClock

TENANT = "5f1c2e9a-0d3b-4c6e-9a7f-2b8d4e6f0a1c"
ENTRA_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
ENTRA_AUDIENCE = "api://spa-platform-routing"
# The calling application's client id, and its service principal's object id (Entra's sub).
ENTRA_CLIENT = "0b7d3f52-8e41-4a9c-b6d2-71c5e3a9f804"
ENTRA_OBJECT = "c3a8e1f4-5b2d-4f7a-9e60-d18b2c4a7e35"
KEYCLOAK_ISSUER = "https://keycloak.county.example/realms/county"
JWKS_URL = "https://idp.example/keys"


@dataclass(frozen=True)
class Provider:
    """An identity provider routing trusts, and where its tokens carry scopes and client."""

    issuer: str
    audience: str
    scope_claims: tuple[str, ...] = ("scope",)
    client_id_claims: tuple[str, ...] = ("sub",)


ENTRA = Provider(ENTRA_ISSUER, ENTRA_AUDIENCE, ("roles", "scp"), ("azp", "appid"))
KEYCLOAK = Provider(
    KEYCLOAK_ISSUER,
    "routing",
    ("scope", "realm_access.roles", "resource_access.routing.roles"),
    ("azp",),
)
ENTRA_UNCONFIGURED = Provider(ENTRA_ISSUER, ENTRA_AUDIENCE)


@pytest.fixture(scope="module")
def signing_key() -> RSAPrivateKey:
    return generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: RSAPrivateKey) -> dict[str, Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}


def _times() -> dict[str, int]:
    now = int(MORNING.timestamp())
    return {"iat": now, "nbf": now, "exp": now + 3600}


def entra_app_token(roles: list[str]) -> dict[str, Any]:
    """Client credentials at Entra's v2 endpoint: application permissions in roles."""
    return {
        "aud": ENTRA_AUDIENCE,
        "iss": ENTRA_ISSUER,
        **_times(),
        "azp": ENTRA_CLIENT,
        "azpacr": "1",
        "idtyp": "app",
        "oid": ENTRA_OBJECT,
        "sub": ENTRA_OBJECT,
        "roles": roles,
        "tid": TENANT,
        "ver": "2.0",
    }


def entra_v1_app_token(roles: list[str]) -> dict[str, Any]:
    """The same from Entra's v1 endpoint, which names the client in appid."""
    return {
        "aud": ENTRA_AUDIENCE,
        "iss": ENTRA_ISSUER,
        **_times(),
        "appid": ENTRA_CLIENT,
        "appidacr": "1",
        "oid": ENTRA_OBJECT,
        "sub": ENTRA_OBJECT,
        "roles": roles,
        "tid": TENANT,
        "ver": "1.0",
    }


def entra_delegated_token(scp: str) -> dict[str, Any]:
    """An application acting for a signed-in user: delegated permissions in scp."""
    return {
        "aud": ENTRA_AUDIENCE,
        "iss": ENTRA_ISSUER,
        **_times(),
        "azp": ENTRA_CLIENT,
        "azpacr": "1",
        "oid": "9e2f4a61-3c8b-4d0e-a5f7-6b1d9c3e2a84",
        "sub": "pairwise-subject-of-a-fictional-user",
        "scp": scp,
        "tid": TENANT,
        "ver": "2.0",
    }


def keycloak_token(
    scope: str, realm_roles: list[str], client_roles: dict[str, list[str]]
) -> dict[str, Any]:
    """Client credentials at Keycloak: a service account's token with roles by realm and client."""
    return {
        "iss": KEYCLOAK_ISSUER,
        "aud": ["routing", "account"],
        **_times(),
        "jti": str(uuid.uuid4()),
        "sub": "6d0b1f3e-2a7c-4e95-8b4d-0c3f7a1e9d26",
        "typ": "Bearer",
        "azp": "north-rules-console",
        "scope": scope,
        "realm_access": {"roles": realm_roles},
        "resource_access": {name: {"roles": roles} for name, roles in client_roles.items()},
        "client_id": "north-rules-console",
    }


def _verifier(key: RSAPrivateKey, provider: Provider) -> TokenVerifier:
    return TokenVerifier(
        StaticKeySet(_jwks(key)),
        clock=SettableClock(MORNING),
        issuer=provider.issuer,
        audience=provider.audience,
        algorithms=("RS256",),
        scope_claims=provider.scope_claims,
        client_id_claims=provider.client_id_claims,
    )


def _sign(key: RSAPrivateKey, claims: Mapping[str, Any]) -> str:
    return jwt.encode(dict(claims), key, algorithm="RS256", headers={"kid": "idp-1"})


async def test_entra_application_permissions_are_read_from_roles(
    signing_key: RSAPrivateKey,
) -> None:
    verifier = _verifier(signing_key, ENTRA)
    token = _sign(signing_key, entra_app_token(["rules:admin", "decisions:read"]))

    principal = await verifier.verify(token)

    assert principal.scopes == {"rules:admin", "decisions:read"}
    assert principal.client_id == ENTRA_CLIENT


async def test_an_entra_v1_token_names_its_client_in_appid(signing_key: RSAPrivateKey) -> None:
    verifier = _verifier(signing_key, ENTRA)

    principal = await verifier.verify(_sign(signing_key, entra_v1_app_token(["decisions:read"])))

    assert principal.client_id == ENTRA_CLIENT
    assert principal.scopes == {"decisions:read"}


async def test_entra_delegated_permissions_are_read_from_scp(signing_key: RSAPrivateKey) -> None:
    verifier = _verifier(signing_key, ENTRA)
    token = _sign(signing_key, entra_delegated_token("decisions:read  rules:admin"))

    principal = await verifier.verify(token)

    assert principal.scopes == {"decisions:read", "rules:admin"}
    assert principal.client_id == ENTRA_CLIENT


async def test_keycloak_scopes_realm_roles_and_this_clients_roles_are_all_granted(
    signing_key: RSAPrivateKey,
) -> None:
    verifier = _verifier(signing_key, KEYCLOAK)
    token = _sign(
        signing_key,
        keycloak_token(
            "profile decisions:create",
            ["offline_access", "decisions:read"],
            {"routing": ["rules:admin"], "account": ["audit:read"]},
        ),
    )

    principal = await verifier.verify(token)

    # Roles of another client (account) grant nothing here.
    assert principal.scopes == {
        "profile",
        "decisions:create",
        "offline_access",
        "decisions:read",
        "rules:admin",
    }
    assert principal.client_id == "north-rules-console"


async def test_by_default_only_the_scope_claim_grants_and_sub_names_the_client(
    signing_key: RSAPrivateKey,
) -> None:
    verifier = _verifier(signing_key, ENTRA_UNCONFIGURED)
    token = _sign(signing_key, entra_app_token(["rules:admin"]))

    principal = await verifier.verify(token)

    assert principal.scopes == frozenset()
    assert principal.client_id == ENTRA_OBJECT


@pytest.mark.parametrize(
    "value", [42, {"roles": ["rules:admin"]}, [["rules:admin"]], [7, None], True, None]
)
async def test_a_scope_claim_of_another_shape_grants_nothing(
    signing_key: RSAPrivateKey, value: Any
) -> None:
    verifier = _verifier(signing_key, ENTRA)
    token = _sign(signing_key, {**entra_app_token([]), "roles": value})

    principal = await verifier.verify(token)

    assert principal.scopes == frozenset()


async def test_a_token_without_the_client_id_claim_is_refused(signing_key: RSAPrivateKey) -> None:
    verifier = _verifier(signing_key, ENTRA)
    claims = {k: v for k, v in entra_app_token(["rules:admin"]).items() if k != "azp"}

    with pytest.raises(AuthenticationRequired):
        await verifier.verify(_sign(signing_key, claims))


async def test_a_claim_whose_name_holds_dots_is_read_whole(signing_key: RSAPrivateKey) -> None:
    """Some providers namespace their claims with a URL (``https://example.org/roles``)."""
    name = "https://spa-platform.example/roles"
    verifier = _verifier(signing_key, Provider(ENTRA_ISSUER, ENTRA_AUDIENCE, (name,)))
    token = _sign(signing_key, {**entra_app_token([]), name: ["audit:read"]})

    assert (await verifier.verify(token)).scopes == {"audit:read"}


def test_the_claims_are_set_as_json_lists_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROUTING_AUTH_SCOPE_CLAIMS", '["roles", "scp"]')
    monkeypatch.setenv("ROUTING_AUTH_CLIENT_ID_CLAIMS", '["azp", "appid"]')

    settings = RoutingSettings()

    assert settings.auth_scope_claims == ("roles", "scp")
    assert settings.auth_client_id_claims == ("azp", "appid")


@pytest.mark.parametrize("claims", [(), ("realm access.roles",), ("",)])
def test_a_claim_list_that_could_grant_nothing_is_refused(claims: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        RoutingSettings(auth_scope_claims=claims)


@asynccontextmanager
async def routing_behind(
    key: RSAPrivateKey, database_url: str, provider: Provider
) -> AsyncIterator[httpx.AsyncClient]:
    """Routing trusting an outside identity provider, whose JWKS it fetches over HTTP."""
    settings = RoutingSettings(
        database_url=database_url,
        auth_issuer=provider.issuer,
        auth_audience=provider.audience,
        auth_jwks_url=JWKS_URL,
        auth_scope_claims=provider.scope_claims,
        auth_client_id_claims=provider.client_id_claims,
    )
    idp = httpx.MockTransport(lambda request: httpx.Response(200, json=_jwks(key)))
    app = create_app(settings, mounts={"https://idp.example": idp}, clock=SettableClock(MORNING))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://routing") as http:
            yield http


def _bearer(key: RSAPrivateKey, claims: Mapping[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {_sign(key, claims)}"}


async def test_an_entra_application_with_the_role_manages_rule_sets(
    signing_key: RSAPrivateKey, sqlite_urls: dict[str, str]
) -> None:
    version = f"entra-{uuid.uuid4().hex[:8]}"
    document = default_document().replace("version: county-default-1", f"version: {version}")
    async with routing_behind(signing_key, sqlite_urls["routing"], ENTRA) as http:
        response = await http.post(
            "/v1/rule-sets",
            json={"scope": "county", "document": document},
            headers=_bearer(signing_key, entra_app_token(["rules:admin"])),
        )

    assert response.status_code == 201, response.text
    assert response.json()["uploaded_by"] == ENTRA_CLIENT


@pytest.mark.parametrize(
    "claims",
    [
        entra_app_token(["decisions:read"]),
        entra_delegated_token("decisions:read"),
        # The scope a route needs, but in a claim this deployment does not read.
        {**entra_app_token([]), "scope": "rules:admin"},
    ],
    ids=["app permission", "delegated", "unread claim"],
)
async def test_an_entra_token_without_the_permission_gets_our_403(
    signing_key: RSAPrivateKey, sqlite_urls: dict[str, str], claims: dict[str, Any]
) -> None:
    async with routing_behind(signing_key, sqlite_urls["routing"], ENTRA) as http:
        response = await http.get("/v1/rule-sets", headers=_bearer(signing_key, claims))

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:spa-platform:problem:insufficient-scope"
    assert 'scope="rules:admin"' in response.headers["www-authenticate"]


async def test_entra_delegated_permission_reads_rule_sets(
    signing_key: RSAPrivateKey, sqlite_urls: dict[str, str]
) -> None:
    async with routing_behind(signing_key, sqlite_urls["routing"], ENTRA) as http:
        response = await http.get(
            "/v1/rule-sets", headers=_bearer(signing_key, entra_delegated_token("rules:admin"))
        )

    assert response.status_code == 200
    assert any(row["scope"] == "county" for row in response.json()["items"])


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        (keycloak_token("profile", [], {"routing": ["rules:admin"]}), 200),
        (keycloak_token("profile", ["rules:admin"], {}), 200),
        (keycloak_token("rules:admin", [], {}), 200),
        # The role, but for another client: not this service's to honour.
        (keycloak_token("profile", ["offline_access"], {"teams": ["rules:admin"]}), 403),
    ],
    ids=["client role", "realm role", "scope", "another client's role"],
)
async def test_keycloak_roles_grant_scopes_on_routing(
    signing_key: RSAPrivateKey, sqlite_urls: dict[str, str], claims: dict[str, Any], status: int
) -> None:
    async with routing_behind(signing_key, sqlite_urls["routing"], KEYCLOAK) as http:
        response = await http.get("/v1/rule-sets", headers=_bearer(signing_key, claims))

    assert response.status_code == status
    if status == 403:
        assert response.json()["type"] == "urn:spa-platform:problem:insufficient-scope"
