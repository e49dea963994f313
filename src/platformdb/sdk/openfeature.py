"""An OpenFeature provider (PyPI `openfeature-sdk`) over the local flag client.

    from openfeature import api
    from platformdb.sdk.openfeature import PlatformDBProvider

    api.set_provider(PlatformDBProvider(database_url=url, environment="production"))
    client = api.get_client()
    client.get_boolean_value("new-checkout", False, EvaluationContext(targeting_key=user_id))

The targeting key is the user id (a uuid), the context attributes feed the condition
strategy. Answers are exactly those of `is_feature_enabled` for the service; reasons:

| outcome                                 | value                | reason          |
|-----------------------------------------|----------------------|-----------------|
| strategy `all` / `none`                 | True / False         | STATIC          |
| strategy `percentage`                   | bucket <= percentage | SPLIT           |
| `user_list` / `condition` matched       | True                 | TARGETING_MATCH |
| `user_list` / `condition` not matched   | False                | DEFAULT         |
| flag disabled                           | False                | DISABLED        |
| unknown flag, not loaded yet, bad       | the caller's default | ERROR (and an   |
| context, a non-boolean type, a failure  |                      | error code)     |

The provider never raises to the caller: every failure becomes the default value with reason
ERROR. Flag changes arriving through LISTEN/NOTIFY are emitted as
PROVIDER_CONFIGURATION_CHANGED events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from platformdb.errors import InvalidInput
from platformdb.sdk.flags import Evaluation, FlagClient

T = TypeVar("T")

NAME = "platformdb"


def _reason(ev: Evaluation) -> str:
    if ev.reason == "disabled":
        return Reason.DISABLED
    if ev.rollout_strategy in ("all", "none"):
        return Reason.STATIC
    if ev.rollout_strategy == "percentage":
        return Reason.SPLIT
    return Reason.TARGETING_MATCH if ev.enabled else Reason.DEFAULT


class PlatformDBProvider(AbstractProvider):
    """Boolean flags from platformdb's feature_flags, evaluated locally."""

    def __init__(
        self,
        client: FlagClient | None = None,
        *,
        database_url: str | None = None,
        environment: str = "production",
        start_timeout: float = 10.0,
        **client_options: Any,
    ):
        super().__init__()
        self._owns_client = client is None
        self.client = client or FlagClient(database_url, environment=environment, **client_options)
        self.start_timeout = start_timeout
        previous = self.client.on_change

        def changed(keys: list[str]) -> None:
            if previous is not None:
                previous(keys)
            self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=keys))

        self.client.on_change = changed

    # ---- lifecycle ----
    def get_metadata(self) -> Metadata:
        return Metadata(name=NAME)

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        # never raises: until the first load succeeds, evaluations answer the default (ERROR)
        if self._owns_client:
            self.client.start(self.start_timeout)

    def shutdown(self) -> None:
        if self._owns_client:
            self.client.stop()

    # ---- resolution ----
    @staticmethod
    def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
        return FlagResolutionDetails(value=default, reason=Reason.ERROR, error_code=code, error_message=message)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        try:
            if not self.client.ready:
                return self._error(default_value, ErrorCode.PROVIDER_NOT_READY, "flags are not loaded yet")
            ctx = evaluation_context or EvaluationContext()
            ev = self.client.evaluate(flag_key, ctx.targeting_key or None, None, dict(ctx.attributes))
            if ev.reason == "unknown":
                return self._error(default_value, ErrorCode.FLAG_NOT_FOUND, f"no flag {flag_key!r} here")
            metadata: dict[str, bool | int | float | str] = {
                "environment": ev.flag_environment or "",
                "strategy": ev.rollout_strategy or "",
                "version": ev.flag_version or 0,
            }
            if ev.bucket is not None:
                metadata["bucket"] = ev.bucket
            return FlagResolutionDetails(
                value=ev.enabled,
                reason=_reason(ev),
                variant="on" if ev.enabled else "off",
                flag_metadata=metadata,
            )
        except InvalidInput as exc:
            return self._error(default_value, ErrorCode.INVALID_CONTEXT, str(exc))
        except Exception as exc:  # never raise to the caller
            return self._error(default_value, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def _variant(
        self, flag_key: str, default: Any, evaluation_context: EvaluationContext | None, kind: str
    ) -> FlagResolutionDetails[Any]:
        """A typed value from the flag's variant payload (string: string/csv payloads; integer
        and float: number payloads; object: json payloads); `variant` is the variant's name."""
        try:
            if not self.client.ready:
                return self._error(default, ErrorCode.PROVIDER_NOT_READY, "flags are not loaded yet")
            ctx = evaluation_context or EvaluationContext()
            if self.client.flag(flag_key) is None:
                self.client.is_enabled(flag_key)  # counted as unknown, as SQL counts it
                return self._error(default, ErrorCode.FLAG_NOT_FOUND, f"no flag {flag_key!r} here")
            v = self.client.get_variant(flag_key, ctx.targeting_key or None, None, dict(ctx.attributes))
            if not v.get("enabled"):
                reason = Reason.DISABLED if not v.get("feature_enabled") else Reason.DEFAULT
                return FlagResolutionDetails(value=default, reason=reason)
            payload = v.get("payload") or {}
            ptype, raw = payload.get("type"), str(payload.get("value"))
            value: Any
            try:
                if kind == "string" and ptype in ("string", "csv"):
                    value = raw
                elif kind == "integer" and ptype == "number" and float(raw).is_integer():
                    value = int(float(raw))
                elif kind == "float" and ptype == "number":
                    value = float(raw)
                elif kind == "object" and ptype == "json":
                    value = json.loads(raw)
                else:
                    return FlagResolutionDetails(
                        value=default,
                        reason=Reason.ERROR,
                        error_code=ErrorCode.TYPE_MISMATCH,
                        error_message=f"{flag_key!r}: variant {v['name']!r} has no {kind} payload",
                        variant=v["name"],
                    )
            except (TypeError, ValueError) as exc:
                return self._error(default, ErrorCode.PARSE_ERROR, f"{flag_key!r}: {exc}")
            return FlagResolutionDetails(value=value, reason=Reason.SPLIT, variant=v["name"])
        except InvalidInput as exc:
            return self._error(default, ErrorCode.INVALID_CONTEXT, str(exc))
        except Exception as exc:  # never raise to the caller
            return self._error(default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._variant(flag_key, default_value, evaluation_context, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._variant(flag_key, default_value, evaluation_context, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._variant(flag_key, default_value, evaluation_context, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._variant(flag_key, default_value, evaluation_context, "object")
