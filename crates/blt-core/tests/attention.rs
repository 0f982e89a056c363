//! Property tests of the attention layers: causality under perturbed futures, windows and
//! document boundaries, KV-cache decoding equal to the full masked forward, fully masked
//! cross-attention rows, and differential attention's reduction to standard attention.

use blt_core::{
    AttentionKind, CrossAttentionConfig, KvCache, SelfAttention, SelfAttentionConfig,
    TransformerBlockConfig,
    mask::{local_causal_mask, segment_ids},
};
use burn::{
    backend::NdArray,
    module::Param,
    tensor::{Bool, Distribution, Tensor, TensorData, backend::Backend},
};

type B = NdArray;

fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

fn randn<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

fn attention(kind: AttentionKind, seed: u64) -> SelfAttention<B> {
    B::seed(&device(), seed);
    SelfAttentionConfig::new(32, 2)
        .with_kind(kind)
        .with_max_seq_len(64)
        .with_layer_index(1)
        .init(&device())
}

/// Replaces positions `range` of `x` (dim 1) with fresh noise.
fn perturb(x: &Tensor<B, 3>, range: std::ops::Range<usize>) -> Tensor<B, 3> {
    let [b, _, d] = x.dims();
    x.clone().slice_assign(
        [0..b, range.clone(), 0..d],
        randn([b, range.len(), d]) * 3.0,
    )
}

#[test]
fn future_and_out_of_window_keys_do_not_change_outputs() {
    let (batch, seq, window) = (2, 12, 4);
    for kind in [AttentionKind::Standard, AttentionKind::Differential] {
        let attn = attention(kind, 1);
        let mask = || local_causal_mask::<B>(batch, seq, Some(window), None, &device());
        let x = randn([batch, seq, 32]);
        let base = attn.forward(x.clone(), mask());
        for i in [0, 5, 10] {
            // Future perturbation: rows 0..=i unchanged.
            let out = attn.forward(perturb(&x, i + 1..seq), mask());
            let diff = max_abs_diff(
                out.clone().narrow(1, 0, i + 1),
                base.clone().narrow(1, 0, i + 1),
            );
            assert!(
                diff < 1e-5,
                "{kind:?}: future leaked into position {i} ({diff})"
            );
            if i + 1 < seq {
                let changed =
                    max_abs_diff(out.narrow(1, i + 1, 1), base.clone().narrow(1, i + 1, 1));
                assert!(
                    changed > 1e-3,
                    "{kind:?}: perturbation had no effect at all"
                );
            }
        }
        // Keys more than `window − 1` positions back are invisible to position 11.
        let out = attn.forward(perturb(&x, 0..seq - window), mask());
        let diff = max_abs_diff(out.narrow(1, seq - 1, 1), base.narrow(1, seq - 1, 1));
        assert!(diff < 1e-5, "{kind:?}: out-of-window key leaked ({diff})");
    }
}

#[test]
fn earlier_documents_are_invisible() {
    let seq = 10;
    let ends: Vec<bool> = (0..seq).map(|p| p == 3).collect();
    let segments = vec![segment_ids(ends)];
    let attn = attention(AttentionKind::Standard, 2);
    let mask = || local_causal_mask::<B>(1, seq, None, Some(&segments), &device());
    let x = randn([1, seq, 32]);
    let base = attn.forward(x.clone(), mask());
    let out = attn.forward(perturb(&x, 0..4), mask());
    assert!(
        max_abs_diff(
            out.clone().narrow(1, 4, seq - 4),
            base.clone().narrow(1, 4, seq - 4)
        ) < 1e-5
    );
    assert!(max_abs_diff(out.narrow(1, 0, 4), base.narrow(1, 0, 4)) > 1e-3);
}

/// Decoding in chunks (`steps` lengths) through the cache must equal the full forward.
fn check_cache_equivalence(kind: AttentionKind, window: Option<usize>, steps: &[usize]) {
    let seq: usize = steps.iter().sum();
    let batch = 2;
    let attn = attention(kind, 3);
    let ends: Vec<Vec<bool>> = vec![(0..seq).map(|p| p == 6).collect(), vec![false; seq]];
    let segments: Vec<Vec<u32>> = ends.into_iter().map(segment_ids).collect();
    let x = randn([batch, seq, 32]);
    let full = attn.forward(
        x.clone(),
        local_causal_mask::<B>(batch, seq, window, Some(&segments), &device()),
    );
    let mut cache = KvCache::new(window);
    let mut start = 0;
    for &len in steps {
        let chunk_segments: Vec<Vec<u32>> = segments
            .iter()
            .map(|s| s[start..start + len].to_vec())
            .collect();
        let out = attn.forward_cached(
            x.clone().narrow(1, start, len),
            &mut cache,
            Some(&chunk_segments),
        );
        let diff = max_abs_diff(out, full.clone().narrow(1, start, len));
        assert!(
            diff < 1e-4,
            "{kind:?} window {window:?}: step at {start} differs by {diff}"
        );
        start += len;
        if let Some(w) = window {
            assert!(
                cache.len() < w,
                "cache holds {} keys, window {w}",
                cache.len()
            );
        }
    }
    assert_eq!(cache.position(), seq);
}

