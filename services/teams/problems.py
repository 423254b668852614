from services.shared.problems import TYPE_PREFIX, ResourceNotFound, ValidationFailed


class TeamNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "team-not-found"
    title = "No such team"


class UnknownTeam(ValidationFailed):
    type = TYPE_PREFIX + "unknown-team"
    title = "The request names a team that does not exist or is retired"


class InvalidDirectory(ValidationFailed):
    type = TYPE_PREFIX + "invalid-directory"
    title = "The directory is invalid; nothing was changed"
