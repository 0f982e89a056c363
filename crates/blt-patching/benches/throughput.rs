//! Patching and hashing throughput in bytes/s, printed as one JSON object.
//!
//! Input: ~4 MB of pseudo-random, text-like bytes (words, spaces, punctuation, some UTF-8),
//! cut into rows of 8192 ids (BOS + bytes) as the data batcher does, with pseudo-random
//! entropies. Each figure is the best of several runs. Std only; run with
//! `cargo bench -p blt-patching`.
#![allow(clippy::print_stdout, reason = "a benchmark binary reports on stdout")]

use std::hint::black_box;
use std::time::Instant;

use blt_patching::{
    BOS_ID, ByteTokenizer, EncodeOptions, NgramHasher, Patcher, PatcherConfig, PatchingScheme,
};

const TOTAL_BYTES: usize = 4 << 20;
const ROW: usize = 8192;
const REPEATS: usize = 5;

/// xorshift64*: deterministic, good enough for synthetic text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn text_like(len: usize, rng: &mut Rng) -> Vec<u8> {
    const LETTERS: &[u8] = b"etaoinshrdlcumwfgypbvkjxqz";
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let word = 1 + rng.below(9) as usize;
        for _ in 0..word {
            // Skewed towards frequent letters.
            let i = (rng.below(26) * rng.below(26) / 25) as usize;
            out.push(LETTERS[i]);
        }
        match rng.below(40) {
            0 => out.extend_from_slice(b", "),
            1 => out.extend_from_slice(b".\n"),
            2 => out.extend_from_slice("é ".as_bytes()),
            3 => out.extend_from_slice(" — ".as_bytes()),
            _ => out.push(b' '),
        }
    }
    out.truncate(len);
    out
}

/// Best-of-`REPEATS` bytes/s of `f` over `bytes` bytes.
fn rate(bytes: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..REPEATS {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    bytes as f64 / best
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let text = text_like(TOTAL_BYTES, &mut rng);
    let rows: Vec<Vec<u32>> = text
        .chunks(ROW - 1)
        .map(|c| ByteTokenizer.encode(c, EncodeOptions::PROMPT))
        .collect();
    let entropies: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|_| (rng.below(4000) as f32) / 1000.0)
                .collect()
        })
        .collect();
    let n_ids: usize = rows.iter().map(Vec::len).sum();
    debug_assert_eq!(rows[0][0], BOS_ID);

    let hasher = NgramHasher::default();
    let mut buf = vec![0u32; hasher.sizes().len() * ROW];
    let hash = rate(n_ids, || {
        for r in &rows {
            let out = &mut buf[..hasher.sizes().len() * r.len()];
            hasher
                .hash_ids_into(r, out)
                .expect("buffer sized to the row");
            black_box(&*out);
        }
    });
    let hash_stream = rate(n_ids, || {
        let mut s = hasher.stream();
        let mut out = [0u32; 6];
        for r in &rows {
            s.reset();
            for &id in r {
                s.push_into(id, &mut out).expect("one slot per size");
                black_box(&out);
            }
        }
    });

    let schemes = [
        ("entropy", PatchingScheme::entropy(1.335)),
        (
            "entropy_monotonic",
            PatchingScheme::Entropy {
                threshold: 0.5,
                monotonic: true,
            },
        ),
        ("fixed_4", PatchingScheme::Fixed { stride: 4 }),
        ("space", PatchingScheme::Space),
        ("byte", PatchingScheme::Byte),
    ];
    let mut patch_fields = Vec::new();
    for (name, scheme) in schemes {
        let patcher = Patcher::new(PatcherConfig::new(scheme)).expect("valid config");
        let mut patches = 0usize;
        let r = rate(n_ids, || {
            patches = 0;
            for (ids, h) in rows.iter().zip(&entropies) {
                let p = patcher.patch(ids, Some(h)).expect("entropies match ids");
                patches += p.num_patches();
                black_box(&p);
            }
        });
        patch_fields.push(format!(
            "\"{name}\": {{\"bytes_per_s\": {r:.0}, \"mean_patch_len\": {:.3}}}",
            n_ids as f64 / patches as f64
        ));
    }

    let patcher = Patcher::new(PatcherConfig::default()).expect("valid config");
    let stream = rate(n_ids, || {
        for (ids, h) in rows.iter().zip(&entropies) {
            let mut s = patcher.stream();
            for (&id, &e) in ids.iter().zip(h) {
                black_box(s.push(id, Some(e)));
            }
        }
    });

    println!(
        "{{\"input_bytes\": {n_ids}, \"row_len\": {ROW}, \"hash_3_to_8_bytes_per_s\": {hash:.0}, \
         \"hash_stream_3_to_8_bytes_per_s\": {hash_stream:.0}, \"patch\": {{{}}}, \
         \"stream_patch_entropy_bytes_per_s\": {stream:.0}}}",
        patch_fields.join(", ")
    );
}
