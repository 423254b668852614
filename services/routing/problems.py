from services.shared.problems import (
    TYPE_PREFIX,
    Conflict,
    ResourceNotFound,
    UpstreamUnavailable,
    ValidationFailed,
)


class DecisionNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "decision-not-found"
    title = "No such decision"


class DirectoryUnavailable(UpstreamUnavailable):
    type = TYPE_PREFIX + "directory-unavailable"
    title = "The directory could not be asked which team serves this case"


class NoActiveRuleSet(UpstreamUnavailable):
    type = TYPE_PREFIX + "no-active-rule-set"
    title = "No rule set is active for this referral's locality or the county"


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
