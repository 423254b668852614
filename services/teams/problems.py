from services.shared.problems import (
    TYPE_PREFIX,
    Conflict,
    InsufficientScope,
    ResourceNotFound,
    ValidationFailed,
)


class TeamNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "team-not-found"
    title = "No such team"


class UnknownTeam(ValidationFailed):
    type = TYPE_PREFIX + "unknown-team"
    title = "The request names a team that does not exist or is retired"


class InvalidDirectory(ValidationFailed):
    type = TYPE_PREFIX + "invalid-directory"
    title = "The directory is invalid; nothing was changed"


class EntryExists(Conflict):
    type = TYPE_PREFIX + "directory-entry-exists"
    title = "The directory already has an active entry with that code"


class EntryNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "directory-entry-not-found"
    title = "The directory has no active entry with that code"


class EntryCodeMismatch(ValidationFailed):
    type = TYPE_PREFIX + "directory-entry-code-mismatch"
    title = "The entry's code differs from the code in the path"


class ServiceNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "service-not-found"
    title = "No such service"


class AssignmentNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "assignment-not-found"
    title = "No such assignment"


class TeamNotPermitted(InsufficientScope):
    type = TYPE_PREFIX + "team-not-permitted"
    title = "This client does not act for that team"


class AssignmentStateConflict(Conflict):
    type = TYPE_PREFIX + "assignment-state-conflict"
    title = "The assignment cannot change that way from its current state"


class InvalidTime(ValidationFailed):
    type = TYPE_PREFIX + "invalid-time"
    title = "The time given is not possible for this change"
