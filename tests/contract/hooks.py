"""Schemathesis hooks for the contract test (tests/e2e/contract.rs names this file in
SCHEMATHESIS_HOOKS). Each one keeps a request what its test case says it is; none of them
touches a response or a check."""

import itertools
import json
import os
import pathlib
import re
import uuid
import zlib

import schemathesis
from schemathesis.generation.modes import GenerationMode

OPENAPI = json.loads((pathlib.Path(__file__).parents[2] / "api" / "openapi.json").read_text())

# components.parameters.IdempotencyKey.
KEY_PATTERN = re.compile(OPENAPI["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"])


def optional_header_patterns(path, method):
    """The optional header parameters of an operation that declare a pattern."""
    operation = OPENAPI["paths"].get(path, {}).get(method.lower(), {})
    patterns = {}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and not parameter.get("required"):
            pattern = parameter.get("schema", {}).get("pattern")
            if pattern:
                patterns[parameter["name"].lower()] = re.compile(pattern)
    return patterns


# A hold that exists (tests/e2e/contract.rs makes it): ids the fuzzer draws from the pattern
# name none, so every other positive case on a hold names this one instead, and reaches
# the operation (a commit, then 200 or 409) rather than only its 404.
RESERVATION = os.environ.get("INVENTORY_RESERVATION")
PRODUCT = os.environ.get("INVENTORY_PRODUCT")
ALTERNATE = itertools.cycle([True, False])


def name_a_real_hold(case):
    meta = case.meta
    if RESERVATION is None or meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    if case.operation.path.startswith("/reservations/{id}") and next(ALTERNATE):
        case.path_parameters["id"] = RESERVATION


# Real Spin (tests/e2e/contract.rs sets INVENTORY_RUNTIME): Spin 4.1.0-pre0 answers a
# request whose header value is not UTF-8 with an empty 500 before the app runs (README
# "On Spin"); the host hands such a value to the app, which refuses it with a 400, and the
# host's run holds it to that. On Spin that one answer to such a request is not the app's
# failure; any other failure of the same request still is.
ON_SPIN = os.environ.get("INVENTORY_RUNTIME") == "spin"
NOT_UTF8_ON_SPIN = set()


def note_headers_spin_refuses(case, headers):
    if ON_SPIN and any(isinstance(v, str) and not v.isascii() for v in headers.values()):
        NOT_UTF8_ON_SPIN.add(id(case))


@schemathesis.hook
def filter_failure(context, failure, case, response):
    spins_refusal = (
        id(case) in NOT_UTF8_ON_SPIN and response.status_code == 500 and not response.content
    )
    return not spins_refusal


# Locations that exist and stay active (tests/e2e/contract.rs makes `contract-to`; `default`
# always exists): a request naming a location the fuzzer made up is a 422 (bodies) or a 400
# (queries) by contract, whatever the schema says, so a positive case names these instead,
# and reaches the allocation rather than its refusal. Negative cases keep what they drew.
LOCATIONS = ["default", "contract-to"]
# The fuzzer may change or delete locations, but not these two (a positive case on one
# names a location that does not exist instead, and gets its 404).
PROTECTED = set(LOCATIONS)


def real_location(drawn):
    # crc32, not hash(): the same seed draws the same locations in every run.
    return LOCATIONS[zlib.crc32(str(drawn).encode()) % len(LOCATIONS)]


def real_locations(drawn):
    return LOCATIONS[: max(1, min(len(drawn), len(LOCATIONS)))]


def name_real_locations(body):
    if not isinstance(body, dict):
        return
    if isinstance(body.get("location_id"), str):
        body["location_id"] = real_location(body["location_id"])
    if isinstance(body.get("locations"), list):
        body["locations"] = real_locations(body["locations"])
    for line in body.get("lines") or []:
        name_real_locations(line)


def name_real_locations_in(case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    path, method = case.operation.path, case.operation.method.upper()
    if path == "/locations/{location_id}" and method in ("PATCH", "DELETE"):
        if case.path_parameters.get("location_id") in PROTECTED:
            case.path_parameters["location_id"] = "not-" + case.path_parameters["location_id"]
        return
    if path == "/locations":
        return
    # A level of a real location, every other time of a real product (the one
    # tests/e2e/contract.rs stocks at `default`): a 200, a 409 for a level with stock, a 412
    # for a made-up ETag, rather than only ever 404.
    parameters = case.path_parameters or {}
    if "location_id" in parameters:
        parameters["location_id"] = real_location(parameters["location_id"])
        if PRODUCT is not None and "id" in parameters and next(ALTERNATE):
            parameters["id"] = int(PRODUCT)
    if path == "/transfers" and isinstance(case.body, dict):
        start = real_location(str(case.body.get("from")))
        case.body["from"] = start
        case.body["to"] = next(l for l in LOCATIONS if l != start)
        return
    name_real_locations(case.body)
    query = case.query
    if query:
        # OpenAPI cannot say that two query parameters exclude each other (the operation's
        # description does): a positive case gives one.
        if "location_id" in query and "locations" in query:
            del query["locations"]
        if isinstance(query.get("location_id"), str) and path != "/product/{id}/movements":
            query["location_id"] = real_location(query["location_id"])
        if isinstance(query.get("locations"), str):
            query["locations"] = ",".join(real_locations(query["locations"].split(",")))


@schemathesis.hook
def before_call(context, case, **kwargs):
    name_a_real_hold(case)
    name_real_locations_in(case)
    headers = case.headers
    if not headers:
        return
    note_headers_spin_refuses(case, headers)
    # An Idempotency-Key names one logical request: reusing it with another body is a 422
    # `idempotency-conflict`, by contract. The fuzzer draws keys from a small space and
    # would reuse them, so a well-formed key becomes a fresh one; a malformed key stays, so
    # the app's refusal of it is still tested.
    for name, value in headers.items():
        if name.lower() == "idempotency-key" and isinstance(value, str) and KEY_PATTERN.match(value):
            headers[name] = uuid.uuid4().hex
    # Schemathesis 4.32.5's coverage phase cannot generate a valid value for a header whose
    # pattern needs characters other than letters and digits (If-Match needs `"` or `*`),
    # and then fills the header of its positive cases with a value from its negative ones
    # (`If-Match: 0`), still calling them positive. Such a header is optional, so a
    # positive case goes without it instead of claiming a refused value was valid.
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    patterns = optional_header_patterns(case.operation.path, case.operation.method)
    for name in list(headers):
        pattern = patterns.get(name.lower())
        if pattern and not (isinstance(headers[name], str) and pattern.match(headers[name])):
            del headers[name]
