"""The registered form of an OpenAI-compatible endpoint: a pyfunc model that forwards to it.

The version holds no weights and no key: only ``base_url``, ``model``, the
*name* of the stored secret that holds the API key (``api_key_secret``; see
``opsloop secrets``; without one the key comes from ``OPSLOOP_LLM_API_KEY`` or
the ``llm_api_key`` secret of the loading machine) and generation defaults. Loading it
(``load_model("models:/NAME@ALIAS")``) gives a model whose
``predict([{"prompt": ...}])`` sends each prompt as one user turn.
"""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry import PyfuncContext, PythonModel
from opsloop.selection._candidates import ProviderCandidate

ENDPOINT_SIGNATURE = {
    "inputs": [{"name": "prompt", "type": "string"}],
    "outputs": [{"name": "text", "type": "string"}],
}


class EndpointModel(PythonModel):
    """Chat completions from the endpoint named in the version's config."""

    def load_context(self, context: PyfuncContext) -> None:
        cfg = context.config
        base_url, model = cfg.get("base_url"), cfg.get("model")
        if not isinstance(base_url, str) or not isinstance(model, str) or not base_url or not model:
            raise InvalidArgument("an endpoint model's config needs 'base_url' and 'model'")
        self.base_url, self.model = base_url, model
        secret = cfg.get("api_key_secret")
        self.secret = str(secret) if secret else None
        self.max_tokens = int(cfg.get("max_tokens") or 256)
        self.timeout_s = float(cfg.get("timeout_s") or 120.0)
        self._chat: Any = None

    def _opened(self) -> Any:
        if self._chat is None:
            from opsloop.llm import get_provider  # lazy: loads sqlalchemy and httpx

            kw: dict[str, Any] = {"base_url": self.base_url, "timeout_s": self.timeout_s}
            if self.secret:
                kw["api_key_secret"] = self.secret
            self._chat = ProviderCandidate(get_provider(f"openai:{self.model}", **kw))
        return self._chat

    def predict(self, data: Any) -> list[Any]:
        chat = self._opened()
        return [
            chat.reply([{"role": "user", "content": str(row["prompt"])}], self.max_tokens).text
            for row in data
        ]
