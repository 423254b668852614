from services.shared.problems import TYPE_PREFIX, ResourceNotFound, UnknownQueryParameter

__all__ = ["UnknownQueryParameter"]


class ServiceNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "service-not-found"
    title = "No such service"


class ServiceAtLocationNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "service-at-location-not-found"
    title = "No such service at a location"


class OrganizationNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "organization-not-found"
    title = "No such organization"


class TaxonomyNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "taxonomy-not-found"
    title = "No such taxonomy"


class TaxonomyTermNotFound(ResourceNotFound):
    type = TYPE_PREFIX + "taxonomy-term-not-found"
    title = "No such taxonomy term"
