"""The call handler's pages: the live queue of their localities, the referral with its timeline
and why it went where it went, and the work on a case (claim, release, the contact assessment,
advice, closing as a duplicate, transfer to the CRU).

Every action goes through the queue's own service functions with the person as the principal,
so the console can do no more than the API allows a call handler, and each audit record and
timeline entry names the person.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.shared.auth import ALL_LOCALITIES
from services.shared.vocabulary import Need, RedFlag, Urgency
from services.spa.api import WakeupsDep
from services.spa.audit import record_access
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, CheckedForm, Visit, render, requires_role, see_other
from services.spa.queue import service as queue
from services.spa.queue.schemas import AdviceResolution, ContactAssessmentCreate, CruTransfer
from services.spa.referrals import service as referrals
from services.spa.referrals.api import referral_read, visible_or_not_found
from services.spa.referrals.models import Referral
from services.spa.referrals.schemas import AbuseCategory, AdviceTopic

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Handler = Annotated[Visit, Depends(requires_role(Role.CALL_HANDLER))]
Reader = Annotated[
    Visit,
    Depends(requires_role(Role.CALL_HANDLER, Role.COORDINATOR, Role.TEAM_MEMBER, Role.CRU)),
]
LocalityQuery = Annotated[
    str | None, Query(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
]
QUEUE_SHOWN = 100
# The s42 questions answered yes, no or not known.
S42_QUESTIONS = {
    "care_and_support_needs": "Does the adult have needs for care and support?",
    "experiencing_or_at_risk_of_abuse": "Are they experiencing, or at risk of, abuse or neglect?",
    "unable_to_protect_self": "Are they unable to protect themselves because of those needs?",
    "adult_aware": "Is the adult aware of the concern being raised?",
    "adult_consents": "Does the adult consent to it being raised?",
    "capacity_concern": "Is there a concern about their mental capacity to decide?",
    "children_at_risk": "Are children at risk?",
    "others_at_risk": "Are other adults at risk?",
    "alleged_person_known": "Is the person alleged to cause harm known?",
    "police_involved": "Are the police involved?",
}
VOCABULARY: dict[str, Any] = {
    "urgencies": list(Urgency),
    "needs": list(Need),
    "red_flags": list(RedFlag),
    "abuse_categories": list(AbuseCategory),
    "advice_topics": list(AdviceTopic),
    "s42_questions": S42_QUESTIONS,
}


def _row(referral: Referral, visit: Visit) -> dict[str, Any]:
    claim = queue.live_claim(referral, visit.now)
    person = visit.signed_in()
    return {
        "referral": referral,
        "waited": (visit.now - referral.created_at).total_seconds(),
        "claim": claim,
        "mine": claim is not None and referral.claim_client_id == person.principal_id,
    }


async def _queue_rows(visit: Visit, locality: str | None) -> list[dict[str, Any]]:
    person = visit.signed_in()
    found = await queue.list_queue(
        visit.db, person.principal(), locality=locality, limit=QUEUE_SHOWN
    )
    record_access(
        visit.db,
        client_id=person.principal_id,
        action="console.queue",
        resource_type="queue",
        resource_id=locality or "*",
    )
    return [_row(referral, visit) for referral in found]


def _localities(visit: Visit) -> list[str]:
    return sorted(code for code in visit.signed_in().localities if code != ALL_LOCALITIES)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(visit: Handler, locality: LocalityQuery = None) -> Response:
    rows = await _queue_rows(visit, locality)
    return render(
        visit,
        "queue.html",
        rows=rows,
        locality=locality,
        localities=_localities(visit),
        every_locality=ALL_LOCALITIES in visit.signed_in().localities,
    )


@router.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(visit: Handler, locality: LocalityQuery = None) -> Response:
    """The queue's rows alone: what htmx swaps in every few seconds."""
    return render(
        visit, "_queue_rows.html", rows=await _queue_rows(visit, locality), locality=locality
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def referral_page(referral_id: uuid.UUID, visit: Reader) -> Response:
    person = visit.signed_in()
    principal = person.principal()
    referral = await visible_or_not_found(visit.db, referral_id, principal, "console.referral.read")
    read = await referral_read(visit.db, referral, principal)
    events = await referrals.timeline_of(visit.db, referral.id)
    if not referrals.is_call_handler(principal):
        events = [event for event in events if event.event_type != referrals.DUPLICATE_LINKED]
    claim = queue.live_claim(referral, visit.now)
    return render(
        visit,
        "referral.html",
        read=read,
        referral=referral,
        events=events,
        claim=claim,
        mine=claim is not None and referral.claim_client_id == person.principal_id,
        waiting=referral.queue_reason is not None,
        handler=person.has(Role.CALL_HANDLER) and referrals.handled_by(referral, principal),
        **VOCABULARY,
    )


async def _case(visit: Visit, referral_id: uuid.UUID, action: str) -> Referral:
    return await queue.queued_case(visit.db, referral_id, visit.signed_in().principal(), action)


def _claim_held(visit: Visit, referral: Referral) -> tuple[uuid.UUID, str]:
    """The person's own live claim on the case (a refusal if they hold none)."""
    claim = queue.live_claim(referral, visit.now)
    principal = visit.signed_in().principal()
    claim_id = claim.claim_id if claim is not None else uuid.uuid4()
    return claim_id, queue.require_claim(referral, claim_id, principal, visit.now)


def _back(referral_id: uuid.UUID) -> str:
    return f"{PREFIX}/referrals/{referral_id}"


@router.post("/referrals/{referral_id}/claim")
async def claim(referral_id: uuid.UUID, visit: Handler, form: CheckedForm) -> Response:
    person = visit.signed_in()
    referral = await _case(visit, referral_id, "console.queue.claim")
    duration = timedelta(seconds=visit.settings.queue_claim_seconds)
    await queue.claim(visit.db, referral, person.principal(), person.person_id, visit.now, duration)
    return see_other(_back(referral_id))


@router.post("/referrals/{referral_id}/release")
async def release(referral_id: uuid.UUID, visit: Handler, form: CheckedForm) -> Response:
    referral = await _case(visit, referral_id, "console.queue.release")
    _, handler = _claim_held(visit, referral)
    queue.release(visit.db, referral, handler, visit.signed_in().principal_id)
    return see_other(f"{PREFIX}/queue")


def _tri_state(value: object) -> bool | None:
    return {"yes": True, "no": False}.get(str(value or ""))


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


def _safeguarding(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {"concern": form.get("concern") == "yes"}
    for name in S42_QUESTIONS:
        fields[name] = _tri_state(form.get(name))
    fields["categories"] = form.getlist("categories")
    fields["proceed_without_consent_reason"] = _text(form, "proceed_without_consent_reason")
    fields["immediate_actions"] = _text(form, "immediate_actions")
    return fields


def _assessment(form: FormData, claim_id: uuid.UUID) -> ContactAssessmentCreate:
    risk = {
        "clinical_frailty_scale": _text(form, "clinical_frailty_scale"),
        "long_term_conditions": _text(form, "long_term_conditions"),
        "end_of_life": form.get("end_of_life") == "yes",
    }
    return ContactAssessmentCreate.model_validate(
        {
            "claim_id": claim_id,
            "urgency": form.get("urgency") or None,
            "needs": form.getlist("needs"),
            "red_flags": form.getlist("red_flags"),
            "risk": {key: value for key, value in risk.items() if value is not None},
            "safeguarding": _safeguarding(form),
            "note": _text(form, "note"),
        }
    )


def _errors(error: ValidationError) -> dict[str, str]:
    """Each invalid field, by the form control that shows it, in words for people."""
    found: dict[str, str] = {}
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if not isinstance(part, int)]
        # A rule over the whole form names the control it is about: the needs (at least one
        # need or red flag), the reason to raise a concern without consent, the frailty score.
        field = location[-1] if location else "needs"
        field = {
            "safeguarding": "proceed_without_consent_reason",
            "risk": "clinical_frailty_scale",
        }.get(field, field)
        message = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        found.setdefault(field, message[:1].upper() + message[1:])
    return found


async def _form_page(
    visit: Visit, referral: Referral, template: str, errors: dict[str, str], form: Any
) -> Response:
    principal = visit.signed_in().principal()
    read = await referral_read(visit.db, referral, principal)
    return render(
        visit,
        template,
        status=422 if errors else 200,
        read=read,
        referral=referral,
        errors=errors,
        form=form,
        **VOCABULARY,
    )


@router.get("/referrals/{referral_id}/assessment", response_class=HTMLResponse)
async def assessment_form(referral_id: uuid.UUID, visit: Handler) -> Response:
    referral = await _case(visit, referral_id, "console.queue.assessment_form")
    _claim_held(visit, referral)
    prefill = {
        "urgency": referral.urgency,
        "needs": referral.needs,
        "red_flags": referral.red_flags,
        "risk": referral.risk,
        "safeguarding": referral.safeguarding,
    }
    return await _form_page(visit, referral, "assessment.html", {}, prefill)


@router.post("/referrals/{referral_id}/assessment", response_class=HTMLResponse)
async def assess(
    referral_id: uuid.UUID,
    visit: Handler,
    form: CheckedForm,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
) -> Response:
    referral = await _case(visit, referral_id, "console.queue.assess")
    claim_id, handler = _claim_held(visit, referral)
    try:
        body = _assessment(form, claim_id)
    except ValidationError as error:
        return await _form_page(visit, referral, "assessment.html", _errors(error), _echo(form))
    queue.assess(visit.db, referral, body, handler, visit.now, visit.signed_in().principal_id)
    background.add_task(wakeups.routing)
    return see_other(_back(referral_id))


def _echo(form: FormData) -> dict[str, Any]:
    """What was sent, to show again beside its errors."""
    return {
        "urgency": form.get("urgency"),
        "needs": form.getlist("needs"),
        "red_flags": form.getlist("red_flags"),
        "risk": {
            "clinical_frailty_scale": form.get("clinical_frailty_scale"),
            "long_term_conditions": form.get("long_term_conditions"),
            "end_of_life": form.get("end_of_life") == "yes",
        },
        "safeguarding": _safeguarding(form),
        "note": form.get("note"),
    }


@router.post("/referrals/{referral_id}/advice", response_class=HTMLResponse)
async def advice(referral_id: uuid.UUID, visit: Handler, form: CheckedForm) -> Response:
    referral = await _case(visit, referral_id, "console.queue.advice")
    claim_id, _ = _claim_held(visit, referral)
    try:
        body = AdviceResolution.model_validate(
            {
                "claim_id": claim_id,
                "advice": {"topics": form.getlist("topics"), "note": _text(form, "advice_note")},
            }
        )
    except ValidationError as error:
        errors = {"topics": "Choose the advice given"} if _errors(error) else {}
        return await _form_page(visit, referral, "advice.html", errors, _echo(form))
    queue.resolve_with_advice(visit.db, referral, body.advice, visit.signed_in().principal_id)
    return see_other(_back(referral_id))


@router.get("/referrals/{referral_id}/advice", response_class=HTMLResponse)
async def advice_form(referral_id: uuid.UUID, visit: Handler) -> Response:
    referral = await _case(visit, referral_id, "console.queue.advice_form")
    _claim_held(visit, referral)
    return await _form_page(visit, referral, "advice.html", {}, {})


@router.post("/referrals/{referral_id}/duplicate")
async def duplicate(referral_id: uuid.UUID, visit: Handler, form: CheckedForm) -> Response:
    referral = await _case(visit, referral_id, "console.queue.duplicate")
    _, handler = _claim_held(visit, referral)
    await queue.close_as_duplicate(visit.db, referral, handler, visit.signed_in().principal_id)
    return see_other(_back(referral_id))


@router.get("/referrals/{referral_id}/cru-transfer", response_class=HTMLResponse)
async def cru_transfer_form(referral_id: uuid.UUID, visit: Handler) -> Response:
    referral = await _case(visit, referral_id, "console.queue.cru_transfer_form")
    _claim_held(visit, referral)
    prefill = {"safeguarding": {**referral.safeguarding, "concern": True}}
    return await _form_page(visit, referral, "cru_transfer.html", {}, prefill)


@router.post("/referrals/{referral_id}/cru-transfer", response_class=HTMLResponse)
async def cru_transfer(
    referral_id: uuid.UUID,
    visit: Handler,
    form: CheckedForm,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
) -> Response:
    referral = await _case(visit, referral_id, "console.queue.cru_transfer")
    claim_id, handler = _claim_held(visit, referral)
    try:
        body = CruTransfer.model_validate(
            {"claim_id": claim_id, "safeguarding": {**_safeguarding(form), "concern": True}}
        )
    except ValidationError as error:
        echoed = {"safeguarding": {**_safeguarding(form), "concern": True}}
        return await _form_page(visit, referral, "cru_transfer.html", _errors(error), echoed)
    queue.transfer_to_cru(visit.db, referral, body, handler, visit.signed_in().principal_id)
    background.add_task(wakeups.routing)
    return see_other(_back(referral_id))
