"""`make image-smoke`: build the image here and run it hardened, end to end.

1. A Debian bookworm base made with debootstrap (Docker Hub is not needed): python3.11,
   python3-venv, ca-certificates; the rootfs tarball is cached in
   ~/.cache/rag-template/image/ and imported as localhost/rag-base:bookworm.
2. `podman build` of infra/docker/Dockerfile on that base, with the host's uv and pip
   caches mounted (nothing is downloaded twice) and its CA bundle for the build only.
3. The API container: read-only root, /tmp a tmpfs, /app/.data a volume, the image's
   uid, every capability dropped, no-new-privileges, a published loopback port. A key is
   made and the sample corpus rendered by one-shot containers; the corpus is uploaded
   through POST /v1/documents, then /healthz, the image's HEALTHCHECK and /v1/ask must
   answer with the right citation. The container and its data are removed.

Where the engine cannot run (not root, no podman or debootstrap, no working OCI runtime)
it says why and exits 0. Standard library only: it runs under the system python3.

    python3 infra/docker/smoke.py [--compare-locks]

The image stays in podman's store as localhost/rag-reference:smoke (its layers make the
next build quick).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-template" / "image"
BASE_IMAGE = "localhost/rag-base:bookworm"
IMAGE = "localhost/rag-reference:smoke"
UID = 10001  # the Dockerfile's `USER`
SUITE = "bookworm"
PACKAGES = ("python3.11", "python3-venv", "ca-certificates")
# What the base does not need (apt's downloads and lists, docs, man pages, translations).
SLIM = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "var/log/*",
)
QUESTION = "Which vector store does the template use by default?"
EXPECTED_SOURCE = "0001-embedded-vector-store.html"


class EngineUnavailableError(Exception):
    """The engine cannot run here; the message says why."""


class SmokeError(Exception):
    """The image was built or run and did not do what it must."""


class Timings:
    """Wall-clock seconds per step, printed as a table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"image-smoke: {name} ...", flush=True)
        start = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - start
            self.rows.append((name, elapsed))
            print(f"image-smoke: {name}: {elapsed:.1f} s", flush=True)

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        lines = [f"  {name:<{width}}  {seconds:7.1f} s" for name, seconds in self.rows]
        total = sum(seconds for _, seconds in self.rows)
        return "\n".join([*lines, f"  {'total':<{width}}  {total:7.1f} s"])


