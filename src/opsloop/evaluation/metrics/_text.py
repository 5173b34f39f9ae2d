"""Text generation metrics: BLEU and chrF (sacrebleu), ROUGE (rouge-score), SQuAD EM and F1.

sacrebleu and rouge-score come with the ``eval`` extra and are imported on
first use. ``references`` always hold, per prediction, one reference string
or a list of reference strings (any number per prediction).
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import string
from collections import Counter
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import reference_lists, same_length, texts

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _needs(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InvalidArgument(f"this metric needs {package}: pip install 'opsloop[eval]'") from None


def _pairs(predictions: Any, references: Any) -> tuple[list[str], list[list[str]]]:
    preds = texts(predictions, "predictions")
    refs = reference_lists(references, "references")
    same_length(("predictions", preds), ("references", refs))
    return preds, refs


def _streams(refs: list[list[str]]) -> list[list[str | None]]:
    # sacrebleu wants one stream per reference slot; None pads the shorter lists
    width = max(len(r) for r in refs)
    return [[r[i] if i < len(r) else None for r in refs] for i in range(width)]


def bleu(
    predictions: Any,
    references: Any,
    *,
    tokenize: str = "13a",
    lowercase: bool = False,
    smooth_method: str = "exp",
) -> float:
    """Corpus BLEU on sacrebleu's 0-100 scale (``sacrebleu.corpus_bleu``)."""
    preds, refs = _pairs(predictions, references)
    sacrebleu = _needs("sacrebleu", "sacrebleu")
    try:
        score = sacrebleu.corpus_bleu(
            preds,
            _streams(refs),
            tokenize=tokenize,
            lowercase=lowercase,
            smooth_method=smooth_method,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"sacrebleu rejected the input: {exc}") from None
    return float(score.score)


def sentence_bleu(
    prediction: str, references: str | list[str], *, tokenize: str = "13a", lowercase: bool = False
) -> float:
    """BLEU of one sentence (0-100), with sacrebleu's sentence smoothing and effective order."""
    preds, refs = _pairs([prediction], [references])
    sacrebleu = _needs("sacrebleu", "sacrebleu")
    try:
        return float(
            sacrebleu.sentence_bleu(preds[0], refs[0], tokenize=tokenize, lowercase=lowercase).score
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"sacrebleu rejected the input: {exc}") from None


def chrf(
    predictions: Any,
    references: Any,
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
) -> float:
    """Corpus chrF (0-100, ``sacrebleu.corpus_chrf``); ``word_order=2`` gives chrF++."""
    preds, refs = _pairs(predictions, references)
    sacrebleu = _needs("sacrebleu", "sacrebleu")
    try:
        score = sacrebleu.corpus_chrf(
            preds, _streams(refs), char_order=char_order, word_order=word_order, beta=beta
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"sacrebleu rejected the input: {exc}") from None
    return float(score.score)


def sentence_chrf(
    prediction: str,
    references: str | list[str],
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
) -> float:
    """chrF of one sentence (0-100)."""
    preds, refs = _pairs([prediction], [references])
    sacrebleu = _needs("sacrebleu", "sacrebleu")
    try:
        return float(
            sacrebleu.sentence_chrf(
                preds[0], refs[0], char_order=char_order, word_order=word_order, beta=beta
            ).score
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"sacrebleu rejected the input: {exc}") from None


@functools.lru_cache(maxsize=8)
def _scorer(types: tuple[str, ...], use_stemmer: bool) -> Any:
    rouge_scorer = _needs("rouge_score.rouge_scorer", "rouge-score")
    return rouge_scorer.RougeScorer(list(types), use_stemmer=use_stemmer)


def rouge_per_example(
    predictions: Any,
    references: Any,
    *,
    types: tuple[str, ...] | list[str] = ("rouge1", "rouge2", "rougeL"),
    use_stemmer: bool = False,
) -> list[dict[str, dict[str, float]]]:
    """ROUGE per example: ``[{type: {"precision", "recall", "fmeasure"}}]``.

    With several references the best one by F-measure counts
    (``RougeScorer.score_multi``). Note rouge-score's tokenizer keeps only
    ASCII letters and digits.
    """
    preds, refs = _pairs(predictions, references)
    kinds = tuple(types)
    if not kinds:
        raise InvalidArgument("types is empty")
    for k in kinds:
        if k not in ROUGE_TYPES and not re.fullmatch(r"rouge[1-9]", k):
            raise InvalidArgument(
                f"unknown ROUGE type {k!r}; use rouge1..rouge9, rougeL or rougeLsum"
            )
    scorer = _scorer(kinds, bool(use_stemmer))
    out = []
    for pred, ref in zip(preds, refs, strict=True):
        scores = scorer.score(ref[0], pred) if len(ref) == 1 else scorer.score_multi(ref, pred)
        out.append(
            {
                k: {"precision": s.precision, "recall": s.recall, "fmeasure": s.fmeasure}
                for k, s in scores.items()
            }
        )
    return out


