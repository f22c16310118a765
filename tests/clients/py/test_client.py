"""oauthlink REST shim, current shape (OAUTHLINK_REST_SHAPE=current), exercised with the official
Python client `authentik-client` 2026.8.x (see requirements.txt).

Responses are deserialized by the client itself into its pydantic models (strict types: a wrong or
missing field raises). Because the generated `from_dict` uses `obj.get(...)`, a *missing* nullable
key would slip through, so the raw JSON of every response is also checked against the OpenAPI
components of the same generation (../schemas/openapi-2026.8.3.json): required keys, types, formats,
enums, nullability, no unknown keys, write-only fields never returned.

Run through tests/clients/run.sh, or directly with the environment it exports.
"""
from __future__ import annotations

import json
import os
import random
import re
import string
import sys
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import authentik_client
from authentik_client import rest
from authentik_client.exceptions import ApiException
from authentik_client.models import (
    GenericError,
    PaginatedUserOAuthSourceConnectionList,
    PatchedUserOAuthSourceConnectionRequest,
    Source,
    UsedBy,
    UserOAuthSourceConnection,
    UserOAuthSourceConnectionRequest,
    ValidationError,
)

SUITE = "py"
HERE = Path(__file__).resolve().parent
DOC = json.loads((HERE.parent / "schemas" / "openapi-2026.8.3.json").read_text())


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        sys.exit(f"environment variable {name} is required (run through tests/clients/run.sh)")
    return v


BASE = env("OAUTHLINK_URL").rstrip("/") + "/api/v3"
SUPER = env("SUPER_TOKEN")
ALICE = env("ALICE_TOKEN")
BOB = env("BOB_TOKEN")
BOB_PK = int(env("BOB_PK"))
SOURCE_UUID = env("SOURCE_UUID")
SOURCE_SLUG = env("SOURCE_SLUG")

NOT_FOUND = {"detail": "No UserOAuthSourceConnection matches the given query."}


def rand() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=10))


SECRET = f"gho_secret_{rand()}{rand()}"
EXPIRES = datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# ------------------------------------------------------------------ capture every response
CAPTURED: list[tuple[str, str, int, bytes]] = []
_orig_request = rest.RESTClientObject.request


def _capturing_request(self, method, url, *args, **kwargs):
    r = _orig_request(self, method, url, *args, **kwargs)
    r.read()
    CAPTURED.append((method, url, r.status, r.data or b""))
    return r


rest.RESTClientObject.request = _capturing_request


