#!/usr/bin/env python3
"""Generate the Hugging Face BLT fixture for the last position under entropy patching.

The checkpoint holds its patcher (``patch_in_forward: true``), sets ``max_patch_length``, is
stored in bfloat16 and split into shards: the kind of checkpoint that showed transformers and
Meta's code disagreeing about the last position (docs/hf-blt-semantics.md, "The last
position"). It reuses the tiny config and the wide weights of ``make_hf_fixture.py``.

What it writes (into crates/blt-model/tests/fixtures/hf-patcher/ by default):

* ``config.json``, ``model-0000N-of-0000M.safetensors`` and ``model.safetensors.index.json``
  (``save_pretrained`` in bfloat16 with a small ``max_shard_size``);
* ``expected.json``: one row whose last entropy is above the threshold, so that position T
  opens a patch, with
  - ``meta``: patch lengths by Meta's rule (positions 0 and 1 start, t starts when
    H(t-1) > threshold, lengths over T + 1 with the slot after the row counted, split at
    ``max_patch_length`` with that slot counted) and transformers' logits for them;
  - ``transformers``: the lengths transformers' own patcher gives (its ``process_patch_lengths``
    keeps positive lengths only, which drops the start at T) and its logits for them.
  Logits are computed in float32 by the reloaded checkpoint (weights rounded to bfloat16).

Provenance: transformers 5.25.0, torch 2.15.0 (CPU), Python 3.11; from the repository root:
    ~/peer-venv/bin/python scripts/make_hf_patcher_fixture.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from transformers import BltForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hf_fixture import (  # noqa: E402
    CONSTRUCT_SEED,
    REPO_ROOT,
    build_config,
    make_input_ids,
    pick_threshold,
    rounded,
    widen_weights,
)

DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "blt-model", "tests", "fixtures", "hf-patcher")
MAX_PATCH_LENGTH = 6


def meta_lengths(ent, threshold, max_len):
    """Patch lengths over T + 1 by Meta's rule (see the module docs)."""
    n = len(ent)
    starts = [0, 1] + [t for t in range(2, n + 1) if ent[t - 1] > threshold]
    bounds = starts + [n + 1]
    lengths = []
    for s, e in zip(bounds, bounds[1:]):
        length = e - s
        while length > max_len:
            lengths.append(max_len)
            length -= max_len
        lengths.append(length)
    assert sum(lengths) == n + 1, lengths
    return lengths


def logits_for(model, ids, lengths):
    kwargs = dict(input_ids=torch.tensor([ids]), use_cache=False)
    if lengths is not None:
        kwargs["patch_lengths"] = torch.tensor([lengths])
    with torch.no_grad():
        return model(**kwargs).logits[0].float()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--digits", type=int, default=5)
    args = ap.parse_args()

    torch.manual_seed(CONSTRUCT_SEED)
    config = build_config(patching_threshold=1.0)
    config.max_patch_length = MAX_PATCH_LENGTH
    model = BltForCausalLM(config).eval()
    widen_weights(model)
    os.makedirs(args.out, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(args.out, safe_serialization=True, max_shard_size="120KB")
    model = BltForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    shards = [f for f in os.listdir(args.out) if f.endswith(".safetensors")]
    assert len(shards) >= 2, shards

    ids = make_input_ids()
    with torch.no_grad():
        ent, _, _ = model.model.patcher(torch.tensor([ids]), patch_size=config.patch_size, threshold=1.0)
    ent = ent[0].tolist()
    threshold, gap = pick_threshold(ent)
    # End the row after a position whose entropy clears the threshold by a margin: there the
    # start at T is what the two conventions disagree on.
    last = max(t for t in range(8, len(ids)) if ent[t] > threshold + gap / 4)
    ids, ent = ids[: last + 1], ent[: last + 1]
    model.config.patching_threshold = threshold
    # Saved again so that config.json carries the threshold.
    model.config.save_pretrained(args.out)

    with torch.no_grad():
        _, hf_lengths, _ = model.model.patcher(
            torch.tensor([ids]),
            patch_size=config.patch_size,
            threshold=threshold,
            max_patch_length=MAX_PATCH_LENGTH,
        )
    hf_lengths = [int(x) for x in hf_lengths[0].tolist()]
    meta = meta_lengths(ent, threshold, MAX_PATCH_LENGTH)
    own = logits_for(model, ids, None)
    hf_given = logits_for(model, ids, hf_lengths)
    assert float((own - hf_given).abs().max()) == 0.0, "the patcher's lengths are what forward uses"
    meta_logits = logits_for(model, ids, meta)
    last_diff = float((meta_logits[-1] - own[-1]).abs().max())
    rest_diff = float((meta_logits[:-1] - own[:-1]).abs().max())
    assert rest_diff < 1e-5 and last_diff > 1e-2, (rest_diff, last_diff, meta, hf_lengths)

    expected = {
        "generator": "scripts/make_hf_patcher_fixture.py",
        "patching_threshold": threshold,
        "max_patch_length": MAX_PATCH_LENGTH,
        "shards": sorted(shards),
        "patcher_entropies": [round(x, 6) for x in ent],
        "last_position_logit_diff": last_diff,
        "input_ids": ids,
        "meta": {"patch_lengths": meta, "logits": rounded(meta_logits, args.digits)},
        "transformers": {"patch_lengths": hf_lengths, "logits": rounded(own, args.digits)},
    }
    with open(os.path.join(args.out, "expected.json"), "w") as fh:
        json.dump(expected, fh, separators=(",", ":"))
        fh.write("\n")
    for fname in sorted(os.listdir(args.out)):
        print(f"{fname}: {os.path.getsize(os.path.join(args.out, fname))} bytes")
    print("threshold", threshold, "T", len(ids), "meta", meta, "transformers", hf_lengths)
    print("last position differs by", last_diff, "the rest by", rest_diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
