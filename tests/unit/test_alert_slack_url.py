"""The Slack webhook URL: what is accepted, and that it never shows itself."""

from __future__ import annotations

import pytest

from pinwatch.alerts.slack import SlackWebhookUrl, WebhookUrlError, parse_webhook_secret

SECRET_PATH = "/services/T0AAAAAAA/B0BBBBBBB/s3cr3tTOKENvalue"
URL = f"https://hooks.slack.com{SECRET_PATH}"


@pytest.mark.parametrize(
    "secret",
    [
        URL,
        f"  {URL}\n",
        f'{{"url": "{URL}"}}',
        f"https://hooks.slack-gov.com{SECRET_PATH}",
        f"https://hooks.slack.com:443{SECRET_PATH}",
    ],
)
def test_given_slack_webhook_secret_when_parsed_then_the_url_is_accepted(secret: str) -> None:
    url = parse_webhook_secret(secret)
    assert url.reveal().startswith("https://hooks.slack")
    assert url.reveal().endswith(SECRET_PATH)


@pytest.mark.parametrize(
    ("secret", "allow_loopback", "problem"),
    [
        (f"http://hooks.slack.com{SECRET_PATH}", False, "must use https"),
        (f"https://hooks.example.com{SECRET_PATH}", False, "not a Slack webhook host"),
        (f"https://hooks.slack.com.evil.example{SECRET_PATH}", False, "not a Slack webhook host"),
        (f"https://user:pw@hooks.slack.com{SECRET_PATH}", False, "credentials"),
        ("https://hooks.slack.com/", False, "no path"),
        (f"http://127.0.0.1:8080{SECRET_PATH}", False, "SLACK_ALLOW_LOOPBACK"),
        (f"ftp://127.0.0.1{SECRET_PATH}", True, "http or https"),
        ('{"hook": "x"}', False, 'without a "url"'),
        ("{not json", False, "neither a URL nor JSON"),
        ("   ", False, "empty"),
        (f"https://hooks.slack.com:notaport{SECRET_PATH}", False, "malformed"),
    ],
)
def test_given_unacceptable_secret_when_parsed_then_the_error_says_why_without_the_secret(
    secret: str, allow_loopback: bool, problem: str
) -> None:
    with pytest.raises(WebhookUrlError) as caught:
        parse_webhook_secret(secret, allow_loopback=allow_loopback)
    assert problem in str(caught.value)
    assert "s3cr3tTOKENvalue" not in str(caught.value)
    # A traceback never shows an underlying error that could quote the secret.
    assert caught.value.__context__ is None or caught.value.__suppress_context__


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_given_loopback_url_when_loopback_is_allowed_then_plain_http_is_accepted(host: str) -> None:
    url = SlackWebhookUrl(f"http://{host}:9999{SECRET_PATH}", allow_loopback=True)
    assert url.reveal() == f"http://{host}:9999{SECRET_PATH}"


def test_given_webhook_url_when_shown_then_repr_str_and_formatting_hide_the_path() -> None:
    url = SlackWebhookUrl(URL)
    for shown in (repr(url), str(url), f"{url}", f"{url!r}", repr([url]), repr({"u": url})):
        assert "s3cr3tTOKENvalue" not in shown
        assert "hooks.slack.com" in shown


def test_given_text_containing_the_url_when_redacted_then_neither_url_nor_path_remain() -> None:
    url = SlackWebhookUrl(URL)
    text = f"POST {URL} failed; path {SECRET_PATH} unreachable"
    redacted = url.redact(text)
    assert "s3cr3tTOKENvalue" not in redacted
    assert "<slack-webhook>" in redacted
