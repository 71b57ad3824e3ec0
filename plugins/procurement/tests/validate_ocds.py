#!/usr/bin/python3
"""Validates an OCDS release package against the OCDS 1.1.5 schema.

    validate_ocds.py SCHEMA_DIR PACKAGE.json

Run with Debian's /usr/bin/python3 and python3-jsonschema (draft-04): the
release-package schema, its $ref to the release schema resolved to the copy
in SCHEMA_DIR, every "format": "date-time" checked as RFC 3339, and the
closed codelists the export uses (tender, award and contract statuses,
party roles, release tags, procurement methods, award criteria; bid
statuses from the bid extension).  Prints each problem and exits 1, or
prints "valid" and exits 0.
"""
import csv
import json
import os
import re
import sys

import jsonschema

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
BID_STATUS = {"pending", "valid", "disqualified", "withdrawn"}


def codes(schema_dir, name):
    with open(os.path.join(schema_dir, name), newline="") as f:
        return {row["Code"] for row in csv.DictReader(f)}


def main():
    schema_dir, path = sys.argv[1], sys.argv[2]
    with open(os.path.join(schema_dir, "release-package-schema.json")) as f:
        package_schema = json.load(f)
    with open(os.path.join(schema_dir, "release-schema.json")) as f:
        release_schema = json.load(f)
    with open(path) as f:
        doc = json.load(f)

    resolver = jsonschema.RefResolver.from_schema(
        package_schema, store={release_schema["id"]: release_schema})
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time")
    def date_time(value):
        return value is None or bool(RFC3339.match(value))

    validator = jsonschema.Draft4Validator(
        package_schema, resolver=resolver, format_checker=checker)
    problems = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                for e in validator.iter_errors(doc)]

    def need(value, allowed, where):
        if value not in allowed:
            problems.append("%s: %r is not in the codelist" % (where, value))

    tender_status = codes(schema_dir, "tenderStatus.csv")
    award_status = codes(schema_dir, "awardStatus.csv")
    contract_status = codes(schema_dir, "contractStatus.csv")
    roles = codes(schema_dir, "partyRole.csv")
    tags = codes(schema_dir, "releaseTag.csv")
    methods = codes(schema_dir, "method.csv")
    criteria = codes(schema_dir, "awardCriteria.csv")
    for i, r in enumerate(doc.get("releases", [])):
        at = "releases/%d" % i
        for t in r.get("tag", []):
            need(t, tags, at + "/tag")
        tender = r.get("tender", {})
        need(tender.get("status"), tender_status, at + "/tender/status")
        need(tender.get("procurementMethod"), methods,
             at + "/tender/procurementMethod")
        need(tender.get("awardCriteria"), criteria,
             at + "/tender/awardCriteria")
        for p in r.get("parties", []):
            for role in p.get("roles", []):
                need(role, roles, at + "/parties/" + p.get("id", "?"))
        for a in r.get("awards", []):
            need(a.get("status"), award_status, at + "/awards/status")
        for c in r.get("contracts", []):
            need(c.get("status"), contract_status, at + "/contracts/status")
        for b in r.get("bids", {}).get("details", []):
            need(b.get("status"), BID_STATUS, at + "/bids/status")
    for p in problems:
        print(p)
    if problems:
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
