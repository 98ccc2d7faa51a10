"""A software authenticator and client for the passkey tests, built on PyPI's `fido2`: what a
browser and a platform authenticator do, in a file the test drives. One JSON request on
standard input, one JSON answer (the `PublicKeyCredential` as its `toJSON()` gives it) on
standard output; the authenticator's key and counter live in the `state` file.

  {"op": "create", "options": <publicKey options>, "origin": "...", "state": "key.json"}
  {"op": "get", "options": <publicKey options>, "origin": "...", "state": "key.json"}

Test knobs: "rp_id" (sign for another relying party), "counter" (the counter to report, e.g.
lower than the last one, as a cloned authenticator would).
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cose
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

FLAG = AuthenticatorData.FLAG


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def client_data(kind: str, options: dict, origin: str) -> bytes:
    data = CollectedClientData.create(
        type=kind, challenge=unb64(options["challenge"]), origin=origin
    )
    return bytes(data)


def create(request: dict) -> dict:
    options = request["options"]
    rp_id = request.get("rp_id") or options["rp"]["id"]
    key = ec.generate_private_key(ec.SECP256R1())
    credential_id = os.urandom(32)
    public_key = cose.ES256.from_cryptography_key(key.public_key())
    attested = AttestedCredentialData.create(b"\0" * 16, credential_id, public_key)
    counter = int(request.get("counter", 1))
    auth_data = AuthenticatorData.create(
        hashlib.sha256(rp_id.encode()).digest(),
        FLAG.UP | FLAG.UV | FLAG.AT,
        counter,
        bytes(attested),
    )
    attestation = AttestationObject.create("none", auth_data, {})
    state = {
        "credential_id": b64(credential_id),
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "rp_id": rp_id,
        "user_handle": options["user"]["id"],
        "counter": counter,
    }
    with open(request["state"], "w") as f:
        json.dump(state, f)
    return {
        "id": b64(credential_id),
        "rawId": b64(credential_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64(client_data("webauthn.create", options, request["origin"])),
            "attestationObject": b64(bytes(attestation)),
            "transports": ["internal"],
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }


def get(request: dict) -> dict:
    options = request["options"]
    with open(request["state"]) as f:
        state = json.load(f)
    rp_id = request.get("rp_id") or options.get("rpId") or state["rp_id"]
    counter = int(request.get("counter", state["counter"] + 1))
    auth_data = AuthenticatorData.create(
        hashlib.sha256(rp_id.encode()).digest(), FLAG.UP | FLAG.UV, counter
    )
    data = client_data("webauthn.get", options, request["origin"])
    key = serialization.load_pem_private_key(state["private_key"].encode(), None)
    signature = key.sign(bytes(auth_data) + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256()))
    state["counter"] = max(state["counter"], counter)
    with open(request["state"], "w") as f:
        json.dump(state, f)
    return {
        "id": state["credential_id"],
        "rawId": state["credential_id"],
        "type": "public-key",
        "response": {
            "clientDataJSON": b64(data),
            "authenticatorData": b64(bytes(auth_data)),
            "signature": b64(signature),
            "userHandle": state["user_handle"],
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }


def main() -> None:
    request = json.load(sys.stdin)
    answer = {"create": create, "get": get}[request["op"]](request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
