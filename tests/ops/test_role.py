"""`mnemara role --set-from-url` and the role doc helpers behind `/role_doc` (ops/role.py).

The URL tests run a real HTTPS server on 127.0.0.1 with a certificate from a test CA
(tests/fakes/tls: ca.pem signed server.pem for IP 127.0.0.1, valid to 2126; the CA's key was
thrown away). The client trusts it through SSL_CERT_FILE, which OpenSSL's default verify paths
honour, exactly as a user behind a corporate CA would. Nothing reaches the network.
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pexpect
import pytest

from mnemara.errors import MnemaraError
from mnemara.instance import Instance
from mnemara.ops.role import draft, fetch, save

TLS = Path(__file__).resolve().parents[1] / "fakes" / "tls"
ROLE = "# Role\n\nYou are a careful reviewer.\n"


class Pages(http.server.BaseHTTPRequestHandler):
    """Serves `pages` (path -> (status, headers, body))."""

    pages: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        status, headers, body = self.pages.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Base URL of an HTTPS server on 127.0.0.1 that the client trusts (via SSL_CERT_FILE)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "server.pem", TLS / "server-key.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "ca.pem"))
    base = f"https://127.0.0.1:{server.server_address[1]}"
    Pages.pages = {
        "/role.md": (200, {"Content-Type": "text/markdown"}, ROLE.encode()),
        "/escape.md": (200, {}, b"Be nice.\x1b]0;pwned\x07\x1b[2J\n"),
        "/big.md": (200, {}, b"x" * 1_000_001),
        "/latin1.md": (200, {}, b"caf\xe9"),
        "/nul.md": (200, {}, b"a\x00b"),
        "/gone.md": (404, {}, b"no"),
        "/to-http": (302, {"Location": "http://127.0.0.1:9/role.md"}, b""),
        "/to-https": (302, {"Location": f"{base}/role.md"}, b""),
    }
    yield base
    server.shutdown()
    server.server_close()


def test_fetch_reads_an_https_role_doc_and_follows_an_https_redirect(https: str) -> None:
    assert fetch(f"{https}/role.md") == ROLE
    assert fetch(f"{https}/to-https") == ROLE


@pytest.mark.parametrize("path,says", [
    ("/big.md", "a role doc may be at most 1,000,000"),
    ("/latin1.md", "is not UTF-8 text"),
    ("/nul.md", "holds a NUL byte"),
    ("/gone.md", "HTTP 404"),
    ("/to-http", "which is not https"),
])
def test_fetch_refuses_what_cannot_be_a_role_doc(https: str, path: str, says: str) -> None:
    with pytest.raises(MnemaraError, match=says):
        fetch(f"{https}{path}")


def test_fetch_refuses_plain_http_and_an_untrusted_certificate(https: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MnemaraError, match="only https:// URLs"):
        fetch(https.replace("https://", "http://") + "/role.md")
    with pytest.raises(MnemaraError, match="only https:// URLs"):
        fetch("file:///etc/passwd")
    monkeypatch.delenv("SSL_CERT_FILE")  # the test CA is not trusted any more
    with pytest.raises(MnemaraError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch(f"{https}/role.md")


def role_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mnemara", "role", "-i", "r", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_env(fake_cli_env: dict[str, str], https: str) -> dict[str, str]:
    env = {**fake_cli_env, "SSL_CERT_FILE": str(TLS / "ca.pem")}
    subprocess.run([sys.executable, "-m", "mnemara", "init", "-i", "r"], env=env, check=True,
                   capture_output=True)
    return env


def test_set_from_url_with_yes_saves_role_md_and_points_the_instance_at_it(cli_env: dict[str, str],
                                                                          https: str) -> None:
    done = role_cli(cli_env, "--set-from-url", f"{https}/role.md", "--yes")
    assert done.returncode == 0, done.stderr
    assert "You are a careful reviewer." in done.stdout  # shown before it is saved
    saved = Path(cli_env["MNEMARA_HOME"]) / "r" / "role.md"
    assert saved.read_text() == ROLE
    shown = role_cli(cli_env)
    assert f"role doc: {saved}" in shown.stdout


def test_set_from_url_off_a_terminal_needs_yes_and_saves_nothing(cli_env: dict[str, str],
                                                                 https: str) -> None:
    done = role_cli(cli_env, "--set-from-url", f"{https}/role.md")
    assert done.returncode == 2 and "add --yes" in done.stderr
    assert not (Path(cli_env["MNEMARA_HOME"]) / "r" / "role.md").exists()
    refused = role_cli(cli_env, "--set-from-url", f"{https}/big.md", "--yes")
    assert refused.returncode == 2 and "at most 1,000,000" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_set_from_url_shows_the_text_inert_and_asks_first(cli_env: dict[str, str], https: str) -> None:
    role_md = Path(cli_env["MNEMARA_HOME"]) / "r" / "role.md"
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "role", "-i", "r", "--set-from-url",
                                           f"{https}/escape.md"], env=cli_env, encoding="utf-8",
                          timeout=30)
    child.expect(r"Save this as the role doc")
    shown = child.before
    assert "Be nice." in shown
    assert "\x1b]0;pwned" not in shown and "\x1b[2J" not in shown  # shown, never obeyed
    assert "\\x1b]0;pwned\\x07" in shown
    child.sendline("n")
    child.expect("not saved")
    child.expect(pexpect.EOF)
    assert not role_md.exists()
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "role", "-i", "r", "--set-from-url",
                                           f"{https}/role.md"], env=cli_env, encoding="utf-8", timeout=30)
    child.expect(r"Save this as the role doc")
    child.sendline("y")
    child.expect("the next turn uses it")
    child.expect(pexpect.EOF)
    assert role_md.read_text() == ROLE


# --- the helpers behind /role_doc ----------------------------------------------------------------

def test_save_is_atomic_and_refuses_a_directory(home: Path, tmp_path: Path) -> None:
    inst = Instance.named("d")
    cfg = inst.create()
    doc = draft(inst, cfg)
    assert doc.creating and doc.path == inst.root / "role.md" and not doc.configured
    cfg = save(inst, cfg, doc.path, "v1")
    assert inst.load_config().role_doc_path == str(inst.root / "role.md")
    assert (inst.root / "role.md").stat().st_mode & 0o777 == 0o600
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(MnemaraError, match="is a directory"):
        save(inst, cfg, folder, "v2")
    assert (inst.root / "role.md").read_text() == "v1"
