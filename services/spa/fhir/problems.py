"""Refusals of the FHIR door, each with its BaRS receiver error code and FHIR issue code.

They are problems like any other (raised by handlers, audited by the edge), carrying what an
OperationOutcome needs: the edge (``edge.py``) renders every problem on a FHIR path as one::

    FhirProblem                     base; never raised itself
    ├── MessageInvalid              400 REC_BAD_REQUEST     the message or a header is malformed
    ├── WorkflowUnknown             400 REC_BAD_REQUEST     event, reason, status and category make no known workflow
    ├── NotAcceptable               406 REC_NOT_ACCEPTABLE  no answer in a media type or version the client takes
    ├── MessageNotSupported         422 REC_UNPROCESSABLE_ENTITY  a version or use case this receiver does not take
    ├── MessageUnprocessable        422 REC_UNPROCESSABLE_ENTITY  well formed, but no referral can be made of it
    ├── ReferralNotKnown            404 REC_NOT_FOUND       no referral of this client by that name
    ├── DuplicateMessage            409 REC_CONFLICT        this X-Request-Id was processed already
    ├── ReferralStateConflict       409 REC_CONFLICT        the referral's state refuses the change
    └── MessageInProgress           425 REC_TOO_EARLY       the same X-Request-Id is being processed now
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from services.shared.problems import TYPE_PREFIX, Problem

# The key under which a problem carries its OperationOutcome issue to the edge.
ISSUE_KEY = "fhir_issue"


class FhirProblem(Problem):
    bars_code: ClassVar[str] = "REC_SERVER_ERROR"
    issue_code: ClassVar[str] = "exception"

    def __init__(
        self,
        detail: str,
        *,
        expression: Sequence[str] = (),
        issue_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        issue: dict[str, Any] = {
            "code": issue_code or self.issue_code,
            "bars_code": self.bars_code,
            "expression": list(expression),
        }
        super().__init__(detail, headers=headers, **{ISSUE_KEY: issue})


class MessageInvalid(FhirProblem):
    type = TYPE_PREFIX + "fhir-message-invalid"
    title = "The message is malformed"
    status = 400
    bars_code = "REC_BAD_REQUEST"
    issue_code = "invalid"


class WorkflowUnknown(FhirProblem):
    type = TYPE_PREFIX + "fhir-workflow-unknown"
    title = "The message's event, reason, status and category make no workflow this receiver knows"
    status = 400
    bars_code = "REC_BAD_REQUEST"
    issue_code = "invariant"


class NotAcceptable(FhirProblem):
    type = TYPE_PREFIX + "fhir-not-acceptable"
    title = "No answer can be given in a media type or version the request accepts"
    status = 406
    bars_code = "REC_NOT_ACCEPTABLE"
    issue_code = "processing"


class MessageNotSupported(FhirProblem):
    type = TYPE_PREFIX + "fhir-message-not-supported"
    title = "The message's version or use case is not one this receiver takes"
    status = 422
    bars_code = "REC_UNPROCESSABLE_ENTITY"
    issue_code = "not-supported"


class MessageUnprocessable(FhirProblem):
    type = TYPE_PREFIX + "fhir-message-unprocessable"
    title = "The message is well formed but no referral can be made of it"
    status = 422
    bars_code = "REC_UNPROCESSABLE_ENTITY"
    issue_code = "invalid"


class ReferralNotKnown(FhirProblem):
    type = TYPE_PREFIX + "fhir-referral-not-known"
    title = "No referral of this client has that identifier"
    status = 404
    bars_code = "REC_NOT_FOUND"
    issue_code = "not-found"


class DuplicateMessage(FhirProblem):
    type = TYPE_PREFIX + "fhir-duplicate-message"
    title = "This message has already been processed"
    status = 409
    bars_code = "REC_CONFLICT"
    issue_code = "duplicate"


class ReferralStateConflict(FhirProblem):
    type = TYPE_PREFIX + "fhir-referral-state-conflict"
    title = "The referral's current state does not allow this change"
    status = 409
    bars_code = "REC_CONFLICT"
    issue_code = "business-rule"


class MessageInProgress(FhirProblem):
    type = TYPE_PREFIX + "fhir-message-in-progress"
    title = "A message with this X-Request-Id is being processed; retry shortly"
    status = 425
    bars_code = "REC_TOO_EARLY"
    issue_code = "transient"
