"""Every error opsloop raises, with a stable code and an HTTP status.

The hierarchy::

    OpsloopError                      INTERNAL            500
    ├── InvalidArgument               INVALID_ARGUMENT    400
    │   ├── PayloadTooLarge           PAYLOAD_TOO_LARGE   413
    │   ├── PipelineInvalid           PIPELINE_INVALID    400
    │   ├── AliasNotProtected         ALIAS_NOT_PROTECTED 400   (opsloop.governance)
    │   ├── PromptVariablesError      PROMPT_VARIABLES    400
    │   ├── ValidationFailed          DATASET_VALIDATION_FAILED 400   (opsloop.datasets)
    │   ├── UnknownScore              UNKNOWN_SCORE       400   (opsloop.feedback)
    │   ├── ScoreValueInvalid         SCORE_VALUE_INVALID 400   (opsloop.feedback)
    │   ├── NothingToExport           NOTHING_TO_EXPORT   400   (opsloop.feedback)
    │   ├── GuardrailBlocked          GUARDRAIL_BLOCKED   400   (opsloop.gateway)
    │   └── WorkflowDefinitionError   WORKFLOW_DEFINITION 400   (opsloop.workflows)
    ├── NotFound                      NOT_FOUND           404
    ├── AlreadyExists                 ALREADY_EXISTS      409
    ├── Conflict                      CONFLICT            409
    │   ├── PromotionRefused          PROMOTION_GATE_FAILED 409
    │   ├── ApprovalRequired          APPROVAL_REQUIRED   409   (opsloop.governance)
    │   ├── AliasProtected            ALIAS_PROTECTED     409   (opsloop.governance)
    │   ├── ApprovalNotPending        APPROVAL_NOT_PENDING 409  (opsloop.governance)
    │   ├── AuthNotEnabled            AUTH_NOT_ENABLED    409   (opsloop.governance)
    │   ├── OidcNotConfigured         OIDC_NOT_CONFIGURED 409   (opsloop.governance)
    │   ├── ScoreDefinitionConflict   SCORE_DEFINITION_CONFLICT 409 (opsloop.feedback)
    │   └── AnnotationKeyConflict     ANNOTATION_KEY_CONFLICT 409 (opsloop.feedback)
    ├── LimitExceeded                 GATEWAY_LIMIT       429   (opsloop.gateway: one per limit)
    │   ├── RateLimitRequests         RATE_LIMIT_REQUESTS 429
    │   ├── RateLimitInputTokens      RATE_LIMIT_INPUT_TOKENS 429
    │   ├── RateLimitOutputTokens     RATE_LIMIT_OUTPUT_TOKENS 429
    │   ├── BudgetDailyTokens         BUDGET_DAILY_TOKENS 429
    │   ├── BudgetMonthlyTokens       BUDGET_MONTHLY_TOKENS 429
    │   ├── BudgetDailyCost           BUDGET_DAILY_COST   429
    │   ├── BudgetMonthlyCost         BUDGET_MONTHLY_COST 429
    │   ├── InputTooLarge             REQUEST_INPUT_CAP   400
    │   └── OutputCapExceeded         REQUEST_OUTPUT_CAP  400
    ├── Unauthenticated               UNAUTHENTICATED     401
    │   ├── TokenRequired             TOKEN_REQUIRED      401   (opsloop.governance)
    │   ├── TokenInvalid              TOKEN_INVALID       401   (opsloop.governance)
    │   ├── TokenExpired              TOKEN_EXPIRED       401   (opsloop.governance)
    │   ├── TokenRevoked              TOKEN_REVOKED       401   (opsloop.governance)
    │   ├── SessionInvalid            SESSION_INVALID     401   (opsloop.governance)
    │   ├── SessionExpired            SESSION_EXPIRED     401   (opsloop.governance)
    │   └── OidcSignInFailed          OIDC_SIGN_IN_FAILED 401   (opsloop.governance)
    ├── PermissionDenied              PERMISSION_DENIED   403
    │   ├── NoPermissionRule          NO_PERMISSION_RULE  403   (opsloop.governance)
    │   ├── NotAReviewer              NOT_A_REVIEWER      403   (opsloop.governance)
    │   ├── CsrfTokenInvalid          CSRF_TOKEN_INVALID  403   (opsloop.governance)
    │   └── OidcUserRefused           OIDC_USER_REFUSED   403   (opsloop.governance)
    ├── SignInThrottled               SIGN_IN_RATE_LIMITED 429  (opsloop.governance)
    ├── SchemaOutOfDate               SCHEMA_OUT_OF_DATE  503
    ├── Unavailable                   UNAVAILABLE         503
    │   └── NoUpstream                GATEWAY_NO_UPSTREAM 503   (opsloop.gateway)
    ├── FlushError                    FLUSH_FAILED        500
    ├── ProviderError                 PROVIDER_ERROR      502
    │   └── ProviderTimeout           PROVIDER_TIMEOUT    504
    ├── JudgeError                    JUDGE_FAILED        502
    ├── OutputInvalid                 OUTPUT_INVALID      502
    ├── StepFailed                    WORKFLOW_STEP_FAILED 500  (opsloop.workflows)
    └── StepTimeout                   WORKFLOW_STEP_TIMEOUT 504 (opsloop.workflows)

Every subclass, wherever it is defined, registers its code when the class is
created (``OpsloopError.__init_subclass__``): a class needs a code of its own,
and a code already taken is refused with ``TypeError`` at definition time.
Classes defined outside this module are also listed in ``_DEFINED_ELSEWHERE``
so a client that never imported their module still rebuilds them.

The REST API answers every error in one JSON shape::

    {"error": {"code": "NOT_FOUND", "message": "...", "details": {...}}}

and the remote client turns that shape back into the same exception class, so
code written against the embedded client behaves the same against a server.
Codes are part of the public contract: never rename one.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "Conflict",
    "FlushError",
    "InvalidArgument",
    "JudgeError",
    "NotFound",
    "OpsloopError",
    "OutputInvalid",
    "PayloadTooLarge",
    "PermissionDenied",
    "PipelineInvalid",
    "PromotionRefused",
    "PromptVariablesError",
    "ProviderError",
    "ProviderTimeout",
    "SchemaOutOfDate",
    "Unauthenticated",
    "Unavailable",
    "error_from_payload",
]


_CODE_SHAPE = re.compile(r"[A-Z][A-Z0-9_]*")

# code -> class, filled as each class is created (see OpsloopError.__init_subclass__).
_BY_CODE: dict[str, type[OpsloopError]] = {}

# Codes of the classes defined outside this module -> the module defining them.
# ``error_from_payload`` imports it on first sight of the code, so a remote client
# rebuilds the same class as the embedded one raised. A test keeps this complete.
_DEFINED_ELSEWHERE: dict[str, str] = {
    "DATASET_VALIDATION_FAILED": "opsloop.datasets._rules",
    "UNKNOWN_SCORE": "opsloop.feedback._errors",
    "SCORE_VALUE_INVALID": "opsloop.feedback._errors",
    "SCORE_DEFINITION_CONFLICT": "opsloop.feedback._errors",
    "ANNOTATION_KEY_CONFLICT": "opsloop.feedback._errors",
    "NOTHING_TO_EXPORT": "opsloop.feedback._errors",
    "GATEWAY_LIMIT": "opsloop.gateway._errors",
    "RATE_LIMIT_REQUESTS": "opsloop.gateway._errors",
    "RATE_LIMIT_INPUT_TOKENS": "opsloop.gateway._errors",
    "RATE_LIMIT_OUTPUT_TOKENS": "opsloop.gateway._errors",
    "BUDGET_DAILY_TOKENS": "opsloop.gateway._errors",
    "BUDGET_MONTHLY_TOKENS": "opsloop.gateway._errors",
    "BUDGET_DAILY_COST": "opsloop.gateway._errors",
    "BUDGET_MONTHLY_COST": "opsloop.gateway._errors",
    "REQUEST_INPUT_CAP": "opsloop.gateway._errors",
    "REQUEST_OUTPUT_CAP": "opsloop.gateway._errors",
    "GUARDRAIL_BLOCKED": "opsloop.gateway._errors",
    "GATEWAY_NO_UPSTREAM": "opsloop.gateway._errors",
    "WORKFLOW_DEFINITION": "opsloop.workflows._errors",
    "WORKFLOW_STEP_FAILED": "opsloop.workflows._errors",
    "WORKFLOW_STEP_TIMEOUT": "opsloop.workflows._errors",
    "TOKEN_REQUIRED": "opsloop.governance._errors",
    "TOKEN_INVALID": "opsloop.governance._errors",
    "TOKEN_EXPIRED": "opsloop.governance._errors",
    "TOKEN_REVOKED": "opsloop.governance._errors",
    "NO_PERMISSION_RULE": "opsloop.governance._errors",
    "SIGN_IN_RATE_LIMITED": "opsloop.governance._errors",
    "APPROVAL_REQUIRED": "opsloop.governance._errors",
    "ALIAS_PROTECTED": "opsloop.governance._errors",
    "APPROVAL_NOT_PENDING": "opsloop.governance._errors",
    "ALIAS_NOT_PROTECTED": "opsloop.governance._errors",
    "NOT_A_REVIEWER": "opsloop.governance._errors",
    "SESSION_INVALID": "opsloop.governance._errors",
    "SESSION_EXPIRED": "opsloop.governance._errors",
    "CSRF_TOKEN_INVALID": "opsloop.governance._errors",
    "AUTH_NOT_ENABLED": "opsloop.governance._errors",
    "OIDC_NOT_CONFIGURED": "opsloop.governance._errors",
    "OIDC_SIGN_IN_FAILED": "opsloop.governance._errors",
    "OIDC_USER_REFUSED": "opsloop.governance._errors",
}


def _register(cls: type[OpsloopError]) -> None:
    """Record ``cls.code -> cls``; refuse a missing, malformed or already taken code."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    code = cls.__dict__.get("code")
    if not isinstance(code, str) or not _CODE_SHAPE.fullmatch(code):
        raise TypeError(
            f"{name} must declare its own error code (an UPPER_SNAKE_CASE `code = ...` "
            f"in its class body), got {code!r}"
        )
    status = getattr(cls, "http_status", None)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise TypeError(
            f"{name}.http_status must be an HTTP error status (4xx/5xx), got {status!r}"
        )
    taken = _BY_CODE.get(code)
    if taken is not None and (taken.__module__, taken.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):  # the same class defined again (a module reload) replaces itself
        raise TypeError(
            f"error code {code!r} of {name} is already taken by "
            f"{taken.__module__}.{taken.__qualname__}; every error class needs a code of its own"
        )
    _BY_CODE[code] = cls


