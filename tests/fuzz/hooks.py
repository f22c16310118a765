"""Schemathesis hooks: point generated bodies at rows that exist, so that fuzzing reaches
the create path (and, through the inferred links, retrieve/update/delete) instead of
stopping at "object does not exist". Bodies of the wrong type are left as generated."""
import os
import uuid
import zlib

import schemathesis

SOURCES = os.environ["FUZZ_SOURCE_UUIDS"].split(",")
USERS = [int(u) for u in os.environ["FUZZ_USER_PKS"].split(",")]


def _is_uuid(value):
    try:
        uuid.UUID(value)
        return True
    except (TypeError, ValueError, AttributeError):
        return False


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    # A well-formed but unknown source becomes a real one (spread by identifier, so that the
    # one-link-per-(user, source) rule does not turn most creates into conflicts); malformed
    # ones stay malformed.
    if isinstance(body.get("source"), str) and _is_uuid(body["source"]):
        key = str(body.get("identifier", "")).encode("utf-8", "surrogatepass")
        body["source"] = SOURCES[zlib.crc32(key) % len(SOURCES)]
    user = body.get("user")
    if isinstance(user, int) and not isinstance(user, bool):
        body["user"] = USERS[user % len(USERS)]
    return body


def _error_codes():
    """The closed set of `extensions.code` values, read from the committed schema."""
    text = open(os.environ["FUZZ_SCHEMA_FILE"], encoding="utf-8").read()
    body = text.split("enum ErrorCode {", 1)[1].split("}", 1)[0]
    body = body.split('"""')[::2]  # drop the descriptions
    return {word for part in body for word in part.split() if word.isupper()}


CODES = _error_codes()


@schemathesis.check
def typed_graphql_errors(ctx, response, case):
    """Our GraphQL contract: no 5xx, every error carries a code from the closed set, and none
    is an internal error. (Schemathesis' own server-error check counts every resolver error,
    NOT_FOUND or CONFLICT included, as a server failure; this API reports those as typed
    errors by design.)"""
    if not response.request.url.rstrip("/").endswith("/graphql"):
        return
    assert response.status_code < 500, f"HTTP {response.status_code}"
    payload = response.json()
    assert isinstance(payload, dict), "response is not a JSON object"
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in CODES, f"error without a known code: {error}"
        assert code != "INTERNAL_SERVER_ERROR", f"internal error: {error}"
