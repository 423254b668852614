"""The teams service's operations as its OpenAPI document names and describes them."""

from __future__ import annotations

from services.shared.openapi import COMMON, Operation

_ADMIN = "A change to the directory is versioned and audited; its history is kept. "
_CASE = "An assignment is one case on one team's caseload. "
_HSDS = "Open Referral UK (HSDS 3.0) feed of the directory. "

CATALOGUE: dict[str, Operation] = {
    **COMMON,
    "GET /v1/resolve": Operation(
        "resolveTeam",
        "The team that serves a patient (by practice, else postcode) for a pathway or "
        "escalation, now or at a given time: the locality's model decides, with backups and "
        "out-of-hours when a team is closed or full, and the steps taken are returned.",
    ),
    "POST /v1/resolutions": Operation(
        "resolveTeams",
        "Many resolutions in one request: a team, or only a locality, for each query, in the "
        "order sent.",
    ),
    "GET /v1/locate": Operation(
        "locate", "The locality a practice is in, or else the one a postcode district is in."
    ),
    "GET /v1/teams": Operation(
        "listTeams", "The active teams by code, with their type and locality, a page at a time."
    ),
    "GET /v1/teams/{team_code}": Operation(
        "getTeam", "One team: its type, practices covered, capacity and hours.", summary="A team"
    ),
    "PUT /v1/teams/{team_code}/capacity": Operation(
        "putTeamCapacity",
        "A team reports how many new cases it can take and whether it is operating; "
        "resolution routes around a team that is full or closed.",
    ),
    "POST /v1/assignments": Operation(
        "createAssignment",
        _CASE + "Put a case on a team's caseload. Idempotent per referral, team and kind: a "
        "repeat answers with the assignment already made.",
    ),
    "POST /v1/assignments/batch": Operation(
        "createAssignments", _CASE + "Many in one request, each answered in the order sent."
    ),
    "POST /v1/assignments/withdrawals": Operation(
        "withdrawReferral",
        _CASE + "The referrer cancelled: every caseload holding the referral lets it go.",
    ),
    "POST /v1/assignments/{assignment_id}/withdrawal": Operation(
        "withdrawAssignment",
        _CASE + "Take back a case the team has not accepted within its window, to route it "
        "elsewhere.",
    ),
    "GET /v1/teams/{team_code}/caseload": Operation(
        "getCaseload",
        "The team's cases, oldest first and a page at a time, with their status and deadlines.",
        summary="A team's caseload",
    ),
    "GET /v1/teams/{team_code}/worklist": Operation(
        "getWorklist", "Open cases flagged high-risk, for the team's next MDT meeting."
    ),
    "POST /v1/assignments/{assignment_id}/accept": Operation(
        "acceptAssignment",
        _CASE + "The team accepts the case, with the planned time of first contact.",
    ),
    "POST /v1/assignments/{assignment_id}/decline": Operation(
        "declineAssignment", _CASE + "The team declines the case with a coded reason."
    ),
    "POST /v1/assignments/{assignment_id}/first-contact": Operation(
        "recordFirstContact", _CASE + "Record when the team first saw or spoke to the person."
    ),
    "POST /v1/assignments/{assignment_id}/close": Operation(
        "closeAssignment", _CASE + "The team has finished with the case."
    ),
    "GET /v1/directory": Operation(
        "getDirectory", "The whole active directory as a directory file (the upload format)."
    ),
    "PUT /v1/directory": Operation(
        "putDirectory",
        _ADMIN + "Replace the whole directory from a directory file, all or nothing: an "
        "invalid file changes nothing and is refused with every error found.",
    ),
    "GET /v1/directory/changes": Operation(
        "listDirectoryChanges", _ADMIN + "The versions, newest first, with who made each."
    ),
    "POST /v1/directory/localities": Operation("createLocality", _ADMIN + "Add a locality."),
    "PUT /v1/directory/localities/{code}": Operation(
        "replaceLocality", _ADMIN + "Replace a locality, its model included."
    ),
    "POST /v1/directory/localities/{code}/retire": Operation(
        "retireLocality", _ADMIN + "Retire a locality that no practice or team refers to."
    ),
    "POST /v1/directory/practices": Operation("createPractice", _ADMIN + "Add a GP practice."),
    "PUT /v1/directory/practices/{ods_code}": Operation(
        "replacePractice", _ADMIN + "Replace a practice, named by its ODS code."
    ),
    "POST /v1/directory/practices/{ods_code}/retire": Operation(
        "retirePractice", _ADMIN + "Retire a practice that no team covers."
    ),
    "POST /v1/directory/teams": Operation("createTeam", _ADMIN + "Add a team."),
    "PUT /v1/directory/teams/{code}": Operation("replaceTeam", _ADMIN + "Replace a team."),
    "POST /v1/directory/teams/{code}/retire": Operation(
        "retireTeam",
        _ADMIN + "Retire a team that is no other team's backup nor a locality's "
        "out-of-hours service.",
    ),
    "GET /openreferral/": Operation(
        "getOpenReferralFeed",
        _HSDS + "The HSDS version and profile the feed follows (the standard's root "
        "endpoint, whose path ends in a slash).",
    ),
    "GET /openreferral/services": Operation(
        "listOpenReferralServices", _HSDS + "Active teams as services, a page at a time."
    ),
    "GET /openreferral/services/{id}": Operation(
        "getOpenReferralService",
        _HSDS + "One active team as a service, with its organization and practices.",
    ),
    "GET /openreferral/service_at_locations": Operation(
        "listOpenReferralServiceAtLocations",
        _HSDS + "Where each active team works: the practices it covers.",
    ),
    "GET /openreferral/service_at_locations/{id}": Operation(
        "getOpenReferralServiceAtLocation", _HSDS + "One practice an active team covers."
    ),
    "GET /openreferral/organizations": Operation(
        "listOpenReferralOrganizations", _HSDS + "The organization providing the services."
    ),
    "GET /openreferral/organizations/{id}": Operation(
        "getOpenReferralOrganization", _HSDS + "One organization, with its services."
    ),
    "GET /openreferral/taxonomies": Operation(
        "listOpenReferralTaxonomies", _HSDS + "The vocabularies services are described with."
    ),
    "GET /openreferral/taxonomies/{id}": Operation(
        "getOpenReferralTaxonomy", _HSDS + "One taxonomy."
    ),
    "GET /openreferral/taxonomy_terms": Operation(
        "listOpenReferralTaxonomyTerms", _HSDS + "The terms services are described with."
    ),
    "GET /openreferral/taxonomy_terms/{id}": Operation(
        "getOpenReferralTaxonomyTerm", _HSDS + "One taxonomy term."
    ),
}