# ------------------------------------------------------------------ runner / assertions
RESULTS: list[bool] = []


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def test(name):
    def deco(fn):
        try:
            fn()
            RESULTS.append(True)
            print(f"  ok    {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - a test failure of any kind
            RESULTS.append(False)
            detail = str(e) if isinstance(e, Failure) else "".join(traceback.format_exception(e)).rstrip()
            print(f"  FAIL  {name}\n        " + detail.replace("\n", "\n        "), flush=True)
        return fn

    return deco


# ------------------------------------------------------------------ schema checking
def _resolve(schema):
    while "$ref" in schema:
        node = DOC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def validate(schema, value, path="$", problems=None):
    problems = [] if problems is None else problems
    nullable = schema.get("nullable") is True
    if "allOf" in schema:
        if value is None:
            if not nullable:
                problems.append(f"{path}: null but not nullable")
            return problems
        for s in schema["allOf"]:
            validate(s, value, path, problems)
        return problems
    s = _resolve(schema)
    if value is None:
        if not (nullable or s.get("nullable")):
            problems.append(f"{path}: null but not nullable")
        return problems
    if "enum" in s and value not in s["enum"]:
        problems.append(f"{path}: {value!r} not in enum {s['enum']}")
    t = s.get("type")
    if t == "object":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object, got {value!r}")
            return problems
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in value:
                problems.append(f'{path}: required key "{r}" missing')
        for k, v in value.items():
            ps = props.get(k)
            if ps is None:
                if "additionalProperties" not in s and "properties" in s:
                    problems.append(f'{path}: unknown key "{k}"')
                continue
            if ps.get("writeOnly"):
                problems.append(f'{path}: write-only key "{k}" returned')
            validate(ps, v, f"{path}.{k}", problems)
    elif t == "array":
        if not isinstance(value, list):
            problems.append(f"{path}: expected array, got {value!r}")
        else:
            for i, v in enumerate(value):
                validate(s.get("items", {}), v, f"{path}[{i}]", problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string, got {value!r}")
        else:
            if s.get("format") == "uuid" and not UUID_RE.match(value):
                problems.append(f"{path}: not a lowercase uuid: {value!r}")
            if s.get("format") == "date-time" and not RFC3339_Z.match(value):
                problems.append(f"{path}: not an RFC 3339 UTC datetime ending in Z: {value!r}")
            if "minLength" in s and len(value) < s["minLength"]:
                problems.append(f"{path}: shorter than {s['minLength']}")
            if "pattern" in s and not re.search(s["pattern"], value):
                problems.append(f"{path}: does not match {s['pattern']}")
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected integer, got {value!r}")
    elif t == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected number, got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean, got {value!r}")
    return problems


def conforms(name, value):
    if name.startswith("[]"):
        schema = {"type": "array", "items": {"$ref": f"#/components/schemas/{name[2:]}"}}
    else:
        schema = {"$ref": f"#/components/schemas/{name}"}
    problems = validate(schema, value)
    if problems:
        raise Failure(f"body does not match schema {name}:\n  " + "\n  ".join(problems) + f"\n  body: {json.dumps(value)}")


# ------------------------------------------------------------------ client
def api(token: str | None) -> authentik_client.SourcesApi:
    conf = authentik_client.Configuration(host=BASE, access_token=token)
    return authentik_client.SourcesApi(authentik_client.ApiClient(conf))


as_super, as_bob, as_alice = api(SUPER), api(BOB), api(ALICE)


def raw(resp) -> object:
    return json.loads(resp.raw_data)


def create(client, identifier, **extra):
    req = UserOAuthSourceConnectionRequest(source=UUID(SOURCE_UUID), identifier=identifier, access_token=SECRET, **extra)
    return client.sources_user_connections_oauth_create_with_http_info(req)


def expect_error(fn, status, body, model=None):
    try:
        fn()
    except ApiException as e:
        try:
            got = json.loads(e.body) if e.body else None
        except ValueError:
            raise Failure(f"HTTP {e.status}: body is not JSON: {e.body!r}") from None
        req = f"{CAPTURED[-1][0]} {re.sub(r'^https?://[^/]+', '', CAPTURED[-1][1])}" if CAPTURED else "request"
        eq({"status": e.status, "body": got}, {"status": status, "body": body}, f"{req}: error response")
        ct = (e.headers or {}).get("content-type", "")
        check(ct.startswith("application/json"), f"error Content-Type should be application/json, got {ct!r}")
        if model is not None:
            conforms(model.__name__, got)
            check(isinstance(e.data, model), f"client did not deserialize the error body into {model.__name__}: {e.data!r}")
        return got
    raise Failure(f"expected HTTP {status}, but the call succeeded")


def check_connection(j, m, identifier, user=None, expires=None):
    conforms("UserOAuthSourceConnection", j)
    check(isinstance(m, UserOAuthSourceConnection), f"not parsed into UserOAuthSourceConnection: {m!r}")
    check(isinstance(m.source_obj, Source), "source_obj parsed into Source")
    # re-validate the raw JSON with the pydantic model directly (strict types)
    UserOAuthSourceConnection.model_validate(j)
    for k in ("created", "last_updated"):
        check(RFC3339_Z.match(j[k]), f"{k} not RFC 3339 with Z: {j[k]!r}")
    check(m.pk > 0, f"pk must be positive, got {m.pk}")
    eq(m.identifier, identifier, "identifier")
    if user is not None:
        eq(m.user, user, "user")
    eq(str(m.source), SOURCE_UUID, "source (uuid)")
    now = datetime.now(timezone.utc)
    for k in ("created", "last_updated"):
        v = getattr(m, k)
        check(v.tzinfo is not None and v.utcoffset().total_seconds() == 0, f"{k} must be UTC: {v!r}")
        check(abs((now - v).total_seconds()) < 600, f"{k} is not recent: {v.isoformat()}")
    check(m.last_updated >= m.created, "last_updated >= created")
    if expires is not None:
        check("expires" in j, "expires missing from response")
        eq(m.expires, expires, "expires")
    s = m.source_obj
    eq(str(s.pk), SOURCE_UUID, "source_obj.pk")
    eq(s.slug, SOURCE_SLUG, "source_obj.slug")
    eq(s.component, "ak-source-oauth-form", "source_obj.component")
    eq(s.verbose_name, "OAuth Source", "source_obj.verbose_name")
    eq(s.verbose_name_plural, "OAuth Sources", "source_obj.verbose_name_plural")
    eq(s.meta_model_name, "authentik_sources_oauth.oauthsource", "source_obj.meta_model_name")
    check(isinstance(j["source_obj"].get("promoted"), bool), f"source_obj.promoted must be a boolean: {j['source_obj'].get('promoted')!r}")
    check("access_token" not in j, "access_token must never be returned")


print(f"{SUITE}: authentik-client {authentik_client.__version__} against {BASE}", flush=True)
state: dict[str, UserOAuthSourceConnection] = {}


@test("create {source, identifier, access_token, expires}: 201, parsed into UserOAuthSourceConnection")
def _():
    r = create(as_super, "octocat-py", expires=EXPIRES)
    eq(r.status_code, 201, "status")
    check((r.headers or {}).get("content-type", "").startswith("application/json"), "Content-Type application/json")
    eq((r.headers or {}).get("location"), None, "Location header (authentik sends none)")
    check_connection(raw(r), r.data, "octocat-py", expires=EXPIRES)
    state["first"] = r.data


@test("create as bob (holds add_useroauthsourceconnection), no expires: 201, user = bob")
def _():
    r = create(as_bob, "bob-py")
    eq(r.status_code, 201, "status")
    j = raw(r)
    check_connection(j, r.data, "bob-py", user=BOB_PK)
    eq(j.get("expires"), None, "expires when none was sent")
    check(r.data.user != state["first"].user, "bob's row must belong to bob, not akadmin")
    state["second"] = r.data


def pag(p):
    return {k: getattr(p, k) for k in ("next", "previous", "count", "current", "total_pages", "start_index", "end_index")}


@test("list filtered by source__slug: pagination + autocomplete + results")
def _():
    r = as_super.sources_user_connections_oauth_list_with_http_info(source__slug=SOURCE_SLUG)
    eq(r.status_code, 200, "status")
    conforms("PaginatedUserOAuthSourceConnectionList", raw(r))
    page = r.data
    check(isinstance(page, PaginatedUserOAuthSourceConnectionList), "parsed into PaginatedUserOAuthSourceConnectionList")
    eq(pag(page.pagination), dict(next=0, previous=0, count=2, current=1, total_pages=1, start_index=1, end_index=2), "pagination")
    eq(page.autocomplete, {}, "autocomplete")
    eq([x.pk for x in page.results], [state["first"].pk, state["second"].pk], "results ordered by pk")
    eq([x.identifier for x in page.results], ["octocat-py", "bob-py"], "identifiers")


@test("list page/page_size: page 1 and 2 of size 1, page 3 -> 404 Invalid page.")
def _():
    p1 = as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, page_size=1, page=1)
    eq(pag(p1.pagination), dict(next=2, previous=0, count=2, current=1, total_pages=2, start_index=1, end_index=1), "page 1")
    eq([x.pk for x in p1.results], [state["first"].pk], "page 1 results")
    p2 = as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, page_size=1, page=2)
    eq(pag(p2.pagination), dict(next=0, previous=1, count=2, current=2, total_pages=2, start_index=2, end_index=2), "page 2")
    eq([x.pk for x in p2.results], [state["second"].pk], "page 2 results")
    expect_error(lambda: as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, page_size=1, page=3),
                 404, {"detail": "Invalid page."})


