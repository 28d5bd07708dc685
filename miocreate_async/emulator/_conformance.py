"""Replaying a ``miocreate doctor --record`` recording against the emulator: does it answer the
same requests with the same codes and the same shapes (field names and value types) as the
service that was recorded?

The recording is the real service's word on what the reference page leaves unclear; a
difference is a place where the emulator (or the client's defaults) should follow it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp

from .._shapes import Shape, differences, shape_of

__all__ = ["replay_recording"]


async def replay_recording(
    folder: str | os.PathLike[str], base_url: str, client_id: str, client_secret: str
) -> list[str]:
    """Send each recorded exchange in ``folder`` to the API at ``base_url`` (an emulator's
    ``url``, with its key pair) and return how its replies differ, one line each (empty: the
    same codes and shapes). Account-specific values are replaced: the credentials by the given
    ones, the token by the one they get, an uploaded key by the one the replay uploaded."""
    exchanges = await asyncio.to_thread(_load, Path(folder))
    if not exchanges:
        raise FileNotFoundError(f"no recorded exchanges (*.json) in {folder}")
    found: list[str] = []
    token: str | None = None
    replayed: dict[str, Any] = {}  # the replay's own data, by exchange name
    async with aiohttp.ClientSession() as http:
        for exchange in exchanges:
            name, request = exchange["name"], exchange["request"]
            body = request.get("json")
            if exchange["operation"] == "token":
                body = {"client_id": client_id, "client_secret": client_secret}
            elif exchange["operation"] == "access_url" and "upload_url" in replayed:
                body = {**(body or {}), "key": replayed["upload_url"].get("key")}
            if exchange["path"] is None:  # a storage request: to the replayed upload URL
                url = (replayed.get("upload_url") or {}).get("upload_url")
                if url is None:
                    continue
                sent = base64.b64decode((body or {}).get("base64", ""))
                async with http.put(url, data=sent) as response:
                    status = response.status
                expected = exchange["response"]["status"]
                if status // 100 != expected // 100:
                    found.append(f"{name}: storage answered HTTP {status}, the service {expected}")
                continue
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(
                exchange["method"],
                base_url.rstrip("/") + exchange["path"],
                json=body if exchange["method"] != "GET" else None,
                headers=headers,
            ) as response:
                raw = await response.read()
            try:
                reply = json.loads(raw)
            except ValueError:
                reply = f"HTTP {response.status}: {raw[:80].decode('utf-8', 'replace')}"
            recorded = exchange["response"]
            found += _compare(name, recorded["shape"], recorded["json"], reply)
            data = reply.get("data") if isinstance(reply, dict) else None
            replayed[name] = data if isinstance(data, dict) else {}
            if exchange["operation"] == "token" and isinstance(data, dict):
                token = data.get("access_token")
    return found


def _load(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def _compare(name: str, shape: Shape, recorded: Any, reply: Any) -> list[str]:
    code = recorded.get("code") if isinstance(recorded, dict) else None
    answered = reply.get("code") if isinstance(reply, dict) else None
    if code != answered:
        return [f"{name}: code {answered} where the service answered {code}"]
    return [f"{name}: {line}" for line in differences(shape, shape_of(reply))]
