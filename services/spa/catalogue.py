"""The spa service's operations as its OpenAPI document names and describes them."""

from __future__ import annotations

from typing import Any

from services.shared.openapi import COMMON, Operation

_REFERRAL_ID = {"referral_id": "$response.body#/id"}


def _link(operation_id: str, description: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": _REFERRAL_ID, "description": description}


# What a client can do next with a referral it has just been answered with.
_REFERRAL_LINKS = {
    "GetReferral": _link("getReferral", "Read the referral again, with where it was routed."),
    "GetReferralTimeline": _link("getReferralTimeline", "Every change to the referral."),
    "CancelReferral": _link("cancelReferral", "Withdraw the referral."),
}
# A synthetic person (the NHS number valid by Modulus 11, the postcode fictional).
_REFERRAL_EXAMPLE = {
    "channel": "ambulance",
    "urgency": "crisis",
    "patient": {
        "nhs_number": "9999836909",
        "given_name": "Ada",
        "family_name": "Testperson",
        "date_of_birth": "1941-03-14",
        "postcode": "XW1 2ZZ",
        "registered_practice": "M91001",
    },
    "needs": ["fall"],
    "red_flags": [],
    "consent": {"basis": "direct_care_implied"},
    "reason": "Found on the floor by a carer; no injury seen; cannot get up unaided.",
}
_QUEUE = "A case waits in the queue when its referral needs a contact assessment. "
_SUBSCRIPTION = "The subscription must be this client's; another's is not found. "

CATALOGUE: dict[str, Operation] = {
    **COMMON,
    "POST /oauth/token": Operation(
        "issueToken",
        "The built-in issuer's OAuth 2.0 client-credentials grant: a registered client sends "
        "its id and secret (HTTP Basic, or form fields) and the scopes it wants, and gets a "
        "short-lived signed bearer token. Errors follow RFC 6749 (`invalid_client`, "
        "`invalid_scope`), not problem details, as OAuth clients expect.",
    ),
    "GET /.well-known/jwks.json": Operation(
        "getSigningKeys",
        "The public keys that verify the issuer's tokens (a JSON Web Key Set). Every key in "
        "use is listed, so a key can be rotated without refusing tokens already issued.",
    ),
    "POST /v1/referrals": Operation(
        "createReferral",
        "Refer a person for community health or social care. The referral is stored before "
        "the answer is sent, then triaged and routed to a team in the background. Send an "
        "`Idempotency-Key` with every referral: a retry with the same key and body gets the "
        "first answer again (with `Idempotent-Replayed: true`), never a second referral. With "
        "`Prefer: wait=N` the answer waits up to N seconds (capped) for the routing outcome: "
        "201 with it if it comes in time, else 202 with a `Location` to poll; "
        "`Preference-Applied` says the wait was honoured.",
        required_headers=("Idempotency-Key",),
        response_headers={
            "201": ("Location", "Idempotent-Replayed", "Preference-Applied"),
            "202": ("Location", "Idempotent-Replayed", "Preference-Applied"),
        },
        links={"201": _REFERRAL_LINKS, "202": _REFERRAL_LINKS},
        request_example=_REFERRAL_EXAMPLE,
    ),
    "GET /v1/referrals": Operation(
        "listReferralChanges",
        "The referrals this client may see that changed after a time or a cursor, oldest "
        "change first: a system that missed webhooks catches up here. A change is listed "
        "once it has settled for a few seconds, so none is skipped between pages.",
    ),
    "GET /v1/referrals/{referral_id}": Operation(
        "getReferral",
        "A referral as its referrer or a team holding it may see it: status, triage outcome, "
        "and each team it was routed to. Every read is audited.",
        links={"200": {k: v for k, v in _REFERRAL_LINKS.items() if k != "GetReferral"}},
    ),
    "GET /v1/referrals/{referral_id}/timeline": Operation(
        "getReferralTimeline",
        "Every change to a referral, oldest first: received, triaged (with the rules that "
        "decided it), routed, accepted, declined, closed, and by whom.",
    ),
    "POST /v1/referrals/{referral_id}/cancellation": Operation(
        "cancelReferral",
        "The referrer withdraws its referral with a reason. Teams holding it for care are "
        "told, and a referral already closed cannot be cancelled (409).",
    ),
    "POST /v1/referrals/{referral_id}/assignment-updates": Operation(
        "reportAssignmentUpdate",
        "The teams service reports a team's change to a case it holds (accepted, declined, "
        "first contact, closed). Updates carry a sequence number; one older than the last "
        "applied is refused, so a late retry cannot undo a newer change.",
    ),
    "GET /v1/queue": Operation(
        "listQueue",
        _QUEUE + "Most urgent first, then oldest; a case claimed by another handler shows "
        "who holds it and until when.",
    ),
    "GET /v1/queue/escalations": Operation(
        "listEscalations",
        "Open cases whose response deadline has passed without a team accepting them, for "
        "the locality coordinator to chase.",
    ),
    "POST /v1/queue/{referral_id}/claim": Operation(
        "claimCase",
        _QUEUE + "A handler claims it so that no one else works it at the same time; the "
        "claim lapses unless renewed by claiming again.",
    ),
    "POST /v1/queue/{referral_id}/release": Operation(
        "releaseCase", "The handler holding the claim gives the case back to the queue."
    ),
    "POST /v1/queue/{referral_id}/assessment": Operation(
        "assessCase",
        "The handler's contact assessment: needs, red flags and risks found on the call. The "
        "case is triaged on it and routed as any other referral.",
    ),
    "POST /v1/queue/{referral_id}/advice": Operation(
        "resolveCaseWithAdvice",
        "Information and advice settled the person's need; the case closes without a team.",
    ),
    "POST /v1/queue/{referral_id}/duplicate": Operation(
        "closeDuplicateCase",
        "The case repeats an earlier open referral it was linked to; it closes, pointing at "
        "that one.",
    ),
    "POST /v1/queue/{referral_id}/cru-transfer": Operation(
        "transferCaseToCru",
        "A safeguarding concern goes to the Central Referral Unit now, in parallel with the "
        "care pathway, with what the handler recorded of the concern.",
    ),
    "GET /v1/reports/response-times": Operation(
        "getResponseTimes",
        "Times from referral to acceptance and to first contact over a period, by pathway, "
        "and the share within each pathway's target (two hours for rapid response).",
    ),
    "GET /v1/subscriptions": Operation(
        "listSubscriptions", "The webhook subscriptions this client has made."
    ),
    "POST /v1/subscriptions": Operation(
        "createSubscription",
        "Subscribe an HTTPS endpoint to referral events (Standard Webhooks). The signing "
        "secret is shown only in this answer.",
    ),
    "GET /v1/subscriptions/{subscription_id}": Operation(
        "getSubscription", _SUBSCRIPTION + "Its URL, filters and state.", summary="A subscription"
    ),
    "PATCH /v1/subscriptions/{subscription_id}": Operation(
        "updateSubscription",
        _SUBSCRIPTION + "Change the URL or the event filters, or disable and enable it.",
    ),
    "DELETE /v1/subscriptions/{subscription_id}": Operation(
        "deleteSubscription",
        _SUBSCRIPTION + "No more messages are sent to it.",
        summary="Delete a subscription",
    ),
    "POST /v1/subscriptions/{subscription_id}/secret-rotation": Operation(
        "rotateSubscriptionSecret",
        _SUBSCRIPTION + "A new signing secret; messages are signed with both until the "
        "overlap ends, so the receiver can switch without dropping any.",
    ),
    "POST /v1/subscriptions/{subscription_id}/ping": Operation(
        "pingSubscription", _SUBSCRIPTION + "Sends a signed `endpoint.ping` message now."
    ),
    "GET /v1/subscriptions/{subscription_id}/messages": Operation(
        "listSubscriptionMessages",
        _SUBSCRIPTION + "The messages sent or due, newest first, with their delivery state.",
    ),
    "GET /v1/subscriptions/{subscription_id}/messages/{message_id}": Operation(
        "getSubscriptionMessage", _SUBSCRIPTION + "One message, with every attempt at it."
    ),
    "POST /v1/subscriptions/{subscription_id}/messages/{message_id}/replay": Operation(
        "replaySubscriptionMessage",
        _SUBSCRIPTION + "Sends a delivered or failed message again, under its own id.",
    ),
    "POST /v1/subscriptions/{subscription_id}/recovery": Operation(
        "recoverSubscriptionMessages",
        _SUBSCRIPTION + "Sends again every message that failed since a time (after an outage "
        "of the receiver).",
    ),
    "POST /FHIR/R4/$process-message": Operation(
        "processBarsMessage",
        "The BaRS receiver: a FHIR Bundle of type message carrying a new referral, or an "
        "update or cancellation of one. `X-Request-Id` and `X-Correlation-Id` are required; "
        "errors are OperationOutcome; a replayed message is a 409 `duplicate`.",
        required_headers=("X-Request-Id", "X-Correlation-Id"),
    ),
    "GET /FHIR/R4/metadata": Operation(
        "getCapabilityStatement",
        "The CapabilityStatement of this BaRS receiver: what it takes, in which versions.",
        required_headers=("X-Request-Id", "X-Correlation-Id"),
    ),
    "GET /FHIR/R4/MessageDefinition": Operation(
        "listMessageDefinitions",
        "The MessageDefinition of the referral message this receiver takes.",
        required_headers=("X-Request-Id", "X-Correlation-Id"),
    ),
    "GET /FHIR/R4/ServiceRequest/{referral_id}": Operation(
        "readServiceRequest",
        "A referral this client sent, as a FHIR ServiceRequest with its current status.",
        required_headers=("X-Request-Id", "X-Correlation-Id"),
    ),
}
