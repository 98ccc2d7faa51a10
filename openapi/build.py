#!/usr/bin/env python3
"""Builds openapi/user_api.json, the Swagger 2.0 document the REST listener serves, from
Barong's own (the reference copy of its user API: identity, public, resource), changed where
this server answers differently. Re-run after changing the list below:

    python3 openapi/build.py /path/to/barong/user_api.json > openapi/user_api.json
"""
import json
import sys

# Barong paths this server does not serve yet (KYC is to come; swagger_doc is Barong's Grape
# internals): a document listing them would not describe this server.
NOT_SERVED = [
    "/api/v2/barong/resource/profiles",
    "/api/v2/barong/resource/profiles/me",
    "/api/v2/barong/resource/phones",
    "/api/v2/barong/resource/phones/send_code",
    "/api/v2/barong/resource/phones/verify",
    "/api/v2/barong/resource/documents",
    "/api/v2/barong/resource/addresses",
    "/api/v2/barong/public/kyc",
    "/api/v2/barong/resource/swagger_doc",
    "/api/v2/barong/resource/swagger_doc/{name}",
]


# Grape's generator documents these list answers as one object; they are JSON arrays (in Barong
# too). Each (path, method) gets `type: array` around its 200 schema.
ARRAYS = [
    ("/api/v2/barong/resource/api_keys", "get"),
    ("/api/v2/barong/resource/labels", "get"),
    ("/api/v2/barong/resource/service_accounts", "get"),
    ("/api/v2/barong/resource/service_accounts/api_keys", "get"),
    ("/api/v2/barong/resource/users/activity/{topic}", "get"),
]


def fix_types(node):
    """Barong's document has `"type": "s"` (a typo of string): not a Swagger type."""
    if isinstance(node, dict):
        if node.get("type") == "s":
            node["type"] = "string"
        for value in node.values():
            fix_types(value)
    elif isinstance(node, list):
        for value in node:
            fix_types(value)


def plural_refs_as_arrays(definitions):
    """Grape documents `labels`, `phones`, `profiles`, `data_storages`, ... of a user as one
    object; they are arrays."""
    for definition in definitions.values():
        for name, prop in definition.get("properties", {}).items():
            if "$ref" in prop and name.endswith("s"):
                definition["properties"][name] = {"type": "array", "items": prop}


# Properties this server (and Barong) answers as `null` when unset; Swagger 2.0 says so with
# `x-nullable`.
NULLABLE = ["data", "referral_uid", "username", "description", "scope", "metadata"]


def mark_nullable(definitions):
    for definition in definitions.values():
        for name, prop in definition.get("properties", {}).items():
            if name in NULLABLE:
                prop["x-nullable"] = True


def main(source):
    doc = json.load(open(source))
    for path in NOT_SERVED:
        doc["paths"].pop(path, None)
    for path, method in ARRAYS:
        response = doc["paths"][path][method]["responses"]["200"]
        if "schema" in response and response["schema"].get("type") != "array":
            response["schema"] = {"type": "array", "items": response["schema"]}
    fix_types(doc)
    plural_refs_as_arrays(doc["definitions"])
    mark_nullable(doc["definitions"])
    # Paths carry the full prefix, so the base is the root; the host is wherever it is served.
    doc["basePath"] = "/"
    doc.pop("host", None)
    doc["info"]["description"] = (
        "RESTful API of barong-rs, a Barong 2.7-compatible auth server "
        "(Barong's user API: identity, public, resource)"
    )
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/swagger/user_api.json")
