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


# Beyond Barong: endpoints and fields this server adds (docs/sessions.md), in Barong's style.
PAGE_PARAMETERS = [
    {"in": "query", "name": "page", "description": "Page number (defaults to 1).",
     "type": "integer", "format": "int32", "default": 1, "required": False},
    {"in": "query", "name": "limit",
     "description": "Number of sessions per page (defaults to 100, maximum is 100).",
     "type": "integer", "format": "int32", "default": 100, "minimum": 1, "maximum": 100,
     "required": False},
]

SESSION = {
    "type": "object",
    "description": "A live session of the user (one per device logged in)",
    "properties": {
        "id": {"type": "string", "description": "Opaque id (not the cookie)"},
        "user_agent": {"type": "string", "x-nullable": True},
        "device": {"type": "string", "description": "Browser and OS read from the agent"},
        "user_ip": {"type": "string", "description": "Login address (masked when masking is on)"},
        "user_ip_country": {"type": "string", "x-nullable": True},
        "authenticated_with": {"type": "string",
                               "description": "password, password+2fa, password+passkey, passkey "
                                              "or email"},
        "created_at": {"type": "string"},
        "last_seen_at": {"type": "string",
                         "description": "Last use, to within BARONG_SESSION_WRITE_BEHIND"},
        "expire_at": {"type": "string"},
        "current": {"type": "boolean",
                    "description": "The session the request came from"},
    },
}

EXTENSIONS = {
    "/api/v2/barong/resource/sessions": {
        "get": {
            "description": "List the live sessions of the current account, newest first.",
            "produces": ["application/json"],
            "parameters": PAGE_PARAMETERS,
            "responses": {
                "200": {"description": "List the live sessions of the current account.",
                        "schema": {"type": "array",
                                   "items": {"$ref": "#/definitions/API_V2_Entities_Session"}}},
                "401": {"description": "Invalid bearer token"},
                "422": {"description": "Validation errors"},
            },
            "tags": ["sessions"],
            "operationId": "getApiV2BarongResourceSessions",
        },
        "delete": {
            "description": "End every session of the current account but the current one.",
            "produces": ["application/json"],
            "responses": {
                "204": {"description": "Ended"},
                "401": {"description": "Invalid bearer token"},
            },
            "tags": ["sessions"],
            "operationId": "deleteApiV2BarongResourceSessions",
        },
    },
    "/api/v2/barong/resource/sessions/{id}": {
        "delete": {
            "description": "End one session of the current account.",
            "produces": ["application/json"],
            "parameters": [{"in": "path", "name": "id", "description": "Session id",
                            "type": "string", "required": True}],
            "responses": {
                "204": {"description": "Ended"},
                "401": {"description": "Invalid bearer token"},
                "404": {"description": "No such session of the current account"},
            },
            "tags": ["sessions"],
            "operationId": "deleteApiV2BarongResourceSessionsId",
        },
    },
}


# Passkeys (docs/passkeys.md): WebAuthn options and answers are WebAuthn's JSON, passed through.
PASSKEY = {
    "type": "object",
    "description": "A passkey (WebAuthn credential) of the user; its key never leaves the server",
    "properties": {
        "id": {"type": "integer", "format": "int64"},
        "name": {"type": "string"},
        "created_at": {"type": "string"},
        "last_used_at": {"type": "string", "x-nullable": True},
    },
}

WEBAUTHN_OPTIONS = {
    "type": "object",
    "description": "{publicKey: ...}, the WebAuthn options as parseCreationOptionsFromJSON / "
                   "parseRequestOptionsFromJSON take them",
    "properties": {"publicKey": {"type": "object"}},
}


def credential_parameter(description):
    return {"in": "body", "name": "body", "required": True, "schema": {
        "type": "object", "required": ["credential"],
        "properties": {"credential": {"type": "object", "description": description},
                       "name": {"type": "string", "description": "Name (registration only)"}},
    }}


def passkey_operation(method, path, description, responses, parameters=None, tag="passkeys"):
    operation = {
        "description": description,
        "produces": ["application/json"],
        "consumes": ["application/json"],
        "responses": responses,
        "tags": [tag],
        "operationId": method + "".join(
            part.capitalize() for part in
            path.replace("{", "").replace("}", "").replace("_", "/").split("/") if part),
    }
    if parameters:
        operation["parameters"] = parameters
    return operation


ID_PARAMETER = {"in": "path", "name": "id", "description": "Passkey id", "type": "integer",
                "format": "int64", "required": True}