def run(
    args: Sequence[str], *, timeout: float = 600, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text; on failure raise with its last lines of output."""
    done = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise SmokeError(f"`{' '.join(args[:4])} ...` exited {done.returncode}:\n{tail}")
    return done


class Podman:
    """The podman command line with what this machine needs on every container."""

    def __init__(self, runtime: str | None) -> None:
        self.runtime = runtime
        # Rootful podman raises RLIMIT_NOFILE/NPROC to 1048576 in each container; without
        # CAP_SYS_RESOURCE that fails. The current open-files limit and 4096 processes fit.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.ulimits = ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", "nproc=4096:4096"]

    def base(self) -> list[str]:
        return ["podman", *(["--runtime", self.runtime] if self.runtime else [])]

    def __call__(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run([*self.base(), *args], **kwargs)

    def run_args(self) -> list[str]:
        return ["run", *self.ulimits]


def preflight() -> None:
    """Raise EngineUnavailableError, saying why, when this machine cannot run containers."""
    if sys.platform != "linux":
        raise EngineUnavailableError(
            f"needs Linux (debootstrap, rootful podman); this is {sys.platform}"
        )
    if os.geteuid() != 0:
        raise EngineUnavailableError(
            "needs root: debootstrap and the rootful podman that runs the image"
        )
    if shutil.which("podman") is None:
        raise EngineUnavailableError("podman is not installed (Debian: apt-get install podman)")
    info = run(["podman", "info", "--format", "{{.Store.GraphDriverName}}"], check=False)
    if info.returncode != 0:
        raise EngineUnavailableError(
            f"`podman info` fails: {info.stderr.strip().splitlines()[-1:]}"
        )


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb.debian.org when none is found)."""
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for url in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            if url.rstrip("/").endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def ensure_base(podman: Podman, timings: Timings) -> str:
    """Import localhost/rag-base:bookworm from the cached rootfs tarball, making it first
    with debootstrap when there is none. Returns how the base was obtained."""
    recipe = json.dumps({"suite": SUITE, "packages": PACKAGES, "slim": SLIM}, sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tarball = CACHE / f"rag-base-{SUITE}-{key}.tar"
    label = f"rag.base.recipe={key}"
    found = podman(
        "image",
        "inspect",
        "--format",
        '{{index .Labels "rag.base.recipe"}}',
        BASE_IMAGE,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip() == key:
        return f"{BASE_IMAGE} already imported (recipe {key})"
    how = f"from the cached {tarball}"
    if not tarball.is_file():
        if shutil.which("debootstrap") is None:
            raise EngineUnavailableError(
                "debootstrap is not installed (apt-get install debootstrap), and "
                f"there is no cached base at {tarball}"
            )
        mirror = debian_mirror()
        CACHE.mkdir(parents=True, exist_ok=True)
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
        try:
            with timings.step(f"debootstrap {SUITE} from {mirror}"):
                run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(PACKAGES)}",
                        SUITE,
                        str(rootfs),
                        mirror,
                    ],
                    timeout=1200,
                )
            for pattern in SLIM:
                for path in rootfs.glob(pattern):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            (rootfs / "etc" / "resolv.conf").write_text("")  # the host's, copied by debootstrap
            partial = tarball.with_suffix(".part")
            run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
            partial.replace(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        how = f"made with debootstrap from {mirror}, cached as {tarball}"
    with timings.step("podman import of the base"):
        podman(
            "import",
            "--change",
            "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV=LANG=C.UTF-8",
            "--change",
            f"LABEL={label}",
            "--change",
            'CMD=["/bin/bash"]',
            str(tarball),
            BASE_IMAGE,
        )
    return how


def pick_runtime(podman_default: Podman) -> Podman:
    """The first OCI runtime that starts a container here: podman's default (crun), then
    runc. crun 1.8 refuses hosts with cgroup v1 plus a v2 hierarchy holding controllers."""
    errors = []
    for runtime in (os.environ.get("RAG_IMAGE_RUNTIME"), None, "runc"):
        if runtime and shutil.which(runtime) is None:
            errors.append(f"{runtime}: not installed")
            continue
        candidate = Podman(runtime) if runtime != podman_default.runtime else podman_default
        probe = candidate(*candidate.run_args(), "--rm", BASE_IMAGE, "true", check=False)
        if probe.returncode == 0:
            return candidate
        errors.append(f"{runtime or 'default'}: {probe.stderr.strip().splitlines()[-1:]}")
    raise EngineUnavailableError(
        "no OCI runtime starts a container here (apt-get install runc may help): "
        + "; ".join(errors)
    )


def build(podman: Podman, tag: str, lock: str) -> None:
    """`podman build` of the Dockerfile on the local base, printing its steps."""
    uv_cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    pip_cache = Path.home() / ".cache" / "pip"
    args = [
        *podman.base(),
        "build",
        "--format",
        "docker",
        *podman.ulimits,
        "-f",
        str(DOCKERFILE),
        "-t",
        tag,
        "--build-arg",
        f"BASE={BASE_IMAGE}",
        "--build-arg",
        f"LOCK={lock}",
        "--build-arg",
        f"REVISION={git_revision()}",
        "--build-arg",
        f"CREATED={datetime.now(UTC).isoformat(timespec='seconds')}",
    ]
    for cache, target in ((uv_cache, "/root/.cache/uv"), (pip_cache, "/root/.cache/pip")):
        cache.mkdir(parents=True, exist_ok=True)
        args += ["-v", f"{cache}:{target}"]
    # A TLS-intercepting proxy's CA (the host trusts it): for the build's downloads only.
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        args += [
            "-v",
            f"{bundle}:/run/build-ca.crt:ro",
            "--build-arg",
            "PIP_CERT=/run/build-ca.crt",
            "--build-arg",
            "SSL_CERT_FILE=/run/build-ca.crt",
        ]
    log = CACHE / f"build-{Path(lock).stem}.log"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (
        log.open("w") as out,
        subprocess.Popen(
            [*args, str(ROOT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if re.match(r"\[\d/\d\] STEP|STEP \d", line):
                print("    " + line.rstrip()[:110], flush=True)
        code = proc.wait(timeout=3600)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise SmokeError(f"podman build exited {code} (log: {log}):\n{tail}")


def git_revision() -> str:
    done = run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=False)
    return done.stdout.strip() or "unknown"


def image_size(podman: Podman, tag: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """Just enough HTTP for the smoke: JSON and multipart uploads, a bearer key."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> tuple[int, Any]:
        url = self.base + path  # http://127.0.0.1:<port>/...: the container under test
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.key}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def upload(self, files: list[Path]) -> tuple[int, Any]:
        boundary = uuid.uuid4().hex
        parts = []
        for path in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + path.read_bytes()
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.call("POST", "/v1/documents", body, f"multipart/form-data; boundary={boundary}")


def wait_for(what: str, check: Any, deadline_s: float, container_logs: Any) -> Any:
    """Poll `check()` until it returns a truthy value; fail with the container's log."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise SmokeError(f"{what} did not happen within {deadline_s:.0f} s:\n{container_logs()}")


def smoke_run(podman: Podman, tag: str, timings: Timings) -> dict[str, Any]:
    """Run the image hardened: key, corpus, serve, upload, ask. Returns what it saw."""
    data = Path(tempfile.mkdtemp(prefix="rag-image-smoke-"))
    os.chown(data, UID, UID)
    name = f"rag-image-smoke-{os.getpid()}"
    hardened = [
        *podman.run_args(),
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=512m,mode=1777",  # noqa: S108 (the container's /tmp)
        "-v",
        f"{data}:/app/.data",
        "--user",
        f"{UID}:{UID}",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--health-interval",
        "disable",  # no systemd timers here: `healthcheck run` below
    ]
    seen: dict[str, Any] = {}
    try:
        with timings.step("worker command (rag worker --help)"):
            podman(*hardened, "--rm", tag, "rag", "worker", "--help")
        with timings.step("key (rag keys create, one-shot container)"):
            out = podman(
                *hardened,
                "--rm",
                tag,
                "rag",
                "keys",
                "create",
                "--tenant",
                "smoke",
                "--role",
                "ingestor",
            )
            key = out.stdout.strip().splitlines()[-1]
        with timings.step("sample corpus (ingest.sample_corpus, one-shot container)"):
            podman(
                *hardened,
                "--rm",
                tag,
                "python3",
                "-c",
                "from pathlib import Path; from ingest.sample_corpus import build; "
                "build(Path('docs'), Path('/app/.data/sample-corpus'))",
            )
            files = sorted((data / "sample-corpus").iterdir())
            seen["corpus"] = [f.name for f in files]
        port = free_port()
        api = Api(f"http://127.0.0.1:{port}", key)

        def logs() -> str:
            return podman("logs", "--tail", "40", name, check=False).stdout

        with timings.step("API start until /healthz answers"):
            podman(*hardened, "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", tag)

            def healthy() -> Any:
                state = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
                if state.stdout.strip() != "true":
                    raise SmokeError(f"the API container exited:\n{logs()}")
                try:
                    status, body = api.call("GET", "/healthz")
                except OSError:
                    return None
                return body if status == 200 else None

            seen["healthz"] = wait_for("/healthz", healthy, 180, logs)
        seen["uid"] = podman("exec", name, "id", "-u").stdout.strip()
        if seen["uid"] != str(UID):
            raise SmokeError(f"the API runs as uid {seen['uid']}, not {UID}")
        with timings.step("image HEALTHCHECK (podman healthcheck run)"):
            check = podman("healthcheck", "run", name, check=False)
            seen["healthcheck"] = (check.stdout + check.stderr).strip() or "healthy"
            if check.returncode != 0:
                raise SmokeError(f"the image's HEALTHCHECK failed: {seen['healthcheck']}")
        with timings.step(f"ingest {len(files)} files through POST /v1/documents"):
            status, accepted = api.upload(files)
            if status != 202:
                raise SmokeError(f"upload answered {status}: {accepted}")

            def finished() -> Any:
                status, job = api.call("GET", accepted["status_url"])
                if status != 200:
                    raise SmokeError(f"job status answered {status}: {job}")
                return job if job["state"] not in ("queued", "running") else None

            job = wait_for("the ingest job", finished, 600, logs)
            seen["job"] = {k: job[k] for k in ("state", "documents", "chunks", "errors")}
            if job["state"] != "succeeded":
                raise SmokeError(f"the ingest job ended {job['state']}: {job['errors']}")
        with timings.step("POST /v1/ask"):
            status, answer = api.call(
                "POST", "/v1/ask", json.dumps({"question": QUESTION}).encode(), "application/json"
            )
            if status != 200:
                raise SmokeError(f"/v1/ask answered {status}: {answer}")
        seen["answer"] = answer["answer"]
        seen["citations"] = [c["source"] for c in answer["citations"]]
        if not (
            answer["found"]
            and seen["citations"]
            and seen["citations"][0] == EXPECTED_SOURCE
            and "[1]" in answer["answer"]
        ):
            raise SmokeError(f"the answer is not cited from {EXPECTED_SOURCE}: {answer}")
        # Mount points show as changed: the volume's and the tmpfs's parents, and /etc for
        # the hosts, hostname and resolv.conf files podman mounts there. Nothing else may.
        changed = podman("diff", name).stdout.splitlines()
        seen["rootfs_changes"] = ", ".join(changed) or "none"
        mounts = ("/etc", "/app", "/app/.data", "/tmp")  # noqa: S108 (paths in the container)
        if any(line.split()[-1] not in mounts for line in changed):
            raise SmokeError(f"the container changed its root filesystem: {changed}")
        with timings.step("stop and remove the API container"):
            podman("stop", "--time", "20", name)
    finally:
        podman("rm", "--force", name, check=False)
        shutil.rmtree(data, ignore_errors=True)
    return seen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare-locks",
        action="store_true",
        help="also build from requirements.lock (eval and dev extras) and print both sizes",
    )
    args = parser.parse_args(argv)
    timings = Timings()
    try:
        preflight()
        how = ensure_base(Podman(None), timings)
        podman = pick_runtime(Podman(None))
    except EngineUnavailableError as exc:
        print(f"image-smoke: SKIPPED: {exc}")
        return 0
    print(f"image-smoke: base {how}; OCI runtime {podman.runtime or 'podman default'}")
    sizes: dict[str, int] = {}
    try:
        if args.compare_locks:
            with timings.step("podman build (requirements.lock)"):
                build(podman, IMAGE + "-full", "requirements.lock")
            sizes["from requirements.lock"] = image_size(podman, IMAGE + "-full")
            podman("rmi", IMAGE + "-full", check=False)
        with timings.step("podman build"):
            build(podman, IMAGE, "requirements-runtime.lock")
        sizes["image"] = image_size(podman, IMAGE)
        sizes["base"] = image_size(podman, BASE_IMAGE)
        seen = smoke_run(podman, IMAGE, timings)
    except (SmokeError, subprocess.TimeoutExpired) as exc:
        print(f"image-smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"image-smoke: corpus {', '.join(seen['corpus'])}")
    print(f"image-smoke: /healthz {json.dumps(seen['healthz'])}; HEALTHCHECK {seen['healthcheck']}")
    print(
        f"image-smoke: job {json.dumps(seen['job'])}; API uid {seen['uid']}; "
        f"root filesystem changes {seen['rootfs_changes']}"
    )
    print(
        f"image-smoke: ask {QUESTION!r}\n  -> {seen['answer'][:300]}\n"
        f"  cited: {', '.join(seen['citations'])}"
    )
    print("image-smoke: sizes " + ", ".join(f"{k} {v / 1e6:,.0f} MB" for k, v in sizes.items()))
    print("image-smoke: timings\n" + timings.table())
    print("image-smoke: OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
