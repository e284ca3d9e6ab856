"""Hardening: proxies from the environment on both HTTP stacks (through a local forward proxy on
127.0.0.1), and a TLS certificate failure (a local TLS server with a self-signed certificate) as its
own typed error that is never retried."""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import CertificateError, ConfigurationError, ConnectionError, OpenRouterService, Registry, Settings
from openrouter_registry.testing import FakeOpenRouter

STACKS = ["aiohttp", "httpx"]
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"]


class ForwardProxy:
    """A minimal HTTP forward proxy on 127.0.0.1: absolute-form requests are forwarded (one per
    connection: the answer says ``Connection: close``), ``CONNECT`` opens a tunnel. Records what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)
                return
            from urllib.parse import urlsplit

            parts = urlsplit(target)
            headers = [line for line in lines[1:] if not line.lower().startswith(("connection:", "proxy-"))]
            length = next((int(line.split(":", 1)[1]) for line in headers if line.lower().startswith("content-length:")), 0)
            while len(rest) < length:
                rest += client.recv(65536)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            request = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""]).encode("latin-1")
            with socket.create_connection((parts.hostname, parts.port or 80)) as upstream:
                upstream.sendall(request + rest)
                answer = b""
                while piece := upstream.recv(65536):
                    answer += piece
            answer_head, _, body = answer.partition(b"\r\n\r\n")
            kept = [line for line in answer_head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
            client.sendall(b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with b:
            while True:
                ready, _, _ = select.select([a, b], [], [], 10)
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)

    def close(self) -> None:
        self._stop = True
        self._server.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    forward = ForwardProxy()
    yield forward
    forward.close()


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as server:
        yield server


def service(base_url: str, key: str, stack: str, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=base_url, api_key=key, transport=stack, catalog=False, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_every_request_goes_through_the_proxy_the_environment_names(
    fake: FakeOpenRouter, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, stack: str, variable: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    async with service(fake.base_url, fake.api_key, stack) as svc:
        for _ in range(3):
            assert (await svc.generate("hi")).text
        async for _ in svc.stream("hi"):
            pass
    chats = [seen for seen in proxy.seen if seen.endswith("/chat/completions")]
    assert chats == [f"POST {fake.base_url}/chat/completions"] * 4
    assert len(fake.requests) == 4


@pytest.mark.parametrize("stack", STACKS)
async def test_no_proxy_sends_direct(fake: FakeOpenRouter, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, stack: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with service(fake.base_url, fake.api_key, stack) as svc:
        assert (await svc.generate("hi")).text
    assert proxy.seen == [] and len(fake.requests) == 1


async def test_a_socks_proxy_on_the_aiohttp_stack_is_a_clear_error(
    fake: FakeOpenRouter, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:1")
    async with service(fake.base_url, fake.api_key, "aiohttp") as svc:
        with pytest.raises(ConfigurationError, match="use an http:// proxy, or OPENROUTER_TRANSPORT=httpx") as caught:
            await svc.generate("hi")
    assert "secret" not in str(caught.value) and fake.requests == []


# -- TLS -------------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, private


class TLSServer:
    """Accepts TLS handshakes on 127.0.0.1 with a self-signed certificate; counts the connections."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.connections = 0
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self._context.wrap_socket(client, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TLSServer]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = TLSServer(*self_signed(tmp_path))
    yield server
    server.close()


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_certificate_failure_is_typed_named_and_never_retried(tls_server: TLSServer, stack: str, streaming: bool) -> None:
    async with service(f"https://127.0.0.1:{tls_server.port}/api/v1", "sk-or-v1-" + "a" * 64, stack, max_attempts=3) as svc:
        with pytest.raises(CertificateError) as caught:
            if streaming:
                async for _ in svc.stream("hi"):
                    pass
            else:
                await svc.generate("hi")
    error = caught.value
    assert isinstance(error, ConnectionError) and error.attempts == 1
    assert "self-signed certificate" in str(error) or "self signed certificate" in str(error)
    assert "SSL_CERT_FILE" in str(error)
    assert tls_server.connections == 1  # one handshake: no retry


@pytest.mark.parametrize("stack", STACKS)
async def test_a_certificate_failure_through_a_connect_proxy(
    tls_server: TLSServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with service(f"https://127.0.0.1:{tls_server.port}/api/v1", "sk-or-v1-" + "b" * 64, stack) as svc:
        with pytest.raises(CertificateError):
            await svc.generate("hi")
    assert proxy.seen == [f"CONNECT 127.0.0.1:{tls_server.port}"] and tls_server.connections == 1
