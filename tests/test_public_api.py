"""The public surface is exactly what we mean it to be (changing it is a deliberate act)."""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys

import pytest

import opsloop

EXPECTED = {
    "opsloop": [
        "ActiveRun",
        "Client",
        "Settings",
        "__version__",
        "active_run",
        "end_run",
        "flush",
        "get_client",
        "log_artifact",
        "log_artifacts",
        "log_dict",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_text",
        "set_experiment",
        "set_tag",
        "set_tags",
        "set_tracking_uri",
        "start_run",
    ],
    "opsloop.errors": [
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
    ],
    "opsloop.tracking": [
        "DEFAULT_EXPERIMENT",
        "ArtifactInfo",
        "ArtifactService",
        "Experiment",
        "LatestMetric",
        "MetricHistory",
        "MetricPoint",
        "MetricPoints",
        "Run",
        "RunComparison",
        "RunPage",
        "EmbeddedTracking",
        "RemoteTracking",
        "RunStatus",
        "SystemMetricsSampler",
        "Tracking",
        "TrackingBackend",
        "TrackingService",
        "artifact_service",
        "runs_table",
        "tracking_service",
        "MAX_TAG_VALUE",
        "check_key",
        "int64",
        "metric_value",
        "param_value",
    ],
    "opsloop.store": [
        "SCHEMA_HEAD",
        "ArtifactStore",
        "BlobInfo",
        "BlobStat",
        "Database",
        "GcReport",
        "LocalArtifactStore",
        "TempFile",
        "blob_ref_columns",
        "check_digest",
        "collect_garbage",
        "delete_batch",
        "metadata",
        "now_ms",
        "open_artifact_store",
        "update_batch",
        "upsert",
    ],
    "opsloop.core": [
        "ACTOR_HEADER",
        "AUTHENTICATED_USER",
        "BackgroundFlusher",
        "ClientProperty",
        "Context",
        "HasContext",
        "Nav",
        "Room",
        "Transport",
        "UiRoute",
        "VERSION",
        "active_run_id",
        "actor_from_header",
        "context_of",
        "default_context",
        "hooks",
        "load_ref",
        "mask_pii",
        "mask_pii_value",
        "os_user",
        "pop_active_run",
        "push_active_run",
        "quote_segment",
        "resolve_user",
        "set_default_context",
        "upload_missing_blobs",
    ],
    "opsloop.rooms": ["ROOMS", "client_properties", "declarations", "load_all_tables"],
    "opsloop.llm": [
        "BundledModel",
        "ChatResponse",
        "Constraint",
        "EmbeddingResponse",
        "LocalProvider",
        "OpenAIProvider",
        "Provider",
        "RetryPolicy",
        "SecretStore",
        "StreamChunk",
        "ToolPlan",
        "Usage",
        "apply_masks",
        "bundled_models",
        "check_local",
        "clear_model_cache",
        "compile_response_format",
        "example_schemas",
        "fill_masks",
        "get_provider",
        "grammar_tokenizer",
        "load_local_model",
        "parse_tool_calls",
        "plan_tools",
        "render_tool_messages",
        "token_bytes",
    ],
    "opsloop.pipelines": [
        "AgentStep",
        "CiteStep",
        "FunctionTool",
        "KnowledgeBaseQA",
        "LLMStep",
        "LoadedPipeline",
        "LocalCorpusSearch",
        "ParseStep",
        "Pipeline",
        "PipelineResult",
        "PromptStep",
        "PythonStep",
        "RetrieveStep",
        "FILTERS",
        "RunContext",
        "Step",
        "Tool",
        "ToolStep",
        "WebSearch",
        "WebSearchTool",
        "build_rag_index",
        "extract_json",
        "rag_qa",
        "save_pipeline",
        "structured",
        "structured_pipeline",
        "summarize_then_answer",
    ],
    "opsloop.retrieval": [
        "BM25",
        "Embedder",
        "Indexes",
        "RemoteIndex",
        "Retriever",
        "SearchHit",
        "VectorIndex",
        "check_name",
        "index_chunks",
        "index_collection",
        "keyword_tokens",
        "rrf",
    ],
    "opsloop.server": ["API_PREFIX", "create_app", "serve"],
    "opsloop.selection": [
        "Constraints",
        "EndpointModel",
        "Leaderboard",
        "LeaderboardRow",
        "Recommendation",
        "Selection",
        "pareto_front",
        "recommend",
        "select_model",
        "violations",
    ],
    "opsloop.finetune": [
        "TERMINAL_STATES",
        "EmbeddedFinetune",
        "Finetune",
        "FinetuneBackend",
        "FinetuneJob",
        "FinetuneService",
        "JobSpec",
        "JobState",
        "Method",
        "RemoteFinetune",
        "finetune_jobs_table",
        "finetune_service",
    ],
    "opsloop.loop": [
        "DEFAULT_TRAINING",
        "GATE_METRIC",
        "GATE_MIN",
        "LOOP_EXPERIMENT",
        "QUALITY_METRIC",
        "STAGES",
        "Compared",
        "Decision",
        "LineageCheck",
        "LoopArtifacts",
        "LoopClient",
        "LoopReport",
        "Tuned",
        "check_lineage",
        "check_loop_arguments",
        "evaluate_versions",
        "finetune_version",
        "gate_and_promote",
        "loop_client",
        "rag_pipeline",
        "run_loop",
    ],
    "opsloop.settings": ["Settings"],
    "opsloop.mlflowapi": [
        "ARTIFACTS_PREFIX",
        "PREFIX",
        "artifacts_router",
        "router",
        "run_filter",
        "run_order_by",
    ],
    "opsloop.feedback": [
        "Agreement",
        "Annotation",
        "AnnotationKeyConflict",
        "AnnotationQueue",
        "AnnotatorProgress",
        "ExportLink",
        "ExportResult",
        "Feedback",
        "FeedbackService",
        "JudgeAgreement",
        "NothingToExport",
        "PairAgreement",
        "QueueItem",
        "QueueProgress",
        "ScoreDefinition",
        "ScoreDefinitionConflict",
        "ScoreValueInvalid",
        "TrainingData",
        "UnknownScore",
        "cohen_kappa",
        "krippendorff_alpha",
        "mask_pii",
        "score_filter",
    ],
    "opsloop.governance": [
        "ROLES",
        "AliasNotProtected",
        "AliasProtected",
        "Approval",
        "ApprovalNotPending",
        "ApprovalRequired",
        "AuditCheck",
        "AuditEntry",
        "AuthNotEnabled",
        "CsrfTokenInvalid",
        "Governance",
        "NewToken",
        "NoPermissionRule",
        "NotAReviewer",
        "OidcNotConfigured",
        "OidcSignInFailed",
        "OidcUserRefused",
        "Principal",
        "Protection",
        "RetentionPolicy",
        "RetentionReport",
        "RetentionResult",
        "Role",
        "SessionExpired",
        "SessionInvalid",
        "SignInThrottled",
        "Token",
        "TokenExpired",
        "TokenInvalid",
        "TokenRequired",
        "TokenRevoked",
    ],
    "opsloop.gateway": [
        "Breaker",
        "BreakerSpec",
        "BudgetDailyCost",
        "BudgetDailyTokens",
        "BudgetMonthlyCost",
        "BudgetMonthlyTokens",
        "CACHE_HEADER",
        "CacheSpec",
        "CreatedKey",
        "DECISIONS_HEADER",
        "Gateway",
        "GatewayService",
        "GuardSpec",
        "GuardrailBlocked",
        "InputTooLarge",
        "LimitExceeded",
        "Limits",
        "NoUpstream",
        "OVERHEAD_HEADER",
        "OutputCapExceeded",
        "Prices",
        "ROUTE_HEADER",
        "RateLimitInputTokens",
        "RateLimitOutputTokens",
        "RateLimitRequests",
        "RetrySpec",
        "Route",
        "RouteSpec",
        "SIMILARITY_HEADER",
        "SemanticCache",
        "StreamGuard",
        "Team",
        "Upstream",
        "UsageReport",
        "UsageRow",
        "VirtualKey",
        "create_gateway_app",
        "detect_injection",
        "find_pii",
        "find_secrets",
        "iban_valid",
        "luhn_valid",
        "meaning_differs",
        "redact",
        "run_gateway",
    ],
    "opsloop.evaluation.benchmarks": [
        "BenchmarkResult",
        "LoglikelihoodRequest",
        "Normalization",
        "TaskResult",
        "TaskSpec",
        "encode_pair",
        "extract_number",
        "list_tasks",
        "load_task",
        "loglikelihoods",
        "normalize_answer",
        "parse_task",
        "read_records",
        "run_benchmark",
    ],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_all_is_exactly_the_public_surface(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        obj = getattr(mod, name)
        owner = getattr(obj, "__module__", None) or ""
        # Public names may live in private modules, but a private type never leaks by its own name.
        assert not name.startswith("_") or name == "__version__"
        if inspect.isclass(obj):
            assert not obj.__name__.startswith("_"), f"{module}.{name} is a private class"
            assert owner.startswith("opsloop"), owner


def test_dir_lists_lazy_names() -> None:
    assert set(EXPECTED["opsloop"]) <= set(dir(opsloop))
    with pytest.raises(AttributeError):
        opsloop.does_not_exist  # noqa: B018


def test_error_codes_are_stable() -> None:
    from opsloop import errors

    codes = {
        name: (getattr(errors, name).code, getattr(errors, name).http_status)
        for name in errors.__all__
        if name[0].isupper()
    }
    assert codes == {
        "AlreadyExists": ("ALREADY_EXISTS", 409),
        "Conflict": ("CONFLICT", 409),
        "FlushError": ("FLUSH_FAILED", 500),
        "InvalidArgument": ("INVALID_ARGUMENT", 400),
        "JudgeError": ("JUDGE_FAILED", 502),
        "NotFound": ("NOT_FOUND", 404),
        "OpsloopError": ("INTERNAL", 500),
        "OutputInvalid": ("OUTPUT_INVALID", 502),
        "PayloadTooLarge": ("PAYLOAD_TOO_LARGE", 413),
        "PermissionDenied": ("PERMISSION_DENIED", 403),
        "PipelineInvalid": ("PIPELINE_INVALID", 400),
        "PromotionRefused": ("PROMOTION_GATE_FAILED", 409),
        "PromptVariablesError": ("PROMPT_VARIABLES", 400),
        "ProviderError": ("PROVIDER_ERROR", 502),
        "ProviderTimeout": ("PROVIDER_TIMEOUT", 504),
        "SchemaOutOfDate": ("SCHEMA_OUT_OF_DATE", 503),
        "Unauthenticated": ("UNAUTHENTICATED", 401),
        "Unavailable": ("UNAVAILABLE", 503),
    }
    from opsloop.datasets import ValidationFailed as VF

    assert (VF.code, VF.http_status) == ("DATASET_VALIDATION_FAILED", 400)


def test_client_surface() -> None:
    public = sorted(n for n in dir(opsloop.Client) if not n.startswith("_"))
    assert public == sorted(
        [
            "backend",
            "close",
            "context",
            "datasets",
            "deployments",
            "feedback",
            "evaluation",
            "finetune",
            "indexes",
            "gateway",
            "governance",
            "prompts",
            "registry",
            "tracing",
            "tuning",
            "workflows",
            "compare_runs",
            "create_experiment",
            "create_run",
            "delete_experiment",
            "delete_experiment_tag",
            "delete_run",
            "delete_tag",
            "download_artifacts",
            "flush",
            "get_experiment",
            "get_experiment_by_name",
            "get_metric_history",
            "get_or_create_experiment",
            "get_run",
            "is_remote",
            "iter_runs",
            "list_artifacts",
            "list_experiments",
            "list_metric_keys",
            "log_artifact",
            "log_artifacts",
            "log_batch",
            "log_dict",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_text",
            "monitoring",
            "pending_points",
            "read_artifact",
            "restore_experiment",
            "restore_run",
            "search_runs",
            "set_experiment_tag",
            "set_metric_goal",
            "set_tag",
            "set_tags",
            "set_terminated",
            "tracking_uri",
            "update_experiment",
            "update_run",
        ]
    )


def test_openapi_schema_lists_the_tracking_routes(tmp_path: object) -> None:
    from opsloop.server import create_app
    from opsloop.settings import Settings

    app = create_app(Settings(home=str(tmp_path)))
    spec = app.openapi()
    paths = set(spec["paths"])
    for p in [
        "/api/v1/experiments",
        "/api/v1/experiments/{experiment_id}",
        "/api/v1/runs",
        "/api/v1/runs/search",
        "/api/v1/runs/compare",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/batch",
        "/api/v1/runs/{run_id}/metric-history",
        "/api/v1/runs/{run_id}/artifacts",
        "/api/v1/health",
    ]:
        assert p in paths, p
    assert spec["info"]["title"] == "opsloop"


# ------------------------------------------------------------------ the error registry


def _import_whole_package() -> list[str]:
    """Import every module of opsloop; return those skipped for a missing optional extra."""
    skipped = []
    for mod in pkgutil.walk_packages(opsloop.__path__, "opsloop."):
        if mod.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs the CLI on import
        try:
            importlib.import_module(mod.name)
        except ImportError as exc:
            if (exc.name or "opsloop").split(".")[0] == "opsloop":
                raise  # a broken import of our own, not a missing extra
            skipped.append(f"{mod.name} (needs {exc.name})")
    return skipped


def _error_classes() -> list[type]:
    from opsloop.errors import OpsloopError

    gc.collect()  # drop classes a failed definition (see the refusal test) left behind
    seen: list[type] = [OpsloopError]
    for cls in seen:
        seen.extend(c for c in cls.__subclasses__() if c not in seen)
    # Test modules may subclass too; the contract is about the package's own classes.
    return [c for c in seen if c.__module__.split(".")[0] == "opsloop"]


def test_every_error_class_is_registered_by_its_code() -> None:
    from opsloop import errors

    skipped = _import_whole_package()
    classes = _error_classes()
    problems = []
    for cls in classes:
        name = f"{cls.__module__}.{cls.__qualname__}"
        code = cls.__dict__.get("code")
        if not isinstance(code, str) or not code:
            problems.append(f"{name} declares no code of its own")
            continue
        status = getattr(cls, "http_status", None)
        if not isinstance(status, int) or not 400 <= status <= 599:
            problems.append(f"{name} has no HTTP error status ({status!r})")
        if errors._BY_CODE.get(code) is not cls:
            problems.append(f"{name}: {code} maps to {errors._BY_CODE.get(code)!r}")
        if cls.__module__ != "opsloop.errors" and errors._DEFINED_ELSEWHERE.get(code) != (
            cls.__module__
        ):
            problems.append(
                f"{name}: add {code!r}: {cls.__module__!r} to errors._DEFINED_ELSEWHERE"
            )
    # ... and the map holds nothing else (no stale entry, nothing from outside the package).
    assert sorted(errors._BY_CODE.values(), key=str) == sorted(classes, key=str), skipped
    for code, module in errors._DEFINED_ELSEWHERE.items():
        cls = errors._BY_CODE.get(code)
        if cls is None or cls.__module__ != module:
            problems.append(f"errors._DEFINED_ELSEWHERE[{code!r}] names no class of {module}")
    assert not problems, "\n".join(problems)


def test_every_registered_error_round_trips_through_a_payload() -> None:
    from opsloop import errors

    _import_whole_package()
    for code, cls in errors._BY_CODE.items():
        payload = {"error": {"code": code, "message": "boom", "details": {"k": 1}}}
        rebuilt = errors.error_from_payload(payload, cls.http_status)
        assert type(rebuilt) is cls, code
        assert (rebuilt.code, rebuilt.http_status, rebuilt.message) == (
            code,
            cls.http_status,
            "boom",
        )
        again = errors.error_from_payload(rebuilt.to_payload(), cls.http_status)
        assert type(again) is cls and again.to_payload() == rebuilt.to_payload(), code


def test_a_remote_client_rebuilds_classes_defined_outside_errors() -> None:
    # A fresh interpreter that imported only opsloop.errors, as a remote client may have.
    from opsloop import errors

    probe = (
        "import json, sys\n"
        "from opsloop.errors import error_from_payload\n"
        f"codes = {sorted(errors._DEFINED_ELSEWHERE)!r}\n"
        "out = {}\n"
        "for c in codes:\n"
        "    e = error_from_payload({'error': {'code': c, 'message': 'm'}}, 400)\n"
        "    out[c] = [type(e).__module__, type(e).__qualname__, e.code]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    _import_whole_package()
    assert got == {
        code: [errors._BY_CODE[code].__module__, errors._BY_CODE[code].__qualname__, code]
        for code in errors._DEFINED_ELSEWHERE
    }


def test_a_taken_or_missing_code_is_refused_when_the_class_is_defined() -> None:
    from opsloop.errors import _BY_CODE, InvalidArgument, NotFound

    before = dict(_BY_CODE)
    with pytest.raises(TypeError, match=r"'NOT_FOUND'.*already taken by opsloop\.errors\.NotFound"):

        class Clash(InvalidArgument):
            code = "NOT_FOUND"

    with pytest.raises(TypeError, match="must declare its own error code"):

        class Inherits(NotFound):
            pass

    assert before == _BY_CODE


def test_the_errors_docstring_draws_every_class() -> None:
    from opsloop import errors

    _import_whole_package()
    drawn: dict[str, tuple[str, int, str | None]] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^ {4}((?:[│ ] {3}|[├└]── )*)(\w+)\s+([A-Z_]+)\s+(\d{3})\b", line)
        if not m:
            continue
        depth = len(m.group(1)) // 4
        parents[depth:] = [m.group(2)]
        drawn[m.group(2)] = (m.group(3), int(m.group(4)), parents[depth - 1] if depth else None)
    assert drawn == {
        cls.__name__: (
            cls.code,
            cls.http_status,
            cls.__base__.__name__ if cls is not errors.OpsloopError else None,
        )
        for cls in errors._BY_CODE.values()
    }