@test("list filters and ordering: user=bob, search=identifier, ordering=-pk, unknown slug")
def _():
    first, second = state["first"], state["second"]
    by_user = as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, user=BOB_PK)
    eq([x.pk for x in by_user.results], [second.pk], "user=bob results")
    by_search = as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, search="octocat-py")
    eq([x.pk for x in by_search.results], [first.pk], "search on identifier")
    desc = as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG, ordering="-pk")
    eq([x.pk for x in desc.results], [second.pk, first.pk], "ordering=-pk")
    none = as_super.sources_user_connections_oauth_list(source__slug=f"no-such-{rand()}")
    eq(pag(none.pagination), dict(next=0, previous=0, count=0, current=1, total_pages=1, start_index=0, end_index=0), "empty pagination")
    eq(none.results, [], "empty results")


@test("list as alice (no rows of her own, no view permission): 200 empty page")
def _():
    r = as_alice.sources_user_connections_oauth_list_with_http_info()
    conforms("PaginatedUserOAuthSourceConnectionList", raw(r))
    eq(pag(r.data.pagination), dict(next=0, previous=0, count=0, current=1, total_pages=1, start_index=0, end_index=0), "pagination")
    eq(r.data.results, [], "results")


@test("retrieve: 200, same object")
def _():
    first = state["first"]
    r = as_super.sources_user_connections_oauth_retrieve_with_http_info(first.pk)
    eq(r.status_code, 200, "status")
    check_connection(raw(r), r.data, "octocat-py", user=first.user, expires=EXPIRES)
    eq(r.data.created, first.created, "created")


