from services.shared.problems import TYPE_PREFIX, ResourceNotFound, UpstreamUnavailable


class DecisionNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "decision-not-found"
    title = "No such decision"


class DirectoryUnavailable(UpstreamUnavailable):
    type = TYPE_PREFIX + "directory-unavailable"
    title = "The directory could not be asked which team serves this case"


class NoActiveRuleSet(UpstreamUnavailable):
    type = TYPE_PREFIX + "no-active-rule-set"
    title = "No rule set is active for this referral's locality or the county"
