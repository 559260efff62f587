"""POST alert and failure messages to one webhook, with retries, and fail with a message a person can act on.

The URL comes from settings (ENUMWATCH_WEBHOOK_URL or `[alerts] webhook_url`), never from code. A Slack
incoming-webhook URL embeds its secret in the path, so errors and logs show only scheme, host and port.
Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential back-off; any other
4xx is a wrong URL or payload and fails at once. The caller decides what a failure means: the outbox keeps
the alert pending, the CLI prints the error; nothing here may crash a run that already published its flags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from core.errors import UserError

_SLACK_SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters


class WebhookError(UserError):
    """The webhook could not take a message: wrong URL, refused connection, or an error status after retries."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class Webhook:
    """Where and how to POST: the URL, the payload format and the retry policy."""

    url: str
    fmt: str = "slack"
    retries: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0

    def __repr__(self) -> str:  # never print the secret path
        return f"Webhook({redact(self.url)}, {self.fmt})"


def redact(url: str) -> str:
    """The URL without path, query or credentials: safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/..." if parts.scheme else "<not a URL>"


def check_url(url: str) -> None:
    """Raise WebhookError unless `url` is an http(s) URL with a host (caught before any attempt)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise WebhookError(
            f"webhook URL is malformed ({exc}); check ENUMWATCH_WEBHOOK_URL or [alerts] webhook_url", 0
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(
            f"webhook URL {redact(url)} is not an http(s) URL with a host; check ENUMWATCH_WEBHOOK_URL or [alerts] webhook_url",
            0,
        )


def post(hook: Webhook, payload: dict, *, client: httpx.Client | None = None) -> int:
    """POST `payload` as JSON until a 2xx; return the attempts used, or raise WebhookError naming the cause."""
    check_url(hook.url)
    where = redact(hook.url)
    own = client is None
    client = client or httpx.Client(timeout=hook.timeout_seconds, follow_redirects=False)
    try:
        for attempt in range(1, hook.retries + 1):
            try:
                response = client.post(hook.url, json=payload)
            except httpx.ConnectError as exc:
                cause = f"cannot connect ({exc}); is the URL right and the service up?"
            except httpx.TimeoutException:
                cause = f"no answer within {hook.timeout_seconds:g} s"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                cause = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return attempt
                cause = f"HTTP {response.status_code} {response.reason_phrase}: {response.text[:200].strip()}"
                if response.status_code < 500 and response.status_code != 429:
                    raise WebhookError(f"webhook {where} refused the message: {cause} (wrong URL or token?)", attempt)
            if attempt < hook.retries:
                time.sleep(hook.backoff_seconds * 2 ** (attempt - 1))
        raise WebhookError(f"webhook {where} failed after {hook.retries} attempts: {cause}", hook.retries)
    finally:
        if own:
            client.close()


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(title: str, sections: list[str]) -> dict:
    """A Slack-compatible message: `text` (notifications and plain clients) plus one block per section."""
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for section in sections[:48]:  # Slack allows 50 blocks
        body = _slack_escape(section)
        if len(body) > _SLACK_SECTION_LIMIT:
            body = body[:_SLACK_SECTION_LIMIT] + "\n..."
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}})
    return {"text": "\n\n".join([title, *sections]), "blocks": blocks}


def payload(hook_fmt: str, kind: str, title: str, sections: list[str], document: dict) -> dict:
    """The body for `hook_fmt`: Slack blocks from the texts, or the generic JSON `document`."""
    if hook_fmt == "slack":
        return slack_payload(title, sections)
    return {"source": "enumwatch", "kind": kind, "title": title, **document}