@test("another user's connection as alice: retrieve -> 404")
def _():
    expect_error(lambda: as_alice.sources_user_connections_oauth_retrieve(state["first"].pk), 404, NOT_FOUND)


@test("another user's connection as alice: partial_update -> 404, row untouched")
def _():
    first = state["first"]
    expect_error(lambda: as_alice.sources_user_connections_oauth_partial_update(
        first.pk, PatchedUserOAuthSourceConnectionRequest(identifier="stolen")), 404, NOT_FOUND)
    eq(as_super.sources_user_connections_oauth_retrieve(first.pk).identifier, first.identifier, "identifier")


@test("another user's connection as alice: update (PUT) -> 404, row untouched")
def _():
    first = state["first"]
    req = UserOAuthSourceConnectionRequest(source=UUID(SOURCE_UUID), identifier="stolen")
    expect_error(lambda: as_alice.sources_user_connections_oauth_update(first.pk, req), 404, NOT_FOUND)
    eq(as_super.sources_user_connections_oauth_retrieve(first.pk).identifier, first.identifier, "identifier")


@test("another user's connection as alice: destroy -> 404, row kept")
def _():
    first = state["first"]
    expect_error(lambda: as_alice.sources_user_connections_oauth_destroy(first.pk), 404, NOT_FOUND)
    eq(as_super.sources_user_connections_oauth_retrieve(first.pk).pk, first.pk, "pk")


@test("partial_update identifier: 200, persisted")
def _():
    first = state["first"]
    r = as_super.sources_user_connections_oauth_partial_update_with_http_info(
        first.pk, PatchedUserOAuthSourceConnectionRequest(identifier="octocat-renamed"))
    eq(r.status_code, 200, "status")
    check_connection(raw(r), r.data, "octocat-renamed", user=first.user, expires=EXPIRES)
    check(r.data.last_updated >= first.last_updated, "last_updated did not go backwards")
    eq(as_super.sources_user_connections_oauth_retrieve(first.pk).identifier, "octocat-renamed", "identifier after retrieve")


