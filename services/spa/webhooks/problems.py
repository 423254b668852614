from services.shared.problems import TYPE_PREFIX, Conflict, ResourceNotFound, ValidationFailed


class SubscriptionNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "subscription-not-found"
    title = "No such subscription for this client"


class MessageNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "webhook-message-not-found"
    title = "No such message for this subscription"


class EndpointRefused(ValidationFailed):
    type = TYPE_PREFIX + "webhook-endpoint-refused"
    title = "We may not send webhooks to that URL"


class MessageQueued(Conflict):
    type = TYPE_PREFIX + "webhook-message-queued"
    title = "The message is already queued for delivery"
