"""Models of connections.yml: MySQL sources, PostgreSQL/Redshift/DuckDB targets,
S3 or local lake storage, and the settings they share (pools, TLS, SSH tunnels)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from lakeshift.config.fields import Duration, Identifier, Model, Port


class PoolSettings(Model):
    min_connections: int = Field(1, ge=0, le=100)
    max_connections: int = Field(5, ge=1, le=100)
    retry_attempts: int = Field(3, ge=0, le=20)

    @model_validator(mode="after")
    def _min_le_max(self) -> PoolSettings:
        if self.min_connections > self.max_connections:
            raise ValueError(
                f"min_connections ({self.min_connections}) is larger than max_connections ({self.max_connections})"
            )
        return self


class SSHTunnel(Model):
    enabled: bool = False
    host: str | None = None
    port: Port = 22
    username: str | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    password: SecretStr | None = None
    known_hosts: str | None = Field(
        None, description="known_hosts file; default ~/.ssh/known_hosts. Unknown host keys are refused."
    )
    host_key: str | None = Field(
        None, description="pinned server public key ('ssh-ed25519 AAAA...'); used instead of known_hosts"
    )
    strict_host_key_checking: bool = True


class TLSSettings(Model):
    mode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class _Database(Model):
    """Fields shared by networked databases. Values that come from an unset
    variable are None here and listed in `unresolved` (key -> variable)."""

    host: str | None = None
    port: Port
    database: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    ssh_tunnel: SSHTunnel | None = None
    ssl: TLSSettings | None = None
    description: str | None = None
    connect_timeout: int | None = Field(None, ge=1, le=3600)


class MySQLSource(_Database):
    type: Literal["mysql", "mariadb"] = "mysql"
    port: Port = 3306
    connection_pool: PoolSettings = Field(default_factory=PoolSettings)
    statement_timeout: Duration = Field(
        timedelta(hours=1), description="the server stops a read statement after this long; 0 = no limit")
    stall_timeout: Duration | None = Field(
        None, description="the reader gives up when MySQL sends nothing for this long; "
                          "default statement_timeout + 60s (none when statement_timeout is 0); 0 = never")

    @field_validator("statement_timeout", "stall_timeout")
    @classmethod
    def _not_negative(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 0:
            raise ValueError("must be 0 or more")
        return value


class PostgresTarget(_Database):
    type: Literal["postgres", "postgresql"]
    port: Port = 5432
    schema_: Identifier = Field("public", alias="schema")
    connection_pool: PoolSettings = Field(default_factory=PoolSettings)

    model_config = ConfigDict(populate_by_name=True)


class RedshiftTarget(PostgresTarget):
    type: Literal["redshift"]  # type: ignore[assignment]
    port: Port = 5439
    iam_role: str | None = Field(None, description="IAM role ARN used by COPY; preferred over keys")


class DuckDBTarget(Model):
    type: Literal["duckdb"]
    path: str = Field(..., description="DuckDB database file")
    schema_: Identifier = Field("main", alias="schema")
    description: str | None = None

    model_config = ConfigDict(populate_by_name=True)


Target = Annotated[Union[PostgresTarget, RedshiftTarget, DuckDBTarget], Field(discriminator="type")]


class S3Storage(Model):
    type: Literal["s3"]
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    description: str | None = None

    @field_validator("prefix")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip("/")

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> S3Storage:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be given together")
        return self


class LocalStorage(Model):
    type: Literal["local"]
    path: str
    description: str | None = None


Storage = Annotated[Union[S3Storage, LocalStorage], Field(discriminator="type")]


class ConnectionSettings(Model):
    default_timeout: int = Field(30, ge=1, le=3600)
    connection_retry_delay: float = Field(5, ge=0, le=600)
    pool_recycle_time: int = Field(3600, ge=1)
    health_check_interval: int = Field(300, ge=1)
