"""Drives Debian's Chromium headless through the DevTools protocol (over --remote-debugging-pipe,
no extra package) for the passkey browser test: opens the test page, adds a virtual
authenticator (WebAuthn.enable / WebAuthn.addVirtualAuthenticator, CTAP2, internal, resident
keys, user verification), runs the page's `run(email, password)` and prints what it returned.

  cdp_passkey.py CHROMIUM URL EMAIL PASSWORD
"""

import json
import os
import subprocess
import sys
import tempfile
import time


class Pipe:
    def __init__(self, write_fd, read_fd):
        self.write = os.fdopen(write_fd, "wb", buffering=0)
        self.read = os.fdopen(read_fd, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0

    def call(self, method, params=None, session=None, timeout=40):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.write.write(json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" not in self.buffer:
                chunk = self.read.read(65536)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
        raise RuntimeError(f"{method}: no answer in {timeout}s")


def main():
    chromium, url, email, password = sys.argv[1:5]
    # Chromium reads commands from fd 3 and writes answers to fd 4.
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="barong-chromium-")

    def wire_fds():
        # Through spare numbers first: the pipe ends may themselves be 3 or 4.
        read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    browser = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        # Kept open across the exec (subprocess closes the others after `wire_fds`).
        pass_fds=(3, 4),
        preexec_fn=wire_fds,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = Pipe(to_chrome_w, from_chrome_r)
    try:
        targets = pipe.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = pipe.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]
        pipe.call("Page.navigate", {"url": url}, session)
        for _ in range(100):
            state = pipe.call(
                "Runtime.evaluate",
                {"expression": "document.readyState + ':' + typeof run", "returnByValue": True},
                session,
            )["result"].get("value")
            if state == "complete:function":
                break
            time.sleep(0.1)
        pipe.call("WebAuthn.enable", {}, session)
        pipe.call(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
            session,
        )
        result = pipe.call(
            "Runtime.evaluate",
            {
                "expression": f"run({json.dumps(email)}, {json.dumps(password)})",
                "awaitPromise": True,
                "returnByValue": True,
            },
            session,
        )
        if "exceptionDetails" in result:
            print(json.dumps({"exception": result["exceptionDetails"]}))
        else:
            print(result["result"].get("value"))
        try:
            pipe.call("Browser.close", timeout=5)
        except RuntimeError:
            pass
    finally:
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()


if __name__ == "__main__":
    main()
