"""``miocreate doctor``: checks an account and its settings against the real service, spending
no credit.

Only requests the reference page documents as free are sent: the token exchange, a task detail
for an id that does not exist, an upload URL, a PUT of a 69-byte picture to it, and its access
URL. Each reply is checked against the documented wire format (the envelope, the field names
and types of ``data``); the creations (which may spend credits) are listed, never sent.
``--record DIR`` saves each exchange redacted (no token, secret or signature): the emulator's
conformance check replays such a recording and compares its own replies' shapes with them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from .._config import Config, Environment
from .._hints import BASE_URL_HINT, connect_error
from .._operations import Operation
from .._proxy import proxy_for
from .._redact import REDACTED, redact_text, redact_url
from .._shapes import DOCUMENTED, ENVELOPE, differences, shape_of
from ._args import Options, add_command
from ._common import Json, print_json
from ._console import stdout_console

if TYPE_CHECKING:
    from ._args import Subcommands

__all__ = ["PROBE_PNG", "register"]

#: A 1x1 PNG: the upload check's file (it needs no credit and no face).
PROBE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c"
    "63f8dfc0000004010180c52a185d0000000049454e44ae426082"
)
#: The id of a task that does not exist, asked for to check the task detail path for free.
MISSING_TASK = 1
#: A clock further off than this makes expiry times wrong (tokens, signed URLs).
MAX_SKEW = 30.0
#: Reply headers worth keeping in a recording.
_KEPT_HEADERS = ("content-type", "date", "server", "x-request-id", "cf-ray")
#: Fields whose values are secrets, in requests and replies.
_SECRET_FIELDS = frozenset({"access_token", "client_secret", "client_id", "token"})


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "doctor",
        "check credentials, base URL, paths, clock and proxy against the service (no credit)",
        doctor,
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="save each exchange here, redacted, for the emulator's conformance check",
    )


@attrs.frozen
class Check:
    """One verdict: ``status`` is ok, warn, fail or skip; ``proves`` says what an ok means."""

    name: str
    status: str
    detail: str
    proves: str


@attrs.frozen
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


class _Unreachable(Exception):
    """No reply: the checks that need one are skipped."""


async def doctor(options: Options) -> int:
    config = Config.from_env()
    if options.base_url:
        config = attrs.evolve(config, base_url=options.base_url)
    env = Environment.read()
    record = options.optional_text("record")
    folder = Path(record) if record else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    checks = await _Doctor(config, env, options.token, folder).run()
    failed = any(check.status == "fail" for check in checks)
    if options.json:
        print_json(
            {
                "base_url": config.base_url,
                "ok": not failed,
                "checks": [_check_json(check) for check in checks],
                "recorded": str(folder) if folder is not None else None,
            }
        )
    else:
        console = stdout_console()
        console.print(f"miocreate doctor: {config.base_url}")
        styles = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for check in checks:
            console.print(
                f"  [{styles[check.status]}]{check.status:<4}[/] {check.name:<12} {check.detail}"
            )
        if folder is not None:
            console.print(f"Recorded the exchanges (redacted) in {folder}")
    return 1 if failed else 0


def _check_json(check: Check) -> dict[str, Json]:
    return {
        "name": check.name,
        "status": check.status,
        "detail": check.detail,
        "proves": check.proves,
    }


class _Doctor:
    def __init__(
        self, config: Config, env: Environment, token: str | None, folder: Path | None
    ) -> None:
        self.config = config
        self.env = env
        self.token = token or env.token
        self.folder = folder
        self.checks: list[Check] = []
        self.recorded = 0
        self.proxy = proxy_for(config.base_url)

    def add(self, name: str, status: str, detail: str, proves: str) -> None:
        self.checks.append(Check(name, status, detail, proves))

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.env.client_id, self.env.client_secret) if s]

    async def run(self) -> list[Check]:
        self.add(
            "proxy",
            "ok",
            f"through {redact_url(self.proxy)}" if self.proxy else "none: connecting directly",
            "which proxy the client's requests go through (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)",
        )
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        headers = {"User-Agent": self.config.user_agent, "Accept": "application/json"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
            self.http = http
            with contextlib.suppress(_Unreachable):
                await self._checks()
        self.add(
            "creations",
            "skip",
            "not sent: "
            + ", ".join(op.value for op in Operation if op.creates_task)
            + " may spend a credit",
            "nothing: their paths are settings (Config.paths) until the service confirms them",
        )
        return self.checks

    async def _checks(self) -> None:
        reply = await self._credentials()
        if reply is not None:
            self._clock(reply)
        if self.token is None:
            return
        await self._task_detail()
        key = await self._upload()
        if key is not None:
            await self._access_url(key)

    async def _credentials(self) -> _Reply | None:
        proves = "the key pair is valid and the token endpoint answers as documented"
        if self.token is not None:
            self.add("credentials", "skip", "a token was given: not exchanged", proves)
            return None
        if not (self.env.client_id and self.env.client_secret):
            self.add(
                "credentials",
                "fail",
                "none: set MIOCREATE_CLIENT_ID and MIOCREATE_CLIENT_SECRET (or MIOCREATE_TOKEN)",
                proves,
            )
            return None
        body = {"client_id": self.env.client_id, "client_secret": self.env.client_secret}
        reply = await self._api("credentials", Operation.TOKEN, body)
        data = self._envelope("credentials", reply, Operation.TOKEN, proves)
        if isinstance(data, dict) and isinstance(data.get("access_token"), str):
            self.token = data["access_token"]
            self.add(
                "credentials",
                "ok",
                f"token exchanged (expires in {data.get('expires_in')} s)",
                proves,
            )
        return reply

    def _clock(self, reply: _Reply) -> None:
        proves = "this machine's clock agrees with the service's (token and URL expiry times)"
        date = reply.headers.get("Date")
        if not date:
            self.add("clock", "skip", "the reply has no Date header", proves)
            return
        try:
            skew = parsedate_to_datetime(date).timestamp() - time.time()
        except (TypeError, ValueError):
            self.add("clock", "warn", f"unreadable Date header {date!r}", proves)
            return
        status = "ok" if abs(skew) <= MAX_SKEW else "warn"
        ahead = "ahead of" if skew > 0 else "behind"
        self.add(
            "clock", status, f"the service's clock is {abs(skew):.0f} s {ahead} this one", proves
        )

    async def _task_detail(self) -> None:
        proves = "the token is accepted and the task detail path and method answer envelopes"
        if self.config.task_detail_method == "GET":
            reply = await self._api(
                "task_detail", Operation.TASK_DETAIL, None, params={"id": str(MISSING_TASK)}
            )
        else:
            reply = await self._api("task_detail", Operation.TASK_DETAIL, {"id": MISSING_TASK})
        self._envelope("task_detail", reply, Operation.TASK_DETAIL, proves, missing=True)

    async def _upload(self) -> str | None:
        proves = "the upload URL path answers as documented and its presigned PUT works"
        body = {"file_name": "miocreate-doctor.png"}
        reply = await self._api("upload_url", Operation.UPLOAD_URL, body)
        data = self._envelope("upload_url", reply, Operation.UPLOAD_URL, proves)
        if not isinstance(data, dict) or not isinstance(data.get("upload_url"), str):
            return None
        url, key = data["upload_url"], data.get("key")
        try:
            async with self.http.put(
                url,
                data=PROBE_PNG,
                headers={"Content-Type": "image/png"},
                skip_auto_headers=("User-Agent",),
                proxy=proxy_for(url),
            ) as response:
                text = (await response.content.read(4096)).decode("utf-8", "replace")
                sent = {"base64": base64.b64encode(PROBE_PNG).decode()}
                self._record("upload", "PUT", url, sent, response.status, response.headers, text)
        except aiohttp.ClientError as exc:
            self.add("upload", "fail", f"PUT to storage failed: {type(exc).__name__}", proves)
            return None
        if 200 <= response.status < 300:
            self.add("upload", "ok", f"{len(PROBE_PNG)} bytes stored as {key}", proves)
            return key if isinstance(key, str) else None
        self.add("upload", "fail", f"storage answered HTTP {response.status}", proves)
        return None

    async def _access_url(self, key: str) -> None:
        proves = "the access URL path answers as documented for an uploaded key"
        reply = await self._api("access_url", Operation.ACCESS_URL, {"key": key})
        self._envelope("access_url", reply, Operation.ACCESS_URL, proves)

    async def _api(
        self,
        name: str,
        operation: Operation,
        body: dict[str, Any] | None,
        params: dict[str, str] | None = None,
    ) -> _Reply:
        url = self.config.url(operation)
        headers = {}
        if operation is not Operation.TOKEN and self.token:
            headers["Authorization"] = f"{self.config.auth_scheme} {self.token}"
        method = "GET" if params is not None else "POST"
        try:
            async with self.http.request(
                method, url, json=body, params=params, headers=headers, proxy=self.proxy
            ) as response:
                raw = await response.read()
                reply_url = str(response.url)
        except aiohttp.ClientError as exc:
            error = connect_error(exc, url, proxy=self.proxy, reached=False, operation=name)
            detail = error.message if error is not None else f"{type(exc).__name__}: {exc}"
            self.add("base_url", "fail", redact_text(detail, self.secrets()), _BASE_PROVES)
            raise _Unreachable from None
        try:
            decoded: Any = json.loads(raw)
        except ValueError:
            decoded = raw[:200].decode("utf-8", "replace")
        reply = _Reply(response.status, dict(response.headers), decoded)
        self._record(name, method, reply_url, body, reply.status, reply.headers, decoded)
        if not any(check.name == "base_url" for check in self.checks):
            self._base_url(reply, url)
        return reply

    def _base_url(self, reply: _Reply, url: str) -> None:
        if isinstance(reply.body, dict) and ("code" in reply.body or "access_token" in reply.body):
            self.add("base_url", "ok", f"{url} answers with API envelopes", _BASE_PROVES)
            return
        self.add(
            "base_url",
            "fail",
            f"{url} answered HTTP {reply.status} without an API envelope: it is not a "
            f"MioCreate API; {BASE_URL_HINT} and Config.paths",
            _BASE_PROVES,
        )
        raise _Unreachable

    def _envelope(
        self,
        name: str,
        reply: _Reply,
        operation: Operation,
        proves: str,
        *,
        missing: bool = False,
    ) -> Any:
        """``data`` of a documented envelope, or None after adding the failed check."""
        body = reply.body
        if operation is Operation.TOKEN and isinstance(body, dict) and "code" not in body:
            body = {"code": 200, "message": "", "data": body}  # a bare OAuth reply
        wrong = (
            differences(ENVELOPE, shape_of(body), extra=False)
            if isinstance(body, dict)
            else ["not a JSON object"]
        )
        if wrong:
            self.add(name, "fail", "not the documented envelope: " + "; ".join(wrong), proves)
            return None
        code, data = body["code"], body.get("data")
        if code == 401:
            self.add(name, "fail", "code 401: the token or key pair was refused", proves)
            return None
        if missing:
            # Any envelope but 401: the path exists and took the token; no task was made.
            self.add(name, "ok", f"code {code} for a task that does not exist", proves)
            return data
        if code != 200:
            message = redact_text(str(body.get("message"))[:200], self.secrets())
            self.add(name, "fail", f"code {code}: {message}", proves)
            return None
        wrong = differences(DOCUMENTED[operation.value], shape_of(data), extra=False)
        if wrong:
            self.add(name, "fail", "data differs from the page: " + "; ".join(wrong), proves)
            return None
        if name != "credentials":
            self.add(name, "ok", "code 200, data as documented", proves)
        return data

    def _record(
        self,
        name: str,
        method: str,
        url: str,
        body: Any,
        status: int,
        headers: Mapping[str, str],
        reply: Any,
    ) -> None:
        if self.folder is None:
            return
        self.recorded += 1
        lowered = {key.lower(): value for key, value in headers.items()}
        exchange = {
            "name": name,
            "operation": name if name != "credentials" else Operation.TOKEN.value,
            "method": method,
            "url": redact_url(url),
            # None for storage (its host may be the API's: the emulator's is).
            "path": None if name == "upload" else _path(url, self.config.base_url),
            "request": {"json": self._redacted(body)},
            "response": {
                "status": status,
                "headers": {key: lowered[key] for key in _KEPT_HEADERS if key in lowered},
                "json": self._redacted(reply),
                "shape": shape_of(reply),
            },
        }
        path = self.folder / f"{self.recorded:02d}-{name}.json"
        path.write_text(json.dumps(exchange, indent=2) + "\n", encoding="utf-8")

    def _redacted(self, value: Any) -> Any:
        """``value`` with secrets, tokens and URL signatures replaced (types kept)."""
        if isinstance(value, dict):
            return {
                key: REDACTED
                if key in _SECRET_FIELDS and isinstance(item, str)
                else self._redacted(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._redacted(item) for item in value]
        if isinstance(value, str):
            text = redact_url(value) if value.startswith(("http://", "https://")) else value
            return redact_text(text, self.secrets())
        return value


_BASE_PROVES = "the base URL reaches a MioCreate API (its envelope), through the proxy if any"


def _path(url: str, base_url: str) -> str | None:
    """The API path (and query) of ``url``, or None for another host (storage)."""
    return redact_url(url[len(base_url) :]) if url.startswith(base_url) else None
