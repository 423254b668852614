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


class TeamNotPermitted(InsufficientScope):
    type = TYPE_PREFIX + "team-not-permitted"
    title = "This client does not act for that team"


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
