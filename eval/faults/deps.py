"""The dependencies the suite breaks on purpose, each one real or faked at its wire only.

- `FakeLlm`: an OpenAI-compatible HTTP server (chat completions and the model listing)
  whose behaviour the suite switches: up, down (nothing listens), slow, 429, garbage.
- `TcpProxy`: an asyncio TCP proxy in front of the real PostgreSQL; `down()` closes the
  listener and cuts every open connection, `up()` listens again on the same port.
- `RedisServer`: a second real `redis-server` on a port of its own, with an append-only
  file fsynced on every write, so a SIGKILL loses nothing that was acknowledged.
- `Volume`: a small tmpfs the suite mounts; `fill()` takes all its free space with a
  ballast file, `free()` removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from eval.faults.api import free_port


class LlmMode(StrEnum):
    UP = "up"
    DOWN = "down"  # connection refused
    SLOW = "slow"  # answers after the model's timeout
    RATE_LIMITED = "429"
    GARBAGE = "garbage"  # 200 with a body that is not a chat completion


_ANSWER = "The passage answers this directly [1]."


class FakeLlm:
    """One fake model server on a fixed port; `mode` changes what it does."""

    def __init__(self, slow_s: float = 6.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.mode = LlmMode.UP
        self.slow_s = slow_s
        self.calls = 0
        self._httpd: ThreadingHTTPServer | None = None
        self.start()

    def set(self, mode: LlmMode) -> None:
        if mode is LlmMode.DOWN:
            self.stop()
        elif self._httpd is None:
            self.start()
        self.mode = mode

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the client gave up (timeout)
                    self.wfile.write(body)

            def _serve(self, payload: dict[str, object]) -> None:
                fake.calls += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if fake.mode is LlmMode.SLOW:
                    time.sleep(fake.slow_s)
                if fake.mode is LlmMode.RATE_LIMITED:
                    error = {"error": {"message": "rate limited", "type": "rate_limit"}}
                    self._reply(429, json.dumps(error).encode(), {"Retry-After": "1"})
                elif fake.mode is LlmMode.GARBAGE:
                    self._reply(200, b"<html>502 bad gateway</html>{", {})
                else:
                    self._reply(200, json.dumps(payload).encode(), {})

            def do_GET(self) -> None:
                model = {"id": "fake", "object": "model", "created": 0, "owned_by": "suite"}
                self._serve({"object": "list", "data": [model]})

            def do_POST(self) -> None:
                self._serve(
                    {
                        "id": "chatcmpl-fault",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": "fake",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": _ANSWER},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58},
                    }
                )

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `down()` refuses and cuts, `up()` restores."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True).start()
        self.up()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def up(self) -> None:
        self._call(self._listen())

    def down(self) -> None:
        self._call(self._close())

    def stop(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()
                self._writers.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class RedisServer:
    """A `redis-server` of the suite's own (port, folder), append-only with fsync always."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 20.0) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self._folder), "--save", "", "--appendonly", "yes"]
        command += ["--appendfsync", "always", "--logfile", str(self._folder / "redis.log")]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        end = time.monotonic() + deadline_s
        client = redis.Redis.from_url(self.url)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > end or self._process.poll() is not None:
                        raise RuntimeError(
                            f"redis-server did not start; see {self._folder}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: an outage, not a shutdown (no final save; the AOF has every write)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


class Volume:
    """A tmpfs of `size_mb` mounted at `path` (root, CAP_SYS_ADMIN): a disk the suite can
    fill. `mount()` raises `OSError` where the container may not mount."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self._size_mb = size_mb
        self._ballast = path / ".ballast"
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self._size_mb}m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(f"cannot mount a tmpfs at {self.path}: {done.stderr.strip()}")
        self.mounted = True

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def fill(self, leave_bytes: int = 0) -> None:
        """Take the free space, all of it or all but `leave_bytes`."""
        chunk = b"\0" * 2**20
        with self._ballast.open("ab") as ballast, contextlib.suppress(OSError):
            while (room := self.free_bytes() - leave_bytes) > 0:
                ballast.write(chunk[: min(len(chunk), room)])
                ballast.flush()

    def free(self) -> None:
        self._ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
            with contextlib.suppress(OSError):
                os.rmdir(self.path)
