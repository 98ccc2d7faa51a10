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


def main(source):
    doc = json.load(open(source))
    for path in NOT_SERVED:
        doc["paths"].pop(path, None)
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
