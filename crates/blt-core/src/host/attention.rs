//! Self-attention of one new position against a [`HostKvCache`], and the per-head softmax
//! both kinds of attention share.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use rayon::prelude::*;

use super::{HostCopier, HostKvCache, HostLinear, HostRope};
use crate::{
    attention::SelfAttention,
    error::CoreError,
    simd::{self, Simd, WithSimd},
};

/// A standard (not differential) [`SelfAttention`] on the host.
#[derive(Debug, Clone)]
pub struct HostSelfAttention {
    qkv: HostLinear,
    output: HostLinear,
    rope: Arc<HostRope>,
    heads: usize,
    head_dim: usize,
}

impl HostSelfAttention {
    /// Copies `attention`'s weights; fails for differential attention, which has no host step.
    pub fn from_attention<B: Backend>(
        attention: &SelfAttention<B>,
        copier: &mut HostCopier,
    ) -> Result<Self, CoreError> {
        if attention.differential.is_some() {
            return Err(CoreError::HostUnsupported("differential attention"));
        }
        let (heads, head_dim) = attention.heads();
        Ok(Self {
            qkv: copier.linear(&attention.qkv),
            output: copier.linear(&attention.output),
            rope: copier.rope(&attention.rope),
            heads,
            head_dim,
        })
    }

    /// Bytes of its weight matrices and biases.
    pub fn bytes(&self) -> usize {
        self.qkv.bytes() + self.output.bytes()
    }

    /// Width of the keys and values it caches.
    pub fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Attends from `x` (already normed), the next position of `cache`, in document
    /// `segment`, to itself and the cached keys it may see; caches its key and value.
    pub fn step(&self, x: &[f32], cache: &mut HostKvCache, segment: u32) -> Vec<f32> {
        self.steps(x, cache, &[segment])
    }

    /// [`step`](Self::step) for consecutive positions: `x` holds one normed row per entry of
    /// `segments`. The projections run over all rows at once; each row then attends in turn,
    /// after its own key is cached, so it sees exactly what it would one step at a time.
    pub fn steps(&self, x: &[f32], cache: &mut HostKvCache, segments: &[u32]) -> Vec<f32> {
        let d = self.width();
        let mut qkv = self.qkv.apply_rows(x);
        let mut out = vec![0.0; segments.len() * d];
        for ((qkv, &segment), out) in qkv
            .chunks_exact_mut(3 * d)
            .zip(segments)
            .zip(out.chunks_exact_mut(d))
        {
            self.rope.rotate(&mut qkv[..2 * d], cache.position());
            cache.push(&qkv[d..2 * d], &qkv[2 * d..], segment);
            let visible = cache.visible(segment);
            attend(
                Heads {
                    count: self.heads,
                    dim: self.head_dim,
                },
                &qkv[..d],
                cache.keys(),
                cache.values(),
                &visible,
                out,
            );
        }
        self.output.apply_rows(&out)
    }
}

/// How the features of a query, key or value split into heads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub count: usize,
    pub dim: usize,
}

/// Below this many key features read (slots × width), the heads of one query run on the
/// calling thread; above it they are split over rayon's threads (a long cache: the per-byte
/// attention of a long prompt, and every row of a prefill).
const PARALLEL_FROM: usize = 1 << 15;

/// `out_h = softmax(q_h·k_{s,h} / √dim over s in slots) · v_{s,h}` for every head `h`; keys and
/// values are slot-major rows of `count · dim` features. No slots leaves `out` at zero.
pub(super) fn attend(
    heads: Heads,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    slots: &[usize],
    out: &mut [f32],
) {
    if slots.is_empty() {
        return;
    }
    let head = |h: usize, out: &mut [f32]| {
        simd::dispatch(AttendHead {
            heads,
            head: h,
            q,
            keys,
            values,
            slots,
            out,
        });
    };
    let width = heads.count * heads.dim;
    if slots.len() * width >= PARALLEL_FROM && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(heads.dim)
            .enumerate()
            .for_each(|(h, out)| head(h, out));
    } else {
        for (h, out) in out.chunks_mut(heads.dim).enumerate() {
            head(h, out);
        }
    }
}

/// One head of [`attend`]: `out` is that head's `dim` outputs.
struct AttendHead<'a> {
    heads: Heads,
    head: usize,
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    slots: &'a [usize],
    out: &'a mut [f32],
}

impl WithSimd for AttendHead<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let AttendHead {
            heads,
            head,
            q,
            keys,
            values,
            slots,
            out,
        } = self;
        let width = heads.count * heads.dim;
        let scale = (1.0 / (heads.dim as f64).sqrt()) as f32;
        let cols = head * heads.dim..(head + 1) * heads.dim;
        let qh = &q[cols.clone()];
        let mut scores: Vec<f32> = slots
            .iter()
            .map(|&s| simd::dot(qh, &keys[s * width + cols.start..s * width + cols.end]) * scale)
            .collect();
        let max = simd::max(&scores);
        let sum = simd::exp_shifted_sum(&mut scores, max);
        for (&p, &s) in scores.iter().zip(slots) {
            let v = &values[s * width + cols.start..s * width + cols.end];
            for (o, &v) in out.iter_mut().zip(v) {
                *o += p * v;
            }
        }
        simd::scale(out, 1.0 / sum);
    }
}
