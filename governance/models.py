"""Tables owned by the core: the deployment's identity and the API keys."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from governance.types import Timestamp


class Deployment(SQLModel, table=True):
    """The one row that makes this deployment unique: its EIP-712 salt, made by ``dao init``."""

    __tablename__ = "deployment"

    id: int = Field(default=1, primary_key=True)
    salt: str = Field(max_length=66)  # 0x + 32 bytes hex
    created_at: int = Field(sa_type=Timestamp)


class ApiKey(SQLModel, table=True):
    """A key for operators, executors or guardians. Only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)  # shown in listings so an operator can tell keys apart
    label: str = Field(default="", max_length=200)
    created_at: int = Field(sa_type=Timestamp)
    revoked_at: int | None = Field(default=None, sa_type=Timestamp)
