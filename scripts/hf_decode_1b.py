#!/usr/bin/env python3
"""Decode speed of transformers' BLT at BLT-1B's shapes, random weights: the peer of
`cargo xtask bench --shapes blt-1b --ngram-rows ROWS` (which runs it with `--peer PYTHON`).

    ~/peer-venv/bin/python scripts/hf_decode_1b.py [--ngram-rows 50000] [--new 32] [--threads 2]

transformers' default `BltConfig` has BLT-1B's shapes. With `--ngram-rows` the six hash
n-gram tables get that many rows instead of 500,002 (decode reads one row of each per byte
either way; memory is what changes). The model generates greedily after the same 64-byte
prompt as the example, through `generate` with an explicit encoder-decoder cache (the call
that works in transformers 5.24). Decode time is the time of generating NEW bytes minus the
time of generating one (which is the prefill), so that the prompt is excluded as on our side.
Prints one JSON line.
"""

import argparse
import json
import resource
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngram-rows", type=int, default=None)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import BltConfig, BltForCausalLM, DynamicCache, EncoderDecoderCache

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = {}
    if args.ngram_rows:
        overrides["encoder_hash_byte_group_vocab"] = args.ngram_rows
    config = BltConfig(**overrides)
    started = time.perf_counter()
    model = BltForCausalLM(config).eval()
    init_seconds = time.perf_counter() - started

    text = b"In the beginning God created the heaven and the earth. And the ea"[:64]
    prompt = torch.tensor([[1] + [b + 4 for b in text]])

    def generate(n):
        with torch.no_grad():
            return model.generate(
                prompt,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                cache=EncoderDecoderCache(DynamicCache(), DynamicCache()),
            )

    generate(2)  # warm-up
    t = time.perf_counter()
    generate(1)
    prefill = time.perf_counter() - t
    t = time.perf_counter()
    out = generate(args.new)
    total = time.perf_counter() - t
    new = int(out.shape[1] - prompt.shape[1])
    print(json.dumps({
        "peer": "transformers BltForCausalLM.generate (cached)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "ngram_rows": config.encoder_hash_byte_group_vocab,
        "patch_in_forward": config.patch_in_forward,
        "prompt_bytes": len(text),
        "new_bytes": new,
        "decode_bytes_per_s": (new - 1) / max(total - prefill, 1e-9),
        "prefill_seconds": prefill,
        "init_seconds": init_seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
