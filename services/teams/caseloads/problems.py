from services.shared.problems import TYPE_PREFIX, Conflict, ResourceNotFound, ValidationFailed


class UnknownTeam(ValidationFailed):
    type = TYPE_PREFIX + "unknown-team"
    title = "The request names a team that does not exist or is retired"


class AssignmentNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "assignment-not-found"
    title = "No such assignment"


class AssignmentStateConflict(Conflict):
    type = TYPE_PREFIX + "assignment-state-conflict"
    title = "The assignment cannot change that way from its current state"


class InvalidTime(ValidationFailed):
    type = TYPE_PREFIX + "invalid-time"
    title = "The time given is not possible for this change"
