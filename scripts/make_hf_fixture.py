#!/usr/bin/env python3
"""Generate the tiny Hugging Face BLT parity fixture used by the blt-model tests.

What it writes (into crates/blt-model/tests/fixtures/hf-tiny/ by default):

* ``config.json`` + ``model.safetensors`` -- a tiny ``BltForCausalLM`` saved with
  ``save_pretrained(dir, safe_serialization=True)`` in float32.  The weights are
  re-drawn after construction with a *wide* distribution (matrices N(0, 0.2^2),
  RMSNorm gains 1 + 0.1 * N(0, 1)) so that the logits spread over several units;
  the default 0.02-style init gives near-uniform logits and a weak parity test.
* ``expected.json`` -- input ids, the patch lengths of each case, and the logits
  (rounded to 5 decimals) that transformers produces for every position, plus a
  few intermediate values (hash ids, patch ids, patcher entropies) that help when
  a Rust port disagrees.

Cases in expected.json:

* ``irregular``: explicit patch lengths [1, 3, 5, 2, 4, 1, 6, 2, 3, 5, 4, 4]
  (first patch = the BOS byte alone, as the entropy patcher always produces).
* ``stride4``: explicit patch lengths [4] * 10 (no BOS-only first patch; note
  that HF then lets a byte see the global state of its own patch, i.e. the
  decoder is not causal w.r.t. bytes inside a patch -- parity only).
* ``patcher``: ``patch_lengths`` omitted, so the model runs its own entropy
  patcher.  ``patching_threshold`` in config.json is chosen by this script
  (midway between two entropies in the widest gap near the median) so the
  patcher produces irregular patches and is robust to float noise.

Before writing, the script checks that
  1. a ``from_pretrained`` reload of the saved directory reproduces the logits,
  2. the eager and SDPA attention back ends agree,
  3. an independent float64 re-implementation written from the semantics notes
     (docs/hf-blt-semantics.md) reproduces every case.  This reference is our
     own code (it only reads the state dict) and doubles as executable
     documentation of the forward pass a port must match.

Provenance (the fixture was generated with exactly this):
    transformers 5.24.0, torch 2.9.0+cu128 (CPU), Python 3.11
    command, from the repository root:
        ~/peer-venv/bin/python scripts/make_hf_fixture.py
    (optional: --out DIR to write elsewhere)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

import transformers
from transformers import BltConfig, BltForCausalLM

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "blt-model", "tests", "fixtures", "hf-tiny")

# Token layout of the BLT byte tokenizer (bytelatent's BltTokenizer and the
# Hugging Face port agree): 0 = BOE, 1 = BOS, 2 = EOS, 3 = PAD (HF) / BPE
# (bytelatent), byte b -> b + 4.  vocab = 256 + 4 = 260.
BOS_ID = 1
EOS_ID = 2
BYTE_OFFSET = 4

TEXT = "Zoë bought café lattes at 9:45 today."  # 39 UTF-8 bytes (two 2-byte chars)
IRREGULAR = [1, 3, 5, 2, 4, 1, 6, 2, 3, 5, 4, 4]
STRIDE = 4

CONSTRUCT_SEED = 0
REINIT_SEED = 20240611
MATRIX_STD = 0.2
NORM_STD = 0.1
PATCHER_SLIDING_WINDOW = 24  # differs from the local window (16) on purpose


def build_config(patching_threshold: float) -> BltConfig:
    return BltConfig(
        vocab_size=260,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        patch_in_forward=True,
        patching_mode="entropy",
        patch_size=4,
        patching_threshold=patching_threshold,
        max_patch_length=None,
        # BltConfig copies this into encoder_config.sliding_window; the decoder
        # reuses the encoder's mask, so this is the window of both local models.
        local_attention_window_len=16,
        cross_attn_k=2,
        encoder_hash_byte_group_size=[3, 4, 5, 6, 7, 8],
        encoder_hash_byte_group_vocab=50,
        encoder_hash_byte_group_nb_functions=1,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        encoder_config=dict(
            hidden_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            intermediate_size=64,
            sliding_window=16,
            cross_attn_k=2,
            hidden_size_global=48,
            max_position_embeddings=128,
        ),
        decoder_config=dict(
            hidden_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            intermediate_size=64,
            cross_attn_k=2,
            hidden_size_global=48,
            max_position_embeddings=128,
        ),
        global_config=dict(
            hidden_size=48,
            num_attention_heads=2,
            num_hidden_layers=2,
            intermediate_size=96,
            max_position_embeddings=64,
        ),
        patcher_config=dict(
            hidden_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            intermediate_size=64,
            max_position_embeddings=128,
            sliding_window=PATCHER_SLIDING_WINDOW,
        ),
    )


def widen_weights(model: torch.nn.Module) -> None:
    """Redraw every parameter from a wide distribution (deterministic order)."""
    gen = torch.Generator().manual_seed(REINIT_SEED)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if param.dim() == 1:  # all 1-D parameters are RMSNorm gains
                param.copy_(1.0 + NORM_STD * noise)
            else:
                param.copy_(MATRIX_STD * noise)


def make_input_ids() -> list[int]:
    return [BOS_ID] + [b + BYTE_OFFSET for b in TEXT.encode("utf-8")]


def run_logits(model, ids, patch_lengths):
    kwargs = dict(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    if patch_lengths is not None:
        kwargs["patch_lengths"] = torch.tensor([patch_lengths], dtype=torch.long)
    with torch.no_grad():
        return model(**kwargs).logits[0].float()


# --------------------------------------------------------------------------
# Independent float64 reference (our own code, written from the notes).
# --------------------------------------------------------------------------

_U64 = (1 << 64) - 1


def _wrap_i64(x: int) -> int:
    x &= _U64
    return x - (1 << 64) if x >= (1 << 63) else x


def ref_hash_ids(ids, group, prime, vocab):
    """Rolling polynomial hash of the `group` ids ending at each position.

    Positions before the start are treated as id 0; the oldest id gets prime^0.
    Arithmetic wraps like int64, and the final modulo is floor-mod (>= 0).
    """
    out = []
    for t in range(len(ids)):
        window = [ids[t - group + 1 + i] if t - group + 1 + i >= 0 else 0 for i in range(group)]
        acc = 0
        power = 1
        for tok in window:
            acc = _wrap_i64(acc + _wrap_i64(tok * power))
            power = _wrap_i64(power * prime)
        out.append(acc % vocab)
    return out


def ref_patch_ids(lengths, seq_len):
    starts = [0]
    for length in lengths[:-1]:
        starts.append(starts[-1] + length)
    return [sum(1 for s in starts if s <= t) - 1 for t in range(seq_len)]


class Ref:
    def __init__(self, state, cfg):
        self.w = {k: v.detach().to(torch.float64) for k, v in state.items()}
        self.cfg = cfg

    def rms(self, x, key, eps):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * self.w[key]

    def lin(self, x, key):
        return x @ self.w[key].T

    @staticmethod
    def rope(x, theta):  # x: (T, heads, d); positions 0..T-1; interleaved pairs
        t, _, d = x.shape
        inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = odd * cos + even * sin
        return out

    @staticmethod
    def attend(q, k, v, allowed):  # q (Tq,H,d) k,v (Tk,H,d), allowed (Tq,Tk) bool
        d = q.shape[-1]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(d)
        # HF adds finfo(f32).min (not -inf) to masked scores.  For a row with no
        # allowed key (the query slots of an empty patch) every score collapses
        # to the same huge negative number, i.e. a *uniform* average of all V.
        empty = ~allowed.any(dim=-1)
        scores = scores.masked_fill(empty[None, :, None], 0.0)
        allowed = allowed | empty[:, None]
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        return torch.einsum("hqk,khd->qhd", probs, v).reshape(q.shape[0], -1)

    def layer(self, h, pre, heads, eps, theta, allowed):
        t, dim = h.shape
        x = self.rms(h, pre + "input_layernorm.weight", eps)
        q = self.lin(x, pre + "self_attn.q_proj.weight").view(t, heads, dim // heads)
        k = self.lin(x, pre + "self_attn.k_proj.weight").view(t, heads, dim // heads)
        v = self.lin(x, pre + "self_attn.v_proj.weight").view(t, heads, dim // heads)
        q, k = self.rope(q, theta), self.rope(k, theta)
        h = h + self.lin(self.attend(q, k, v, allowed), pre + "self_attn.o_proj.weight")
        x = self.rms(h, pre + "post_attention_layernorm.weight", eps)
        gate = self.lin(x, pre + "mlp.gate_proj.weight")
        up = self.lin(x, pre + "mlp.up_proj.weight")
        return h + self.lin(torch.nn.functional.silu(gate) * up, pre + "mlp.down_proj.weight")

    def cross(self, x, kv, pre, heads, eps, allowed):
        """Returns x + o_proj(attn(q_norm(x) -> k_norm(kv))) (the module's own residual)."""
        tq, dim = x.shape
        q = self.lin(self.rms(x, pre + "q_norm.weight", eps), pre + "q_proj.weight")
        kvn = self.rms(kv, pre + "k_norm.weight", eps)
        k = self.lin(kvn, pre + "k_proj.weight")
        v = self.lin(kvn, pre + "v_proj.weight")
        d = dim // heads
        out = self.attend(q.view(tq, heads, d), k.view(-1, heads, d), v.view(-1, heads, d), allowed)
        return x + self.lin(out, pre + "o_proj.weight")

    @staticmethod
    def causal(n, window=None):
        q = torch.arange(n)[:, None]
        k = torch.arange(n)[None, :]
        allowed = k <= q
        if window is not None:
            allowed &= (q - k) < window
        return allowed

    def patcher_entropies(self, ids):
        c = self.cfg.patcher_config
        h = self.w["model.patcher.embed_tokens.weight"][torch.tensor(ids)]
        allowed = self.causal(len(ids), c.sliding_window)
        theta = c.rope_parameters["rope_theta"]
        for i in range(c.num_hidden_layers):
            h = self.layer(h, f"model.patcher.layers.{i}.", c.num_attention_heads, c.rms_norm_eps, theta, allowed)
        logits = self.lin(self.rms(h, "model.patcher.norm.weight", c.rms_norm_eps), "model.patcher.lm_head.weight")
        logp = torch.log_softmax(logits, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def forward(self, ids, lengths):
        cfg = self.cfg
        enc, glo, dec = cfg.encoder_config, cfg.global_config, cfg.decoder_config
        kx = cfg.cross_attn_k
        n, p = len(ids), len(lengths)
        vocab = cfg.encoder_hash_byte_group_vocab
        # (b) byte embedding + hash n-gram embeddings, all summed
        h = self.w["model.local_encoder.embed_tokens.weight"][torch.tensor(ids)].clone()
        table = self.w["model.encoder_hash_tok_embedding.weight"]
        primes = [1000000007, 5915587277, 1500450271, 3267000013, 5754853343, 4093082899,
                  9576890767, 3628273133, 2860486313, 5463458053, 3367900313]
        slot = 0
        for f in range(cfg.encoder_hash_byte_group_nb_functions):
            for g in cfg.encoder_hash_byte_group_size:
                hid = ref_hash_ids(ids, g, primes[f % len(primes)], vocab)
                h = h + table[torch.tensor(hid) + slot * vocab]
                slot += 1
        # (c) patch ids
        pid = torch.tensor(ref_patch_ids(lengths, n))
        dpid = torch.tensor(ref_patch_ids(lengths[1:], n))
        # local encoder
        local_allowed = self.causal(n, cfg.local_attention_window_len)
        theta_e = enc.rope_parameters["rope_theta"]
        for i in range(enc.num_hidden_layers):
            h = self.layer(h, f"model.local_encoder.layers.{i}.", enc.num_attention_heads,
                           enc.rms_norm_eps, theta_e, local_allowed)
            if i == enc.num_hidden_layers - 1 or enc.cross_attn_all_layers:
                pooled = torch.zeros(p, h.shape[1], dtype=h.dtype)
                for j in range(p):
                    members = h[pid == j]
                    if len(members):
                        pooled[j] = members.max(dim=0).values
                pe = self.lin(pooled, "model.local_encoder.patch_embedding_projection.weight")
                pe = pe.reshape(p * kx, enc.hidden_size)  # slot r belongs to patch r // k
                allowed = (torch.arange(p * kx)[:, None] // kx) == pid[None, :]
                ci = i if enc.cross_attn_all_layers else 0
                pe = pe + self.cross(pe, h, f"model.local_encoder.cross_attn_layers.{ci}.",
                                     enc.num_attention_heads, enc.rms_norm_eps, allowed)
        # global transformer over patches (input = k slots concatenated)
        g = pe.reshape(p, kx * enc.hidden_size)
        if "model.global_transformer.token_embedding_projection.weight" in self.w:
            g = self.lin(g, "model.global_transformer.token_embedding_projection.weight")
        theta_g = glo.rope_parameters["rope_theta"]
        for i in range(glo.num_hidden_layers):
            g = self.layer(g, f"model.global_transformer.layers.{i}.", glo.num_attention_heads,
                           glo.rms_norm_eps, theta_g, self.causal(p))
        # local decoder
        pd = self.lin(g, "model.local_decoder.patch_embedding_projection.weight").reshape(p * kx, dec.hidden_size)
        allowed = dpid[:, None] == (torch.arange(p * kx)[None, :] // kx)
        theta_d = dec.rope_parameters["rope_theta"]
        for i in range(dec.num_hidden_layers):
            if i == 0 or dec.cross_attn_all_layers:
                h = h + self.cross(h, pd, f"model.local_decoder.cross_attn_layers.{i}.",
                                   dec.num_attention_heads, dec.rms_norm_eps, allowed)
            h = self.layer(h, f"model.local_decoder.layers.{i}.", dec.num_attention_heads,
                           dec.rms_norm_eps, theta_d, local_allowed)
        h = self.rms(h, "model.local_decoder.norm.weight", dec.rms_norm_eps)
        return self.lin(h, "lm_head.weight")


def ref_patch_lengths_from_entropies(ent, threshold):
    n = len(ent)
    starts = [0, 1] + [t + 1 for t in range(1, n) if ent[t] > threshold]
    ends = [s - 1 for s in starts[1:]] + [n - 1]
    return [e - s + 1 for s, e in zip(starts, ends)]


def pick_threshold(ent):
    """Midpoint of the widest gap among the middle entropies (positions 1..n-1)."""
    vals = sorted(ent[1:])
    lo, hi = len(vals) // 4, 3 * len(vals) // 4
    best = max(range(lo, hi), key=lambda i: vals[i + 1] - vals[i])
    return 0.5 * (vals[best] + vals[best + 1]), vals[best + 1] - vals[best]


def rounded(t, digits):
    return [[round(float(x), digits) for x in row] for row in t.tolist()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--digits", type=int, default=5)
    args = ap.parse_args()

    torch.manual_seed(CONSTRUCT_SEED)
    ids = make_input_ids()
    n = len(ids)
    assert n == 40 and sum(IRREGULAR) == n and n % STRIDE == 0
    stride = [STRIDE] * (n // STRIDE)

    # Pass 1: build with a placeholder threshold, widen weights, measure the
    # patcher entropies, then choose a threshold that yields irregular patches.
    config = build_config(patching_threshold=1.0)
    model = BltForCausalLM(config).eval()
    widen_weights(model)
    with torch.no_grad():
        ent, _, _ = model.model.patcher(torch.tensor([ids]), patch_size=config.patch_size, threshold=1.0)
    ent = ent[0].tolist()
    threshold, gap = pick_threshold(ent)
    model.config.patching_threshold = threshold

    cases = {"irregular": IRREGULAR, "stride4": stride, "patcher": None}
    logits = {name: run_logits(model, ids, pl) for name, pl in cases.items()}
    with torch.no_grad():
        _, patcher_lengths, _ = model.model.patcher(
            torch.tensor([ids]), patch_size=config.patch_size, threshold=threshold
        )
    patcher_lengths = [int(x) for x in patcher_lengths[0].tolist()]

    # Save, reload, and re-run.
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    reloaded = BltForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    eager = BltForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager").eval()
    checks = {}
    for name, pl in cases.items():
        a = run_logits(reloaded, ids, pl)
        b = run_logits(eager, ids, pl)
        checks[f"{name}_reload_maxdiff"] = float((a - logits[name]).abs().max())
        checks[f"{name}_eager_vs_sdpa_maxdiff"] = float((b - logits[name]).abs().max())
        assert checks[f"{name}_reload_maxdiff"] == 0.0, (name, checks)
        assert checks[f"{name}_eager_vs_sdpa_maxdiff"] < 1e-4, (name, checks)

    # Independent float64 reference.
    ref = Ref(reloaded.state_dict(), reloaded.config)
    ref_ent = ref.patcher_entropies(ids).tolist()
    checks["patcher_entropy_ref_maxdiff"] = max(abs(a - b) for a, b in zip(ref_ent, ent))
    assert ref_patch_lengths_from_entropies(ref_ent, threshold) == patcher_lengths, patcher_lengths
    for name, pl in cases.items():
        pl = pl if pl is not None else patcher_lengths
        diff = float((ref.forward(ids, pl).float() - logits[name]).abs().max())
        checks[f"{name}_reference_maxdiff"] = diff
        assert diff < 1e-3, (name, diff)

    # Cross-check the hash reference against transformers' own helper.
    from transformers.models.blt import modeling_blt as mb

    hash_ids = {}
    for g in config.encoder_hash_byte_group_size:
        hf = mb.byte_group_hash_function(torch.tensor([ids]), g, 1000000007, config.encoder_hash_byte_group_vocab)
        ours = ref_hash_ids(ids, g, 1000000007, config.encoder_hash_byte_group_vocab)
        assert hf[0].tolist() == ours, g
        hash_ids[str(g)] = ours

    spread = {name: float(t.max() - t.min()) for name, t in logits.items()}
    row_std = {name: float(t.std(dim=-1).mean()) for name, t in logits.items()}

    expected = {
        "generator": {
            "script": "scripts/make_hf_fixture.py",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "construct_seed": CONSTRUCT_SEED,
            "reinit_seed": REINIT_SEED,
            "reinit": f"matrices N(0,{MATRIX_STD}^2); 1-D (RMSNorm) 1+{NORM_STD}*N(0,1)",
            "attn_implementation": model.config._attn_implementation,
            "logit_digits": args.digits,
        },
        "text": TEXT,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "byte_offset": BYTE_OFFSET,
        "input_ids": [ids],
        "patching_threshold": threshold,
        "patching_threshold_gap": gap,
        "checks": checks,
        "logit_range": spread,
        "logit_row_std_mean": row_std,
        "debug": {
            "hash_ids_prime_1000000007_before_table_offset": hash_ids,
            "patcher_entropies": [round(x, 6) for x in ent],
            "patch_ids": {
                name: ref_patch_ids(pl if pl is not None else patcher_lengths, n) for name, pl in cases.items()
            },
            "decoder_patch_ids": {
                name: ref_patch_ids((pl if pl is not None else patcher_lengths)[1:], n)
                for name, pl in cases.items()
            },
        },
        "cases": [
            {
                "name": name,
                "patch_lengths": [pl] if pl is not None else None,
                "resulting_patch_lengths": [pl if pl is not None else patcher_lengths],
                "logits_shape": list(logits[name].shape),
                "logits": rounded(logits[name], args.digits),
            }
            for name, pl in cases.items()
        ],
    }
    path = os.path.join(args.out, "expected.json")
    with open(path, "w") as fh:
        json.dump(expected, fh, separators=(",", ":"))
        fh.write("\n")

    for fname in sorted(os.listdir(args.out)):
        print(f"{fname}: {os.path.getsize(os.path.join(args.out, fname))} bytes")
    print("threshold", threshold, "gap", gap, "patcher lengths", patcher_lengths)
    print("checks", json.dumps(checks, indent=1))
    print("logit range", spread, "row std", row_std)
    return 0


if __name__ == "__main__":
    sys.exit(main())