@test("update (PUT) {source, identifier, access_token, expires}: 200")
def _():
    first = state["first"]
    new_expires = datetime(2032, 1, 1, tzinfo=timezone.utc)
    req = UserOAuthSourceConnectionRequest(source=UUID(SOURCE_UUID), identifier="octocat-put",
                                           access_token=f"{SECRET}-put", expires=new_expires)
    r = as_super.sources_user_connections_oauth_update_with_http_info(first.pk, req)
    eq(r.status_code, 200, "status")
    check_connection(raw(r), r.data, "octocat-put", user=first.user, expires=new_expires)


@test("used_by_list: 200 []")
def _():
    r = as_super.sources_user_connections_oauth_used_by_list_with_http_info(state["first"].pk)
    eq(r.status_code, 200, "status")
    conforms("[]UsedBy", raw(r))
    eq(r.data, [], "used_by")
    check(all(isinstance(x, UsedBy) for x in r.data), "UsedBy models")


@test("400 blank identifier (client-side min_length bypassed with model_construct)")
def _():
    req = UserOAuthSourceConnectionRequest.model_construct(source=UUID(SOURCE_UUID), identifier="", access_token=SECRET)
    expect_error(lambda: as_super.sources_user_connections_oauth_create(req),
                 400, {"identifier": ["This field may not be blank."]}, ValidationError)


@test("400 unknown source uuid")
def _():
    unknown = "00000000-0000-0000-0000-000000000000"
    req = UserOAuthSourceConnectionRequest(source=UUID(unknown), identifier="x")
    expect_error(lambda: as_super.sources_user_connections_oauth_create(req),
                 400, {"source": [f'Invalid pk "{unknown}" - object does not exist.']}, ValidationError)


@test("400 expires in a wrong format")
def _():
    req = UserOAuthSourceConnectionRequest.model_construct(source=UUID(SOURCE_UUID), identifier="octocat-x", expires="tomorrow")
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    expect_error(lambda: as_super.sources_user_connections_oauth_create(req), 400,
                 {"expires": ["Datetime has wrong format. Use one of these formats instead: "
                              "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}, ValidationError)


@test("400 duplicate (user, source)")
def _():
    expect_error(lambda: create(as_super, "octocat-again"),
                 400, {"non_field_errors": ["The fields user, source must make a unique set."]}, ValidationError)


@test("403 without token (list and create)")
def _():
    anon = api(None)
    body = {"detail": "Authentication credentials were not provided."}
    expect_error(lambda: anon.sources_user_connections_oauth_list(), 403, body, GenericError)
    expect_error(lambda: create(anon, "anon"), 403, body, GenericError)


@test("403 bad token")
def _():
    bad = api(f"not-a-token-{rand()}")
    body = {"detail": "Token invalid/expired"}
    expect_error(lambda: bad.sources_user_connections_oauth_list(), 403, body, GenericError)
    expect_error(lambda: create(bad, "bad"), 403, body, GenericError)


@test("403 alice (no add permission) creating")
def _():
    expect_error(lambda: create(as_alice, "alice-py"),
                 403, {"detail": "You do not have permission to perform this action."}, GenericError)


@test("destroy: 204 empty body, then retrieve -> 404")
def _():
    for key in ("first", "second"):
        row = state[key]
        r = as_super.sources_user_connections_oauth_destroy_with_http_info(row.pk)
        eq(r.status_code, 204, "status")
        eq(r.raw_data, b"", "204 body")
        expect_error(lambda: as_super.sources_user_connections_oauth_retrieve(row.pk), 404, NOT_FOUND)
    eq(as_super.sources_user_connections_oauth_list(source__slug=SOURCE_SLUG).pagination.count, 0, "count after destroy")


@test("no response ever contained the access token sent")
def _():
    check(len(CAPTURED) > 10, "responses were captured")
    leaks = [f"{m} {u} -> {s}" for (m, u, s, body) in CAPTURED if b"gho_secret_" in body]
    eq(leaks, [], "responses containing the token")


passed = sum(RESULTS)
failed = len(RESULTS) - passed
print(f"{SUITE}: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