#[test]
fn kv_cache_decoding_equals_full_forward() {
    for kind in [AttentionKind::Standard, AttentionKind::Differential] {
        check_cache_equivalence(kind, Some(4), &[1; 14]);
        check_cache_equivalence(kind, None, &[1; 14]);
        check_cache_equivalence(kind, Some(5), &[6, 1, 1, 3, 1, 1, 1]);
    }
}

#[test]
fn transformer_block_cache_equals_full_forward() {
    B::seed(&device(), 4);
    let block = TransformerBlockConfig::new(32, 4)
        .with_attention(AttentionKind::Differential)
        .with_max_seq_len(32)
        .init::<B>(&device());
    let seq = 9;
    let x = randn([1, seq, 32]);
    let full = block.forward(
        x.clone(),
        local_causal_mask::<B>(1, seq, Some(3), None, &device()),
    );
    let mut cache = KvCache::new(Some(3));
    for t in 0..seq {
        let out = block.forward_cached(x.clone().narrow(1, t, 1), &mut cache, None);
        assert!(
            max_abs_diff(out, full.clone().narrow(1, t, 1)) < 1e-4,
            "position {t}"
        );
    }
}

#[test]
fn fully_masked_cross_attention_rows_are_exactly_zero() {
    B::seed(&device(), 5);
    let cross = CrossAttentionConfig::new(16, 24, 2).init::<B>(&device());
    let queries = randn([2, 3, 16]);
    let context = randn([2, 5, 24]);
    // Row 1 of batch 0 and row 2 of batch 1 see nothing.
    #[rustfmt::skip]
    let mask: Vec<bool> = vec![
        false, false, true, true, true,
        true, true, true, true, true,
        true, true, false, false, false,
        false, true, true, true, true,
        true, false, false, true, true,
        true, true, true, true, true,
    ];
    let mask =
        || Tensor::<B, 3, Bool>::from_data(TensorData::new(mask.clone(), [2, 3, 5]), &device());
    let out = cross.forward(queries.clone(), context.clone(), mask());
    let values: Vec<f32> = out.clone().into_data().to_vec().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    for (b, row) in [(0, 1), (1, 2)] {
        let zeros = out
            .clone()
            .narrow(0, b, 1)
            .narrow(1, row, 1)
            .abs()
            .max()
            .into_scalar();
        assert_eq!(
            zeros, 0.0,
            "fully masked row ({b},{row}) is not exactly zero"
        );
    }
    let nonzero = out
        .clone()
        .narrow(0, 0, 1)
        .narrow(1, 0, 1)
        .abs()
        .max()
        .into_scalar();
    assert!(nonzero > 0.0);
    // Masked keys have no influence: change keys 2..5 of batch 0, which row 0 cannot see.
    let changed = context
        .clone()
        .slice_assign([0..1, 2..5, 0..24], randn([1, 3, 24]));
    let out2 = cross.forward(queries, changed, mask());
    let d = max_abs_diff(
        out2.narrow(0, 0, 1).narrow(1, 0, 1),
        out.narrow(0, 0, 1).narrow(1, 0, 1),
    );
    assert!(d < 1e-6);
}

