"""S3 the way the AWS tools find it (issue 17, item 5): with no endpoint_url
and no keys in the storage, every S3 client lakeshift builds -- pyarrow's for
the lake's files and boto3's for encrypted writes and multipart listings --
takes the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or the AWS
config file, and its keys from the standard credential chain.

The moto server checks signatures here (IAM authentication on): a request
signed with keys moto's IAM does not know is refused, so a passing test
proves the keys came from the source under test. Every other AWS setting is
cleared, AWS_EC2_METADATA_DISABLED stays true, and everything is on loopback.
Instance roles (IMDS on 169.254.169.254) cannot run here."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from conftest import unique
from lakeshift.config.models import S3Storage
from lakeshift.errors import LakeError
from lakeshift.lake.s3 import S3Lake
from lakeshift.s3_clients import chain_keys, endpoint

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
            "AWS_REGION")


def _admin(endpoint_url: str, key: dict[str, str] | None = None, service: str = "s3") -> Any:
    creds = (key["AccessKeyId"], key["SecretAccessKey"]) if key else ("admin", "admin")
    return boto3.session.Session().client(service, endpoint_url=endpoint_url, region_name="us-east-1",
                                          aws_access_key_id=creds[0], aws_secret_access_key=creds[1])


@pytest.fixture
def iam_key(s3_endpoint: str) -> dict[str, str]:
    """Keys moto's IAM knows (made while authentication is still off)."""
    iam = _admin(s3_endpoint, service="iam")
    user = unique("lakeshift")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=ALLOW_ALL)
    return iam.create_access_key(UserName=user)["AccessKey"]


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = unique("ls-chain").replace("_", "-")
    _admin(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS setting but what the test writes: empty config/credentials files in tmp_path."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    return tmp_path


@pytest.fixture
def signed() -> Iterator[None]:
    """moto refuses requests not signed with keys its IAM knows."""
    with enable_iam_authentication():
        yield


def storage(bucket: str, **extra: Any) -> S3Storage:
    return S3Storage(type="s3", bucket=bucket, prefix="lake", **extra)


def exercise(bucket: str, **extra: Any) -> None:
    """Every client: pyarrow writes, lists, reads and deletes; boto3 writes with
    encryption headers (a single PUT and a multipart upload) and lists uploads."""
    folder = unique("probe")
    lake = S3Lake(storage(bucket, **extra))
    lake.write_bytes(f"{folder}/plain.txt", b"plain")
    assert lake.read_bytes(f"{folder}/plain.txt") == b"plain"
    assert [f.path for f in lake.list(folder)] == [f"{folder}/plain.txt"]
    lake.delete([f"{folder}/plain.txt"])
    assert not lake.exists(f"{folder}/plain.txt")
    sse = S3Lake(storage(bucket, server_side_encryption="AES256", **extra))
    sse.write_bytes(f"{folder}/sse.txt", b"sealed")
    with sse.open_output_stream(f"{folder}/big.bin") as out:
        out.write(b"x" * (9 * 1024 * 1024))  # two parts: a multipart upload through boto3
    assert sse.read_bytes(f"{folder}/sse.txt") == b"sealed" and sse.size(f"{folder}/big.bin") == 9 * 1024 * 1024
    assert sse.incomplete_uploads(folder) == []


def test_without_credentials_moto_refuses(aws_env: Path, s3_endpoint: str, bucket: str, signed: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: keys moto does not know are refused, so the tests below prove their source."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-known-secret")
    with pytest.raises(LakeError, match="rejected|denied"):
        S3Lake(storage(bucket, endpoint_url=s3_endpoint)).write_bytes("probe/x.txt", b"x")


def test_environment_keys_and_aws_endpoint_url_s3(aws_env: Path, s3_endpoint: str, bucket: str,
                                                  iam_key: dict[str, str], signed: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_key["SecretAccessKey"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the S3-specific variable wins
    assert endpoint(storage(bucket)).describe() == f"{s3_endpoint} (from AWS_ENDPOINT_URL_S3)"
    exercise(bucket)
    assert chain_keys() == (iam_key["AccessKeyId"], iam_key["SecretAccessKey"], None)


def test_aws_endpoint_url_alone(aws_env: Path, s3_endpoint: str, bucket: str, iam_key: dict[str, str],
                                signed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", iam_key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", iam_key["SecretAccessKey"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    exercise(bucket)
    # endpoint_url in the storage still wins over the environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert endpoint(storage(bucket, endpoint_url=s3_endpoint)).url == s3_endpoint
    exercise(bucket, endpoint_url=s3_endpoint)


def test_a_profile_in_the_shared_credentials_file(aws_env: Path, s3_endpoint: str, bucket: str,
                                                  iam_key: dict[str, str], signed: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (aws_env / "aws-credentials").write_text(
        "[default]\naws_access_key_id = AKIAUNKNOWN000000000\naws_secret_access_key = wrong\n\n"
        f"[lake]\naws_access_key_id = {iam_key['AccessKeyId']}\naws_secret_access_key = {iam_key['SecretAccessKey']}\n")
    monkeypatch.setenv("AWS_PROFILE", "lake")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    exercise(bucket)


def test_the_config_file_gives_the_keys_and_the_endpoint(aws_env: Path, s3_endpoint: str, bucket: str,
                                                         iam_key: dict[str, str], signed: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (aws_env / "aws-config").write_text(
        f"[profile minio]\naws_access_key_id = {iam_key['AccessKeyId']}\n"
        f"aws_secret_access_key = {iam_key['SecretAccessKey']}\nservices = local\n\n"
        f"[services local]\ns3 =\n  endpoint_url = {s3_endpoint}\n\n"
        f"[profile plain]\naws_access_key_id = {iam_key['AccessKeyId']}\n"
        f"aws_secret_access_key = {iam_key['SecretAccessKey']}\nendpoint_url = {s3_endpoint}\n")
    for profile in ("minio", "plain"):
        monkeypatch.setenv("AWS_PROFILE", profile)
        assert endpoint(storage(bucket)).describe() == f"{s3_endpoint} (from the AWS config file)"
        exercise(bucket)
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")  # as the AWS CLI: back to AWS S3
    assert endpoint(storage(bucket)).url is None


def test_an_unknown_profile_is_one_line(aws_env: Path, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(LakeError, match=r"^cannot open s3://.*profile \(nope\) could not be found.*AWS_PROFILE"):
        S3Lake(storage(bucket)).filesystem


class _ContainerCredentials(http.server.BaseHTTPRequestHandler):
    """The ECS/EKS container credentials endpoint: keys for the right token only."""

    key: dict[str, str] = {}
    token = "container-token-0123"
    calls: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.calls.append(self.path)
        if self.headers.get("Authorization") != self.token:
            self.send_response(401)
            self.end_headers()
            return
        expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"AccessKeyId": self.key["AccessKeyId"], "SecretAccessKey": self.key["SecretAccessKey"],
                           "Token": "", "Expiration": expires}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_container_credentials(aws_env: Path, s3_endpoint: str, bucket: str, iam_key: dict[str, str],
                               signed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = type("Handler", (_ContainerCredentials,), {"key": iam_key, "calls": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{server.server_address[1]}/creds")
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", handler.token)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
        exercise(bucket)
        assert chain_keys() == (iam_key["AccessKeyId"], iam_key["SecretAccessKey"], None)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.calls and set(handler.calls) == {"/creds"}  # pyarrow's and boto3's chains both asked


def test_web_identity_through_sts(aws_env: Path, s3_endpoint: str, bucket: str, signed: None,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's chain (and so the Redshift COPY's keys) assumes the role at moto's STS.
    pyarrow's own chain cannot be pointed at a loopback STS (the AWS C++ SDK's
    web identity client ignores AWS_ENDPOINT_URL_STS), so only boto3 is checked."""
    from moto.sts.responses import TokenResponse

    with pytest.MonkeyPatch.context() as off:  # role setup before moto checks signatures
        off.setattr("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
        iam = _admin(s3_endpoint, service="iam")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Federated": "oidc.example"}, "Action": "sts:AssumeRoleWithWebIdentity"}]})
        role = iam.create_role(RoleName=unique("lakeshift"), AssumeRolePolicyDocument=trust)["Role"]
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="all", PolicyDocument=ALLOW_ALL)
    # AssumeRoleWithWebIdentity is an unsigned call; moto would ask it for a signature
    monkeypatch.setattr(TokenResponse, "_authenticate_and_authorize_normal_action", lambda self, resource="*": None)
    (aws_env / "token").write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsYWtlc2hpZnQifQ.c2ln")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(aws_env / "token"))
    monkeypatch.setenv("AWS_ROLE_ARN", role["Arn"])
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "lakeshift-test")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    key_id, secret, token = chain_keys() or ("", "", None)
    assert key_id.startswith("ASIA") and token  # temporary keys from STS
    sse = S3Lake(storage(bucket, server_side_encryption="AES256"))
    sse.write_bytes("probe/web-identity.txt", b"assumed")
    assert sse.incomplete_uploads("probe") == []
    got = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                       aws_secret_access_key=secret, aws_session_token=token)
    assert got.get_object(Bucket=bucket, Key="lake/probe/web-identity.txt")["Body"].read() == b"assumed"


def test_a_backup_only_sync_finds_s3_like_the_aws_cli(aws_env: Path, s3_endpoint: str, bucket: str,
                                                      iam_key: dict[str, str], mysql: Any, mysql_db: str,
                                                      cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The v1.0 report: a storage without endpoint_url, the endpoint in AWS_ENDPOINT_URL_S3 and the
    keys in a profile; the whole sync writes its batch there (and says so in the summary)."""
    from kit.config import build_config

    from conftest import mysql_exec

    mysql_exec(mysql, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10))",
               "INSERT INTO items VALUES (1, 'a'), (2, 'b')")
    (aws_env / "aws-credentials").write_text(
        f"[lake]\naws_access_key_id = {iam_key['AccessKeyId']}\naws_secret_access_key = {iam_key['SecretAccessKey']}\n")
    monkeypatch.setenv("AWS_PROFILE", "lake")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    config = build_config(aws_env / "config", mysql_db, {"type": "duckdb", "path": str(aws_env / "w.duckdb")},
                          {"type": "s3", "bucket": bucket, "prefix": "lake"}, {"items": {"cdc_strategy": "full_sync"}})
    with enable_iam_authentication():
        result = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--backup-only", config_dir=config)
        assert result.exit_code == 0, result.output + result.stderr
        monkeypatch.delenv("AWS_PROFILE")
        listed = _admin(s3_endpoint, iam_key).list_objects_v2(Bucket=bucket, Prefix="lake/p1/items/")
    assert any(o["Key"].endswith(".parquet") for o in listed.get("Contents", []))
    row = next(line for line in result.output.splitlines() if line.startswith("│ items "))
    assert [c.strip() for c in row.strip("│").split("│")][2:7] == ["2", "0", "0", "1", "0"]  # rows extracted, loaded, deleted; batches written, loaded