class OpsloopError(Exception):
    """Base of all opsloop errors: carries ``code``, ``http_status`` and ``details``."""

    code: ClassVar[str] = "INTERNAL"
    http_status: ClassVar[int] = 500

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    @classmethod
    def _from_payload(cls, message: str, details: dict[str, Any] | None) -> OpsloopError:
        """The exception ``error_from_payload`` rebuilds; a class whose ``__init__``
        takes other arguments overrides this."""
        return cls(message, details=details)

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the REST API answers with."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


_register(OpsloopError)


class InvalidArgument(OpsloopError):
    """The request is malformed or a value is out of bounds."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class PayloadTooLarge(InvalidArgument):
    """A request body, batch or value is over its size limit."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class NotFound(OpsloopError):
    """The named object does not exist (or was deleted)."""

    code = "NOT_FOUND"
    http_status = 404


class AlreadyExists(OpsloopError):
    """An object with that unique name already exists."""

    code = "ALREADY_EXISTS"
    http_status = 409


class Conflict(OpsloopError):
    """The request contradicts stored state (for example a param logged twice with different values)."""

    code = "CONFLICT"
    http_status = 409


class Unauthenticated(OpsloopError):
    """No valid credentials were given."""

    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(OpsloopError):
    """The caller may not do this."""

    code = "PERMISSION_DENIED"
    http_status = 403