PASSKEY_REF = {"$ref": "#/definitions/API_V2_Entities_Passkey"}
UNAUTHORIZED = {"description": "Invalid bearer token"}
INVALID = {"description": "Validation errors, or passkeys are off (resource.passkey.disabled)"}
P = "/api/v2/barong/"
# The proof a change to the passkeys asks for (docs/passkeys.md, "Proof for changes").
CONFIRMATION = [
    {"in": "formData", "name": "password", "description": "The account's password",
     "type": "string", "required": False},
    {"in": "formData", "name": "otp_code", "description": "A TOTP code (2FA on)",
     "type": "string", "required": False}]

PASSKEY_PATHS = {
    P + "resource/passkeys/options": {"post": passkey_operation(
        "post", P + "resource/passkeys/options",
        "Options to register a passkey (navigator.credentials.create); needs otp_code with "
        "2FA on, else password.",
        {"201": {"description": "Creation options", "schema": WEBAUTHN_OPTIONS},
         "401": UNAUTHORIZED, "422": INVALID},
        CONFIRMATION)},
    P + "resource/passkeys": {
        "get": passkey_operation(
            "get", P + "resource/passkeys", "List the passkeys of the current account.",
            {"200": {"description": "The passkeys, oldest first",
                     "schema": {"type": "array", "items": PASSKEY_REF}},
             "401": UNAUTHORIZED}),
        "post": passkey_operation(
            "post", P + "resource/passkeys",
            "Register a passkey: the authenticator's answer to the options.",
            {"201": {"description": "Registered", "schema": PASSKEY_REF},
             "401": UNAUTHORIZED, "422": INVALID},
            [credential_parameter("PublicKeyCredential.toJSON() of navigator.credentials.create")]),
    },
    P + "resource/passkeys/{id}": {
        "patch": passkey_operation(
            "patch", P + "resource/passkeys/{id}", "Rename a passkey.",
            {"200": {"description": "Renamed", "schema": PASSKEY_REF},
             "401": UNAUTHORIZED, "404": {"description": "No such passkey"}, "422": INVALID},
            [ID_PARAMETER, {"in": "formData", "name": "name", "description": "New name",
                            "type": "string", "required": True}]),
        "delete": passkey_operation(
            "delete", P + "resource/passkeys/{id}",
            "Delete a passkey; the last one also needs password or otp_code.",
            {"204": {"description": "Deleted"}, "401": UNAUTHORIZED,
             "404": {"description": "No such passkey"}, "422": INVALID},
            [ID_PARAMETER] + CONFIRMATION),
    },
    P + "identity/sessions/passkey/options": {"post": passkey_operation(
        "post", P + "identity/sessions/passkey/options",
        "Options to log in with a passkey: with email and password the second step of a login, "
        "without them a passwordless login (when enabled).",
        {"201": {"description": "Request options", "schema": WEBAUTHN_OPTIONS},
         "401": {"description": "Invalid email or password"},
         "403": {"description": "Passwordless login is off"},
         "422": INVALID, "429": {"description": "Too many attempts"}},
        [{"in": "formData", "name": "email", "type": "string", "required": False},
         {"in": "formData", "name": "password", "type": "string", "required": False},
         {"in": "formData", "name": "captcha_response", "type": "string", "required": False}],
        tag="sessions")},
    P + "identity/sessions/passkey": {"post": passkey_operation(
        "post", P + "identity/sessions/passkey",
        "Log in with the authenticator's answer to passkey login options.",
        {"200": {"description": "Logged in",
                 "schema": {"$ref": "#/definitions/API_V2_Entities_UserWithFullInfo"}},
         "401": {"description": "Refused passkey answer"}, "422": INVALID},
        [credential_parameter("PublicKeyCredential.toJSON() of navigator.credentials.get")],
        tag="sessions")},
}


def add_extensions(doc):
    doc["paths"].update(EXTENSIONS)
    doc["paths"].update(PASSKEY_PATHS)
    doc["definitions"]["API_V2_Entities_Passkey"] = PASSKEY
    doc["definitions"]["API_V2_Entities_Session"] = SESSION
    doc["definitions"]["API_V2_Entities_APIKey"]["properties"]["last_used_at"] = {
        "type": "string",
        "description": "Last authenticated use (to within BARONG_SESSION_WRITE_BEHIND)",
        "x-nullable": True,
    }


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
    add_extensions(doc)
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
