from services.shared.problems import (
    TYPE_PREFIX,
    BadRequest,
    Conflict,
    InsufficientScope,
    Problem,
    ResourceNotFound,
)


class ReferralNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "referral-not-found"
    title = "No such referral"


class ChannelNotPermitted(InsufficientScope):
    type = TYPE_PREFIX + "channel-not-permitted"
    title = "This client is not registered for that channel"


class IllegalTransition(Conflict):
    type = TYPE_PREFIX + "illegal-transition"
    title = "The referral cannot move to that status from its current one"


class AssignmentUnknown(ResourceNotFound):
    type = TYPE_PREFIX + "assignment-unknown"
    title = "The referral has no such assignment"


class UpdateOutOfOrder(Conflict):
    type = TYPE_PREFIX + "assignment-update-out-of-order"
    title = "An earlier change to this assignment has not been applied yet"


class IdempotencyKeyRequired(BadRequest):
    type = TYPE_PREFIX + "idempotency-key-required"
    title = "An Idempotency-Key header of 1 to 255 visible ASCII characters is required"


class IdempotencyKeyRepeated(BadRequest):
    type = TYPE_PREFIX + "idempotency-key-repeated"
    title = "Exactly one Idempotency-Key header is sent with a referral"


class IdempotencyKeyReused(Problem):
    type = TYPE_PREFIX + "idempotency-key-reused"
    title = "This Idempotency-Key was used for a different request"
    status = 422


class AssignmentNoLongerHeld(Problem):
    type = TYPE_PREFIX + "assignment-change-not-applicable"
    title = "The assignment cannot take this change (withdrawn, or not yet accepted)"
    status = 422
