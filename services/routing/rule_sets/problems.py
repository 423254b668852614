from services.shared.problems import TYPE_PREFIX, Conflict, ResourceNotFound, ValidationFailed


class RuleSetNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "rule-set-not-found"
    title = "No such rule set"


class RuleSetRejected(ValidationFailed):
    type = TYPE_PREFIX + "rule-set-rejected"
    title = "The rule set is invalid; every error is listed"


class RuleSetExists(Conflict):
    type = TYPE_PREFIX + "rule-set-exists"
    title = "That scope already has a rule set with this version"


class RuleSetStateConflict(Conflict):
    type = TYPE_PREFIX + "rule-set-state-conflict"
    title = "The rule set cannot change that way from its current status"


class NothingToRollBack(Conflict):
    type = TYPE_PREFIX + "nothing-to-roll-back"
    title = "There is no earlier active version to go back to"
