from services.shared.problems import TYPE_PREFIX, Conflict, InsufficientScope, ResourceNotFound


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