def rouge(
    predictions: Any,
    references: Any,
    *,
    types: tuple[str, ...] | list[str] = ("rouge1", "rouge2", "rougeL"),
    use_stemmer: bool = False,
) -> dict[str, dict[str, float]]:
    """ROUGE averaged over examples: ``{type: {"precision", "recall", "fmeasure"}}`` in [0, 1]."""
    rows = rouge_per_example(predictions, references, types=types, use_stemmer=use_stemmer)
    return {
        k: {m: sum(r[k][m] for r in rows) / len(rows) for m in ("precision", "recall", "fmeasure")}
        for k in rows[0]
    }


# SQuAD's official evaluation script (v1.1 normalisation, v2.0 empty-answer rule).
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _squad_f1(pred: str, ref: str) -> float:
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return float(p == r)
    same = sum((Counter(p) & Counter(r)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


def exact_match_per_example(predictions: Any, references: Any) -> list[float]:
    """1.0 where the normalised prediction equals any normalised reference, else 0.0."""
    preds, refs = _pairs(predictions, references)
    return [
        float(any(normalize_answer(p) == normalize_answer(r) for r in rs))
        for p, rs in zip(preds, refs, strict=True)
    ]


def exact_match(predictions: Any, references: Any) -> float:
    """Share of predictions matching a reference after SQuAD normalisation (0-1)."""
    rows = exact_match_per_example(predictions, references)
    return sum(rows) / len(rows)


def _as_json(value: Any) -> tuple[bool, Any]:
    if isinstance(value, dict | list):
        return True, value
    try:
        return True, json.loads(str(value))
    except (TypeError, ValueError):
        return False, None


def json_valid(prediction: Any) -> float:
    """1.0 when the prediction is JSON (a JSON text, or an already parsed object or list)."""
    return float(_as_json(prediction)[0])


def schema_valid(prediction: Any, schema: Any) -> float:
    """1.0 when the prediction is JSON that validates against ``schema`` (a JSON schema object
    or its JSON text; checked with ``jsonschema``'s validator for the schema's draft)."""
    import jsonschema  # lazy: optional extra

    ok, value = _as_json(prediction)
    parsed, sch = _as_json(schema)
    if not parsed or not isinstance(sch, dict):
        raise InvalidArgument(
            "schema_valid takes each row's JSON schema as its input 'schema' (an object or its "
            "JSON text)",
            details={"reference": str(schema)[:200]},
        )
    if not ok:
        return 0.0
    cls = jsonschema.validators.validator_for(sch)
    return float(cls(sch).is_valid(value))


def contains_per_example(predictions: Any, references: Any) -> list[float]:
    """1.0 where a normalised reference occurs in the normalised prediction as whole words."""
    preds, refs = _pairs(predictions, references)
    out = []
    for p, rs in zip(preds, refs, strict=True):
        padded = f" {normalize_answer(p)} "
        out.append(float(any((n := normalize_answer(r)) and f" {n} " in padded for r in rs)))
    return out


def contains(predictions: Any, references: Any) -> float:
    """Share of predictions containing a reference answer (SQuAD-normalised, whole words; 0-1).

    For chatty models that answer in a sentence ("The capital is Paris."),
    where exact match would score 0.
    """
    rows = contains_per_example(predictions, references)
    return sum(rows) / len(rows)


def token_f1_per_example(predictions: Any, references: Any) -> list[float]:
    """SQuAD token-overlap F1 per example, best over the references."""
    preds, refs = _pairs(predictions, references)
    return [max(_squad_f1(p, r) for r in rs) for p, rs in zip(preds, refs, strict=True)]


def token_f1(predictions: Any, references: Any) -> float:
    """Mean SQuAD token F1 (0-1)."""
    rows = token_f1_per_example(predictions, references)
    return sum(rows) / len(rows)
