"""Token-endpoint errors: problem documents that also carry the RFC 6749 ``error`` code."""

from services.shared.problems import TYPE_PREFIX, AuthenticationRequired, BadRequest


class InvalidClient(AuthenticationRequired):
    type = TYPE_PREFIX + "invalid-client"
    title = "Client authentication failed"


class UnsupportedGrantType(BadRequest):
    type = TYPE_PREFIX + "unsupported-grant-type"
    title = "Only the client_credentials grant is supported"


class InvalidScope(BadRequest):
    type = TYPE_PREFIX + "invalid-scope"
    title = "The requested scope is not granted to this client"


class InvalidTokenRequest(BadRequest):
    type = TYPE_PREFIX + "invalid-token-request"
    title = "The token request is malformed"
