from services.shared.problems import TYPE_PREFIX, Conflict, ResourceNotFound


class CaseNotQueued(ResourceNotFound):
    type = TYPE_PREFIX + "case-not-queued"
    title = "No case waiting in this client's queues has that id"


class CaseClaimed(Conflict):
    type = TYPE_PREFIX + "case-claimed"
    title = "Another call handler is working this case"


class ClaimNotHeld(Conflict):
    type = TYPE_PREFIX + "claim-not-held"
    title = "This claim on the case is not current; claim the case again"


class NoDuplicateLinked(Conflict):
    type = TYPE_PREFIX + "no-duplicate-linked"
    title = "The case is not linked to an earlier referral"


class AdviceNotEnough(Conflict):
    type = TYPE_PREFIX + "advice-not-enough"
    title = "A case with red flags or a safeguarding concern cannot be closed with advice"


class ConcernStays(Conflict):
    type = TYPE_PREFIX + "safeguarding-concern-stays"
    title = "A safeguarding concern raised on a case cannot be withdrawn by an assessment"
