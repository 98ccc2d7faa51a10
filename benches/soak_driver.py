#!/usr/bin/env python3
"""Set-up and churn for benches/soak.sh (standard library only).

    soak_driver.py setup API_URL AUTHZ_URL
        signs up three users: `keys` (the first, so an active superadmin; 2FA on, API keys),
        `churn` (sessions) and `steady` (one
        session and its JWT for the wrk traffic); prints JSON with what the others need.
    soak_driver.py churn API_URL AUTHZ_URL SETUP_JSON_FILE STOP_FILE
        until STOP_FILE exists: `churn` logs in (a new session), is allowed by the authz listener
        and logs out (the session revoked), five times a second; `keys`, once per 30-s TOTP
        step pair, creates an HS256 API key, gets one decision signed with it and deletes it.
        Prints `sessions=N keys=K errors=E` (E: every unexpected answer).
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request

UA = "soak-driver"


def totp(secret, at=None):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("User-Agent", UA)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


PASSWORD = "Soak-Tecohvi0"


def step():
    return int(time.time() // 30)


def sign_up(api, email):
    status, headers, body = call("POST", f"{api}/api/v2/barong/identity/users",
                                 {"email": email, "password": PASSWORD})
    if status != 201:
        sys.exit(f"sign-up {email}: {status} {body!r}")
    return session_cookie(headers)


def session_cookie(headers):
    return next((c.split(";")[0] for c in headers.get_all("Set-Cookie") or []
                 if c.startswith("_barong_session=")), None)


def bearer(authz, cookie, path="api/v2/barong/resource/users/me"):
    status, headers, _ = call("GET", f"{authz}/api/v2/auth/{path}", headers={"Cookie": cookie})
    return headers.get("Authorization") if status == 200 else None


def setup(api, authz):
    # The first user is the superadmin, active at once: API keys need an active holder.
    keys_cookie = sign_up(api, "keys@soak.test")
    churn = "churn@soak.test"
    sign_up(api, churn)
    steady_cookie = sign_up(api, "steady@soak.test")
    auth = {"Authorization": bearer(authz, keys_cookie)}
    status, _, body = call("POST", f"{api}/api/v2/barong/resource/otp/generate_qrcode", {}, auth)
    if status != 201:
        sys.exit(f"generate_qrcode: {status} {body!r}")
    url = json.loads(body)["data"]["url"]
    secret = url.split("secret=")[1].split("&")[0]
    status, _, body = call("POST", f"{api}/api/v2/barong/resource/otp/enable",
                           {"code": totp(secret)}, auth)
    if status != 201:
        sys.exit(f"otp/enable: {status} {body!r}")
    # Turning 2FA on ends the user's sessions: log in again, with a code of the next step.
    code, used = fresh_code(secret, step())
    status, headers, body = call("POST", f"{api}/api/v2/barong/identity/sessions",
                                 {"email": "keys@soak.test", "password": PASSWORD, "otp_code": code})
    keys_cookie = session_cookie(headers)
    if status != 200 or keys_cookie is None:
        sys.exit(f"login with 2FA: {status} {body!r}")
    print(json.dumps({
        "churn_email": churn, "keys_cookie": keys_cookie, "otp_secret": secret,
        "otp_step": used, "steady_cookie": steady_cookie,
        "steady_bearer": bearer(authz, steady_cookie),
    }))


def complain(what):
    print(what, file=sys.stderr)
    return 1


def fresh_code(secret, used):
    """A code of a time step after `used` (a used step is refused, as it should be)."""
    while step() <= used:
        time.sleep(0.5)
    return totp(secret), step()


def churn(api, authz, setup_file, stop_file):
    conf = json.load(open(setup_file))
    used = conf["otp_step"]
    sessions = keys = errors = 0
    next_keys = time.time() + 30
    while not os.path.exists(stop_file):
        status, headers, _ = call("POST", f"{api}/api/v2/barong/identity/sessions",
                                  {"email": conf["churn_email"], "password": PASSWORD})
        cookie = session_cookie(headers)
        if status != 200 or cookie is None:
            errors += complain(f"login: {status}")
            time.sleep(1)
            continue
        sessions += 1
        if bearer(authz, cookie, "api/v2/peatio/account/balances") is None:
            errors += complain("session refused by authz")
        status, _, body = call("DELETE", f"{api}/api/v2/barong/identity/sessions",
                               headers={"Cookie": cookie})
        if status != 200:
            errors += complain(f"logout: {status} {body!r}")
        if time.time() >= next_keys:
            failed, used = key_churn(api, authz, conf, used)
            errors += failed
            keys += 1
            next_keys = time.time() + 30
        time.sleep(0.2)
    print(f"sessions={sessions} keys={keys} errors={errors}")


def key_churn(api, authz, conf, used):
    """One API key created, used once and deleted; returns (errors, last used step)."""
    token = bearer(authz, conf["keys_cookie"])
    if token is None:
        return complain("keys user refused by authz"), used
    auth = {"Authorization": token}
    code, used = fresh_code(conf["otp_secret"], used)
    status, _, body = call("POST", f"{api}/api/v2/barong/resource/api_keys",
                           {"algorithm": "HS256", "totp_code": code}, auth)
    if status != 201:
        print(f"api_keys: {status} {body!r}", file=sys.stderr)
        return 1, used
    key = json.loads(body)
    kid, secret = key["kid"], key["secret"]
    nonce = str(int(time.time() * 1000))
    signature = hmac.new(secret.encode(), (nonce + kid).encode(), hashlib.sha256).hexdigest()
    status, _, _ = call("GET", f"{authz}/api/v2/auth/api/v2/peatio/account/balances",
                        headers={"X-Auth-Apikey": kid, "X-Auth-Nonce": nonce,
                                 "X-Auth-Signature": signature})
    errors = complain(f"api key decision: {status}") if status != 200 else 0
    code, used = fresh_code(conf["otp_secret"], used)
    status, _, body = call("DELETE", f"{api}/api/v2/barong/resource/api_keys/{kid}?totp_code={code}",
                           headers=auth)
    if status != 204:
        errors += complain(f"api key delete: {status} {body!r}")
    return errors, used


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(*sys.argv[2:4])
    else:
        churn(*sys.argv[2:6])
