"""The public surface is exactly what we mean it to be (changing it is a deliberate act)."""

from __future__ import annotations

import importlib
import inspect

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
        "tracking_service",
    ],
    "opsloop.store": [
        "SCHEMA_HEAD",
        "ArtifactStore",
        "BlobInfo",
        "Database",
        "LocalArtifactStore",
        "check_digest",
        "metadata",
        "open_artifact_store",
    ],
    "opsloop.core": [
        "ACTOR_HEADER",
        "BackgroundFlusher",
        "ClientProperty",
        "Context",
        "HasContext",
        "Nav",
        "Room",
        "Transport",
        "UiRoute",
        "active_run_id",
        "actor_from_header",
        "context_of",
        "default_context",
        "load_ref",
        "os_user",
        "pop_active_run",
        "push_active_run",
        "quote_segment",
        "resolve_user",
        "set_default_context",
    ],
    "opsloop.rooms": ["ROOMS", "client_properties", "declarations", "load_all_tables"],
    "opsloop.llm": [
        "BundledModel",
        "ChatResponse",
        "EmbeddingResponse",
        "LocalProvider",
        "OpenAIProvider",
        "Provider",
        "RetryPolicy",
        "SecretStore",
        "StreamChunk",
        "Usage",
        "bundled_models",
        "clear_model_cache",
        "get_provider",
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
        "Embedder",
        "Retriever",
        "SearchHit",
        "VectorIndex",
        "index_chunks",
        "index_collection",
    ],
    "opsloop.server": ["API_PREFIX", "create_app"],
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
    "opsloop.settings": ["Settings"],
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


def test_client_surface() -> None:
    public = sorted(n for n in dir(opsloop.Client) if not n.startswith("_"))
    assert public == sorted(
        [
            "backend",
            "close",
            "context",
            "datasets",
            "deployments",
            "evaluation",
            "prompts",
            "registry",
            "tracing",
            "tuning",
            "compare_runs",
            "create_experiment",
            "create_run",
            "delete_experiment",
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
            "pending_points",
            "read_artifact",
            "restore_experiment",
            "restore_run",
            "search_runs",
            "set_experiment_tag",
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