class SchemaOutOfDate(OpsloopError):
    """The database schema is older than this opsloop; run ``opsloop db upgrade``."""

    code = "SCHEMA_OUT_OF_DATE"
    http_status = 503


class Unavailable(OpsloopError):
    """The server or database could not be reached; retrying later may work."""

    code = "UNAVAILABLE"
    http_status = 503


class FlushError(OpsloopError):
    """Buffered metric points could not be written; they are kept for the next flush."""

    code = "FLUSH_FAILED"
    http_status = 500


class JudgeError(OpsloopError):
    """The judge model gave no usable verdict after every retry (``details`` holds its last reply)."""

    code = "JUDGE_FAILED"
    http_status = 502


class PromotionRefused(Conflict):
    """An alias move broke the model's promotion gate; ``details["failures"]`` lists each rule."""

    code = "PROMOTION_GATE_FAILED"
    http_status = 409


class PipelineInvalid(InvalidArgument):
    """A pipeline declaration (Python or YAML) is malformed; the message names the step and field."""

    code = "PIPELINE_INVALID"
    http_status = 400


class PromptVariablesError(InvalidArgument):
    """A prompt's variables do not fit: missing or unknown at render, or declared wrongly.

    ``details`` names them (render: ``missing``, ``unknown``, ``expected``).
    """

    code = "PROMPT_VARIABLES"
    http_status = 400


class OutputInvalid(OpsloopError):
    """A model's output failed its JSON schema after every repair attempt (``details``: last error)."""

    code = "OUTPUT_INVALID"
    http_status = 502


class ProviderError(OpsloopError):
    """A model provider (an HTTP endpoint or a local model) failed.

    ``details`` holds the upstream ``status`` and ``message`` when there was an answer.
    """

    code = "PROVIDER_ERROR"
    http_status = 502


class ProviderTimeout(ProviderError):
    """A model provider did not answer in time (after every retry)."""

    code = "PROVIDER_TIMEOUT"
    http_status = 504


def _class_for(code: str) -> type[OpsloopError]:
    """The class registered for ``code``, importing its module if it lives elsewhere."""
    cls = _BY_CODE.get(code)
    if cls is None and code in _DEFINED_ELSEWHERE:
        try:
            importlib.import_module(_DEFINED_ELSEWHERE[code])
        except ImportError:  # pragma: no cover - its optional extra is not installed
            return OpsloopError
        cls = _BY_CODE.get(code)
    return cls or OpsloopError


def error_from_payload(payload: Any, status: int) -> OpsloopError:
    """Rebuild the exception a server answered with; unknown shapes become ``OpsloopError``."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        cls = _class_for(str(err.get("code")))
        details = err.get("details") if isinstance(err.get("details"), dict) else None
        return cls._from_payload(str(err.get("message", "")), details)
    return OpsloopError(f"server answered HTTP {status} without an opsloop error body")