#[test]
fn differential_with_zero_lambda_is_standard_attention_on_first_map() {
    let attn = attention(AttentionKind::Differential, 6);
    let diff = attn.differential.as_ref().expect("differential layer");
    let lambda_init = diff.lambda_init;
    // Force λ = exp(0) − exp(ln(1 + λ_init)) + λ_init = 0.
    let half = 8; // head_dim 16 / 2
    let mut zero_lambda = attn.clone();
    {
        let d = zero_lambda.differential.as_mut().unwrap();
        let mut e0 = vec![0.0f32; half];
        e0[0] = 1.0;
        let mut c = vec![0.0f32; half];
        c[0] = (1.0 + lambda_init as f32).ln();
        d.lambda_q1 = Param::from_tensor(Tensor::zeros([half], &device()));
        d.lambda_k1 = Param::from_tensor(Tensor::zeros([half], &device()));
        d.lambda_q2 = Param::from_tensor(Tensor::from_floats(c.as_slice(), &device()));
        d.lambda_k2 = Param::from_tensor(Tensor::from_floats(e0.as_slice(), &device()));
        let lambda: f32 = d.lambda().into_scalar();
        assert!(lambda.abs() < 1e-6, "λ = {lambda}");
    }
    let seq = 7;
    let x = randn([1, seq, 32]);
    let mask = local_causal_mask::<B>(1, seq, Some(4), None, &device());
    let out = zero_lambda.forward(x.clone(), mask.clone());

    // Reference: first map only, written out by hand.
    let [h, dh] = [2, 16];
    let qkv = zero_lambda
        .qkv
        .forward(x)
        .reshape([1, seq, 3 * h, dh])
        .swap_dims(1, 2);
    let first_half = |t: Tensor<B, 4>| t.narrow(3, 0, dh / 2);
    let q1 = zero_lambda
        .rope
        .apply(first_half(qkv.clone().narrow(1, 0, h)), 0);
    let k1 = zero_lambda
        .rope
        .apply(first_half(qkv.clone().narrow(1, h, h)), 0);
    let v = qkv.narrow(1, 2 * h, h);
    let scores = q1.matmul(k1.swap_dims(2, 3)) / ((dh / 2) as f32).sqrt();
    let scores = scores.mask_fill(
        mask.unsqueeze_dim::<4>(1).expand([1, h, seq, seq]),
        f32::NEG_INFINITY,
    );
    let probs = burn::tensor::activation::softmax(scores, 3);
    let heads = zero_lambda
        .differential
        .as_ref()
        .unwrap()
        .head_norm
        .forward(probs.matmul(v))
        * (1.0 - lambda_init);
    let expected = zero_lambda
        .output
        .forward(heads.swap_dims(1, 2).reshape([1, seq, h * dh]));
    let d = max_abs_diff(out, expected);
    assert!(
        d < 1e-5,
        "differential(λ=0) differs from first-map attention by {d}"
    );
}

/// Grouped attention must agree with dense masked attention for small and large groups,
/// including a query whose whole group is masked (exact zeros).
#[test]
fn grouped_cross_attention_equals_masked_dense_attention() {
    for g in [2, 4, 40] {
        check_grouped(g);
    }
}

fn check_grouped(g: usize) {
    B::seed(&device(), 8);
    let cross = CrossAttentionConfig::new(16, 16, 4).init::<B>(&device());
    let (batch, tq, groups) = (2, 5, 3);
    let queries = randn([batch, tq, 16]);
    let context = randn([batch, groups * g, 16]);
    let index: Vec<i64> = vec![0, 2, 1, 1, 0, 2, 2, 0, 1, 0];
    // Within-group validity: the last key of every group is masked for query 3.
    let mut within = vec![false; batch * tq * g];
    for b in 0..batch {
        within[(b * tq + 3) * g + g - 1] = true;
    }
    // Query 4 of row 0 sees nothing.
    within[4 * g..5 * g].fill(true);
    let mut dense = vec![true; batch * tq * groups * g];
    for b in 0..batch {
        for i in 0..tq {
            let grp = index[b * tq + i] as usize;
            for j in 0..g {
                dense[(b * tq + i) * groups * g + grp * g + j] = within[(b * tq + i) * g + j];
            }
        }
    }
    let grouped = cross.forward_grouped(
        queries.clone(),
        context.clone(),
        Tensor::from_data(TensorData::new(index, [batch, tq]), &device()),
        g,
        Some(Tensor::from_data(
            TensorData::new(within, [batch, tq, g]),
            &device(),
        )),
    );
    let full = cross.forward(
        queries,
        context,
        Tensor::from_data(TensorData::new(dense, [batch, tq, groups * g]), &device()),
    );
    let blind: f32 = grouped
        .clone()
        .narrow(0, 0, 1)
        .narrow(1, 4, 1)
        .abs()
        .max()
        .into_scalar();
    assert_eq!(blind, 0.0, "a fully masked group must give zeros (g = {g})");
    assert!(max_abs_diff(grouped, full) < 1e-5, "g = {g}");
}
