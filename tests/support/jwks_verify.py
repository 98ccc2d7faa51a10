"""Verifies a session JWT the way an upstream does with PyJWT's PyJWKClient: the key is
picked by the token's kid from the JWKS at the URL (fetched fresh each run).

usage: jwks_verify.py JWKS_URL TOKEN AUDIENCE
prints "ok <kid>" and exits 0, or prints the error and exits 1.
"""
import sys

import jwt


def main() -> int:
    url, token, audience = sys.argv[1:4]
    try:
        client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False)
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "ES256", "EdDSA"],
            audience=audience,
            issuer="barong",
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
        if claims.get("sub") != "session":
            raise ValueError("not a session token")
    except Exception as error:  # noqa: BLE001 - the test reads the reason
        print(f"refused {type(error).__name__}: {error}")
        return 1
    print(f"ok {key.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
