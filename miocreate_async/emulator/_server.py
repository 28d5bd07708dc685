"""Emulator: the server's lifecycle, in the caller's event loop or in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from aiohttp import web
from yarl import URL

from .._operations import Operation
from ._app import build_app
from ._faults import rule_from_json
from ._settings import EmulatorSettings
from ._state import State

if TYPE_CHECKING:
    from .. import MioCreate

__all__ = ["Emulator"]

T = TypeVar("T")

# File and image work: enough threads for concurrent uploads, few enough for 2 cores.
_WORKERS = 8


class Emulator:
    """A local MioCreate-compatible server. ``async with Emulator() as emu:`` serves on a free
    port; ``with Emulator().run_in_thread() as emu:`` does the same from synchronous code."""

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        """``options`` are ``EmulatorSettings`` fields (``latency=0.1, seed=1, vision=True``...),
        applied over ``settings`` when both are given."""
        if settings is None:
            settings = EmulatorSettings(**options)
        elif options:
            settings = attrs.evolve(settings, **options)
        self.settings = settings
        self._host, self._port = host, port
        self._url: str | None = None
        self._state: State | None = None
        self._runner: web.AppRunner | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._temp_dir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Emulator {self._url or 'not started'} client_id={self.client_id!r}>"

    # --- what clients need --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("the emulator is not running")
        return self._url

    @property
    def client_id(self) -> str:
        return self.settings.client_id

    @property
    def client_secret(self) -> str:
        return self.settings.client_secret

    @property
    def token_ttl(self) -> float:
        """Seconds a token lives on the emulator's clock."""
        return self.settings.token_ttl

    @property
    def data_dir(self) -> Path:
        return self._running_state().storage.root

    def client(self, **kwargs: Any) -> MioCreate:
        """A ``MioCreate`` bound to this emulator (close it, or use it in ``async with``).

        Its URL inputs may be read from the emulator's host too (its storage URLs are on a
        loopback address, which a client refuses by default).
        """
        from .. import Config, MioCreate

        config = kwargs.pop("config", None) or Config.from_env(base_url=self.url)
        host = URL(self.url).host or self._host
        config = attrs.evolve(config, url_sources=config.url_sources.including(host))
        return MioCreate(
            client_id=self.client_id,
            client_secret=self.client_secret,
            base_url=self.url,
            config=config,
            **kwargs,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        data_dir = self.settings.data_dir
        if data_dir is None:
            data_dir = self._temp_dir = Path(tempfile.mkdtemp(prefix="miocreate-emulator-"))
        self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="miocreate-emulator")
        self._state = State(self.settings, data_dir, self._executor)
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            runner = web.AppRunner(
                build_app(self._state),
                access_log=None,
                handle_signals=False,
                shutdown_timeout=self.settings.shutdown_timeout,
            )
            await runner.setup()
            self._runner = runner
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await self.aclose()
            raise
        host, port = sock.getsockname()[:2]
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def aclose(self) -> None:
        """Stop serving, wait for open requests briefly, and delete a temporary data dir."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        temp_dir, self._temp_dir = self._temp_dir, None
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        self._url = None
        self._loop = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[Emulator]:
        """Serve from a thread with its own event loop, for synchronous code and fixtures."""
        started = threading.Event()
        handles: dict[str, Any] = {}

        async def serve() -> None:
            stop = asyncio.Event()
            handles["stop"], handles["loop"] = stop, asyncio.get_running_loop()
            try:
                await self.start()
            except BaseException as exc:
                handles["error"] = exc
                started.set()
                return
            started.set()
            try:
                await stop.wait()
            finally:
                await self.aclose()

        thread = threading.Thread(target=asyncio.run, args=(serve(),), name="miocreate-emulator")
        thread.start()
        started.wait()
        if "error" in handles:
            thread.join()
            raise handles["error"]
        try:
            yield self
        finally:
            handles["loop"].call_soon_threadsafe(handles["stop"].set)
            thread.join()

    # --- control, from any thread -------------------------------------------------------------

    def _running_state(self) -> State:
        if self._state is None:
            raise RuntimeError("the emulator is not running")
        return self._state

    def _on_loop(self, function: Callable[[State], T]) -> T:
        """Run ``function`` on the server's loop: its state belongs to that loop's thread."""
        state, loop = self._running_state(), self._loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop or not loop.is_running():
            return function(state)
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(function(state))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result()

    @property
    def ledger(self) -> dict[str, Any]:
        """A snapshot: tasks, uploads, requests, leaks, credits (as ``GET /_emulator/ledger``)."""
        return self._on_loop(lambda state: state.snapshot())

    def scenario(
        self,
        operation: Operation | str = "any",
        *,
        key: str | None = None,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
        fault: str | None = None,
        delay: float | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        task_fail: Mapping[str, Any] | None = None,
        faces: int | None = None,
    ) -> None:
        """Force a code or a fault on the next ``count`` matching requests (see the admin route)."""
        options = {
            "operation": str(operation),
            "key": key,
            "count": count,
            "code": code,
            "message": message,
            "fault": fault,
            "delay": delay,
            "http_status": http_status,
            "retry_after": retry_after,
            "task_fail": task_fail,
            "faces": faces,
        }
        rule = rule_from_json({name: value for name, value in options.items() if value is not None})
        self._on_loop(lambda state: state.scenarios.add(rule))

    def reset(self) -> None:
        """Forget tasks, objects, requests, scenarios, spent credits and clock offset."""
        self._on_loop(lambda state: state.reset())

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock on: tokens and signed URLs expire without sleeping."""
        self._on_loop(lambda state: state.clock.advance(seconds))
