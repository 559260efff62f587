"""The webhook against a real HTTP server on 127.0.0.1: payload shapes, retries, clear errors, and the outbox's delivery state."""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_alerts import LI, T0, WANG, make_flag

from core.errors import UserError
from delivery import outbox
from delivery.webhook import Webhook, WebhookError, check_url, post, redact, slack_payload

SECRET_PATH = "/services/T000/B000/s3cr3t"


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = server.statuses.pop(0) if server.statuses else server.status
        if self.path != SECRET_PATH:
            status = 404
        server.received.append((status, body))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status < 300 else b"upstream exploded")

    def log_message(self, *args):  # keep pytest output clean
        pass


@contextmanager
def webhook_server(status: int = 200):
    """A webhook on an ephemeral port: records every POST; answers `statuses` in turn, then `status`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.status, server.statuses, server.received = status, [], []
    server.url = f"http://127.0.0.1:{server.server_port}{SECRET_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


def hook(url: str, fmt: str = "slack") -> Webhook:
    return Webhook(url, fmt, retries=3, backoff_seconds=0.01, timeout_seconds=5)


def alert(value="acct-1", severity="high"):
    return outbox.build_alert(make_flag(value, severity), "new", None, T0)


def test_post_delivers_a_slack_payload_with_text_and_blocks():
    with webhook_server() as server:
        attempts = post(hook(server.url), outbox.alerts_payload("slack", [alert()], {WANG: "王菲", LI: "李娜"}))
    assert attempts == 1
    [(status, body)] = server.received
    assert status == 200
    assert body["text"].startswith("enumwatch: 1 alert (1 high)\n\n[HIGH 60] client_id acct-1 - new")
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "enumwatch: 1 alert (1 high)"}
    section = body["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "watchlist people whose data was returned: 王菲" in section["text"]
    assert "investigate: enumwatch investigate client_id acct-1" in section["text"]


def test_post_delivers_a_generic_json_document_with_every_alert_field_and_the_names():
    with webhook_server() as server:
        post(
            hook(server.url, "json"),
            outbox.alerts_payload("json", [alert("a"), alert("b", "critical")], {WANG: "王菲"}),
        )
    [(_, body)] = server.received
    assert (body["source"], body["kind"], body["title"]) == (
        "enumwatch",
        "alerts",
        "enumwatch: 2 alerts (1 critical, 1 high)",
    )
    first = body["alerts"][0]
    assert (first["entity_value"], first["severity"], first["score"], first["hits"]) == ("a", "high", 60, 37)
    assert first["exposed_names"] == ["王菲"] and first["watchlist_names"] == ["王菲", LI]
    assert first["evidence"][0]["observed"] == {"distinct_ids": 391.0} and first["created_at"] == T0.isoformat()
    assert first["message"].startswith("[HIGH 60] client_id a")


def test_post_retries_a_500_with_backoff_and_succeeds_when_the_server_recovers():
    with webhook_server() as server:
        server.statuses = [500, 503]
        assert post(hook(server.url), {"text": "x"}) == 3
    assert [s for s, _ in server.received] == [500, 503, 200]


def test_post_gives_a_clear_error_after_retries_without_leaking_the_secret_path():
    with webhook_server(status=500) as server:
        with pytest.raises(WebhookError) as info:
            post(hook(server.url), {"text": "x"})
    assert len(server.received) == 3 and info.value.attempts == 3
    message = str(info.value)
    assert f"webhook http://127.0.0.1:{server.server_port}/... failed after 3 attempts: HTTP 500" in message
    assert "upstream exploded" in message and "s3cr3t" not in message
    assert isinstance(info.value, UserError)  # the CLI prints it as one line


def test_post_fails_at_once_on_a_404_as_a_wrong_url():
    with webhook_server() as server:
        with pytest.raises(WebhookError, match=r"refused the message: HTTP 404 .*wrong URL or token"):
            post(hook(server.url.replace("s3cr3t", "typo")), {"text": "x"})
    assert len(server.received) == 1


def test_post_to_a_port_where_nothing_listens_says_it_cannot_connect():
    with pytest.raises(
        WebhookError, match=r"failed after 3 attempts: cannot connect .*is the URL right and the service up"
    ):
        post(hook(closed_port_url()), {"text": "x"})


@pytest.mark.parametrize(
    "url",
    [
        "hooks.slack.com/services/x",  # scheme forgotten
        "ftp://example.org/hook",  # not http(s)
        "http://:80/x",  # no host
        "http://example.org:port/x",  # port not a number
    ],
)
def test_check_url_refuses_what_is_not_an_http_url_before_any_attempt(url):
    with pytest.raises(WebhookError, match="ENUMWATCH_WEBHOOK_URL or \\[alerts\\] webhook_url") as info:
        check_url(url)
    assert info.value.attempts == 0


def test_redact_keeps_only_scheme_host_and_port():
    assert (
        redact("https://user:pw@hooks.example.org:8443/services/T/B/secret?x=1") == "https://hooks.example.org:8443/..."
    )


def test_slack_payload_escapes_markup_and_cuts_long_sections():
    body = slack_payload("t", ["<!channel> & " + "x" * 5000])
    text = body["blocks"][1]["text"]["text"]
    assert text.startswith("```&lt;!channel&gt; &amp; ") and len(text) < 3000


# --- the outbox's delivery state ---------------------------------------------------------------
def test_deliver_marks_a_batch_delivered_with_its_attempts():
    rows = [alert("a"), alert("b")]
    with webhook_server() as server:
        server.statuses = [500]
        assert outbox.deliver(rows, hook(server.url), {}, T0) is None
    assert [(r["status"], r["channel"], r["attempts"], r["delivered_at"]) for r in rows] == [
        ("delivered", "webhook", 2, T0)
    ] * 2
    assert len(server.received) == 2  # one message for the batch, sent twice


def test_deliver_to_a_failing_server_keeps_the_alerts_owed_with_attempts_and_error():
    rows = [alert("a")]
    with webhook_server(status=500) as server:
        error = outbox.deliver(rows, hook(server.url), {}, T0)
        later = T0 + timedelta(hours=1)
        server.status = 200
        assert outbox.deliver(outbox.undelivered(rows), hook(server.url), {}, later) is None
    assert "HTTP 500" in error and error.endswith("1 alert still undelivered, retried on the next run")
    [row] = rows
    assert (row["status"], row["attempts"], row["delivered_at"], row["last_attempt_at"]) == (
        "delivered",
        4,
        later,
        later,
    )
    assert "HTTP 500" in row["last_error"]  # kept: the history of a late delivery


def test_deliver_without_a_webhook_counts_the_run_file_as_the_channel():
    rows = [alert()]
    assert outbox.deliver(rows, None, {}, T0) is None
    assert (rows[0]["status"], rows[0]["channel"], rows[0]["attempts"]) == ("delivered", "file", 0)


# --- where the URL comes from ------------------------------------------------------------------
def test_webhook_url_comes_from_the_environment_over_the_config_and_never_shows_in_repr(tmp_path):
    from core.settings import load_settings

    config = tmp_path / "c.toml"
    config.write_text('[alerts]\nwebhook_url = "https://config.example/hook/s3cr3t"\nwebhook_format = "json"\n')
    assert load_settings(config, env={}).alerts.webhook_url == "https://config.example/hook/s3cr3t"
    settings = load_settings(config, env={"ENUMWATCH_WEBHOOK_URL": "https://env.example/hook/s3cr3t"})
    assert (settings.alerts.webhook_url, settings.alerts.webhook_format) == ("https://env.example/hook/s3cr3t", "json")
    assert "s3cr3t" not in repr(settings) and load_settings(env={}).alerts.webhook_url is None


@pytest.mark.parametrize(
    "toml, complaint",
    [
        ('webhook_format = "teams"', "slack or json"),  # an unsupported payload
        ('min_severity = "urgent"', "min_severity"),  # not a severity
        ("retries = 0", "at least 1"),  # would never send
        ("[alerts.suppress_hours]\nsevere = 1", "suppress_hours"),  # not a severity
    ],
)
def test_alert_settings_refuse_unusable_values_naming_the_key(tmp_path, toml, complaint):
    from core.settings import ConfigError, load_settings

    config = tmp_path / "c.toml"
    config.write_text("[alerts]\n" + toml + "\n")
    with pytest.raises(ConfigError, match=complaint):
        load_settings(config, env={})


def test_alert_settings_default_the_folder_beside_the_lake_and_24_hours_per_severity(tmp_path):
    from core.settings import load_settings

    settings = load_settings(env={"ENUMWATCH_LAKE": str(tmp_path / "lake")})
    assert settings.alerts.directory(settings.lake) == tmp_path / "alerts-out"
    assert {settings.alerts.suppress_for(s) for s in ("low", "critical")} == {timedelta(hours=24)}
