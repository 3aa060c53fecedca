"""Identifier safety and secret redaction."""

from __future__ import annotations

import pytest

from lakeshift import redact
from lakeshift.errors import IdentifierError
from lakeshift.identifiers import check_identifier, quote_ansi, quote_mysql, split_table_name


@pytest.mark.parametrize("name", ["orders", "Order Items", "select", "MixedCase", "çà_日本", "a-b", "x$1"])
def test_names_needing_quotes_are_accepted_and_quoted(name: str) -> None:
    assert check_identifier(name) == name
    assert quote_ansi(name) == f'"{name}"'
    assert quote_mysql(name) == f"`{name}`"


@pytest.mark.parametrize("name", ["x; DROP TABLE y; --", "a`b", 'a"b', "a'b", "a\\b", "a\x00b", "a\nb",
                                  "x -- y", "a/*b", " lead", "trail ", "", "x" * 65])
def test_injection_shaped_names_are_rejected(name: str) -> None:
    with pytest.raises(IdentifierError):
        check_identifier(name)


def test_split_table_name() -> None:
    assert split_table_name("settlement.table_name") == ("settlement", "table_name")
    assert split_table_name("orders") == (None, "orders")
    with pytest.raises(IdentifierError, match="more than one"):
        split_table_name("a.b.c")


def test_redact_registered_secrets_and_dsn_shapes() -> None:
    redact.register("s3cr3t-Pa55word")
    text = "failed: mysql://root:s3cr3t-Pa55word@db:3306/x password=hunter22 and s3cr3t-Pa55word again"
    out = redact.redact(text)
    assert "s3cr3t-Pa55word" not in out
    assert "hunter22" not in out
    assert "mysql://root:***@db:3306/x" in out


@pytest.mark.parametrize("sent", ["YES", "NO"])
def test_mysql_using_password_words_are_kept(sent: str) -> None:
    """MySQL says whether a password was sent, not what it was: not a secret."""
    text = f"(1045, \"Access denied for user 'app'@'10.0.0.7' (using password: {sent})\")"
    assert redact.redact(text) == text


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("login failed: password: p)ss(w0rd", "p)ss(w0rd", "login failed: password: ***"),
        ("dsn host=h password=YES)x user=u", "YES)x", "dsn host=h password=*** user=u"),
        ("retry (password: s3cr)t) later", "s3cr)t", "retry (password: *** later"),
        ("(using password: YES) then password=hunter2)", "hunter2", "(using password: YES) then password=***"),
        ("(using password: hunter2)", "hunter2", "(using password: ***"),
    ],
    ids=["colon", "equals-yes-prefix", "in-parens", "after-mysql-words", "not-mysql-words"],
)
def test_password_values_with_parens_are_still_redacted(text: str, secret: str, expected: str) -> None:
    out = redact.redact(text)
    assert secret not in out
    assert out == expected


def test_libpq_message_for_two_addresses_is_one_line() -> None:
    from lakeshift.errors import one_line

    hint = "Is the server running on that host and accepting TCP/IP connections?"
    text = (f'connection failed: connection to server at "::1", port 1 failed: Connection refused\n\t{hint}\n'
            f'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\t{hint}\n')
    assert one_line(text) == (f'connection failed: connection to server at "::1", port 1 failed: Connection refused; '
                              f'{hint} connection to server at "127.0.0.1", port 1 failed: Connection refused')
