//! Each host layer against the Burn layer it copies, on NdArray.

use burn::{
    module::Param,
    nn::LinearConfig,
    tensor::{Distribution, Tensor, TensorData},
};

use super::{
    HostBlock, HostCopier, HostCrossAttention, HostLinear, WeightPrecision, to_bf16, values,
};
use crate::{
    CrossAttentionConfig, TransformerBlockConfig,
    mask::{local_causal_mask, segment_ids},
    test_util::TestBackend,
};

type B = TestBackend;

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
    <B as burn::tensor::backend::Backend>::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * scale,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

/// With and without a bias, on one thread (small) and split over the pool (large, with an
/// output width that leaves a partial column block and an input width that is not a multiple
/// of four); in `bf16`, against the same product with the weights rounded first.
#[test]
fn linear_matches_burn() {
    for (d_in, d_out, bias, seed) in [(7, 5, true, 1), (301, 1100, false, 2), (258, 96, true, 3)] {
        let device = Default::default();
        let mut layer = LinearConfig::new(d_in, d_out)
            .with_bias(bias)
            .init::<B>(&device);
        layer.weight = Param::from_tensor(random([d_in, d_out], seed));
        let x = random([1, d_in], seed + 10);
        let want = values(layer.forward(x.clone()));
        let host = HostLinear::from_linear(&layer, WeightPrecision::F32);
        assert_close(&host.apply(&values(x.clone())), &want, 1e-5, "linear");

        let rounded: Vec<f32> = values(layer.weight.val())
            .into_iter()
            .map(|w| f32::from_bits(u32::from(to_bf16(w)) << 16))
            .collect();
        let bf16 = HostLinear::from_linear(&layer, WeightPrecision::Bf16);
        layer.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(rounded, [d_in, d_out]),
            &device,
        ));
        let want = values(layer.forward(x.clone()));
        assert_close(&bf16.apply(&values(x)), &want, 1e-5, "bf16 linear");
        assert_eq!(bf16.precision(), WeightPrecision::Bf16);
    }
}

/// Many rows through one product equal the product of each row alone, to float rounding (the
/// sums run in other orders: tiles of rows, `gemm` from 24 rows, int8's scales per group),
/// in every precision, for row counts that leave partial tiles and row chunks, on one thread
/// and split over the pool.
#[test]
fn many_row_products_equal_one_row_products() {
    for (d_in, d_out, rows, seed) in [(9, 5, 3, 1), (301, 1100, 7, 2), (70, 200, 131, 3)] {
        let weight = values(random([d_in, d_out], seed));
        let bias = values(random([d_out], seed + 1));
        let x = values(random([rows, d_in], seed + 2));
        for precision in [
            WeightPrecision::F32,
            WeightPrecision::Bf16,
            WeightPrecision::Int8,
        ] {
            let layer =
                HostLinear::from_values(&weight, Some(bias.clone()), [d_in, d_out], precision);
            let many = layer.apply_rows(&x);
            for (r, row) in x.chunks_exact(d_in).enumerate() {
                assert_close(
                    &many[r * d_out..(r + 1) * d_out],
                    &layer.apply(row),
                    2e-6 * (d_in as f32).sqrt(),
                    &format!("{precision:?}, {rows} rows of [{d_in}, {d_out}]: row {r}"),
                );
            }
        }
    }
}

/// `int8` weights: each weight moves by at most half a step of its group's scale, so a product
/// stays within that bound summed over the row, and it is not the `f32` product (the weights
/// were rounded); a zero column stays exactly zero.
#[test]
fn int8_products_stay_within_the_quantisation_bound() {
    let (d_in, d_out) = (100, 130);
    let mut weight = values(random([d_in, d_out], 11));
    for i in 0..d_in {
        weight[i * d_out + 7] = 0.0;
    }
    let x = values(random([1, d_in], 12));
    let exact = HostLinear::from_values(&weight, None, [d_in, d_out], WeightPrecision::F32);
    let int8 = HostLinear::from_values(&weight, None, [d_in, d_out], WeightPrecision::Int8);
    let (want, got) = (exact.apply(&x), int8.apply(&x));
    let mut moved = 0.0f32;
    for j in 0..d_out {
        // The bound: Σ_i |x_i| · (group max of column j) / 254.
        let bound: f32 = (0..d_in)
            .map(|i| {
                let group = i / 32 * 32..(i / 32 * 32 + 32).min(d_in);
                let max = group
                    .map(|k| weight[k * d_out + j].abs())
                    .fold(0.0, f32::max);
                x[i].abs() * max / 254.0
            })
            .sum();
        let diff = (got[j] - want[j]).abs();
        assert!(diff <= bound * 1.001 + 1e-6, "column {j}: {diff} > {bound}");
        moved = moved.max(diff);
    }
    assert_eq!(got[7], 0.0);
    assert!(moved > 0.0, "int8 changed nothing");
    assert_eq!(int8.precision(), WeightPrecision::Int8);
    assert!(
        int8.bytes() * 3 < exact.bytes(),
        "{} vs {}",
        int8.bytes(),
        exact.bytes()
    );
}

/// Round to nearest, ties to even, on the bit patterns.
#[test]
fn bf16_rounding() {
    assert_eq!(to_bf16(1.0), 0x3f80);
    assert_eq!(to_bf16(-2.0), 0xc000);
    // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1.0).
    assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
    // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: up to the even one.
    assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(to_bf16(1.0 + 1.0 / 256.0 + 1e-6), 0x3f81);
    assert_eq!(to_bf16(f32::INFINITY), 0x7f80);
    assert_eq!(to_bf16(f32::NAN), 0x7fc0);
}

/// A block stepped one position at a time equals its full forward pass under the same window
/// and document mask: the window (3 keys) wraps the ring several times, and the second
/// document starts mid-sequence.
#[test]
fn block_steps_equal_the_full_forward() {
    let device = Default::default();
    let (d, seq, window) = (32, 11, 3);
    let block = TransformerBlockConfig::new(d, 4)
        .with_ffn_hidden_size(Some(48))
        .with_max_seq_len(16)
        .init::<B>(&device);
    let ends = [
        false, false, false, false, true, false, false, false, false, false, false,
    ];
    let segments = segment_ids(ends);
    let mask = local_causal_mask::<B>(
        1,
        seq,
        Some(window),
        Some(std::slice::from_ref(&segments)),
        &device,
    );
    let x = random([1, seq, d], 5);
    let want = values(block.forward(x.clone(), mask));

    let host = HostBlock::from_block(&block, &mut HostCopier::default()).expect("standard block");
    let mut cache = host.new_cache(Some(window));
    let x = values(x);
    for t in 0..seq {
        let mut row = x[t * d..(t + 1) * d].to_vec();
        host.step(&mut row, &mut cache, segments[t]);
        assert_close(
            &row,
            &want[t * d..(t + 1) * d],
            2e-5,
            &format!("position {t}"),
        );
    }
    assert_eq!(cache.len(), window, "the ring keeps the window");
    assert_eq!(cache.position(), seq);

    // All positions in one call (as a prompt's prefill runs them), then in two calls.
    for split in [seq, 4] {
        let mut cache = host.new_cache(Some(window));
        let mut rows = x.clone();
        let (head, tail) = rows.split_at_mut(split * d);
        host.steps(head, &mut cache, &segments[..split]);
        host.steps(tail, &mut cache, &segments[split..]);
        assert_close(&rows, &want, 2e-5, &format!("steps split at {split}"));
        assert_eq!(cache.position(), seq);
    }
}

#[test]
fn differential_blocks_are_refused() {
    let block = TransformerBlockConfig::new(32, 2)
        .with_attention(crate::AttentionKind::Differential)
        .init::<B>(&Default::default());
    let err = HostBlock::from_block(&block, &mut HostCopier::default()).unwrap_err();
    assert!(err.to_string().contains("differential"), "{err}");
}

/// Every query against a whole context, as the decoder reads a patch's slots and the pooling
/// reads a patch's bytes.
#[test]
fn cross_attention_matches_burn() {
    let device = Default::default();
    let (d, tq, tk) = (24, 3, 5);
    let layer = CrossAttentionConfig::new(d, d, 3).init::<B>(&device);
    let queries = random([1, tq, d], 7);
    let context = random([1, tk, d], 8);
    let mask = Tensor::<B, 3, burn::tensor::Bool>::from_data(
        TensorData::new(vec![false; tq * tk], [1, tq, tk]),
        &device,
    );
    let want = values(layer.forward(queries.clone(), context.clone(), mask));
    let host = HostCrossAttention::from_attention(&layer, &HostCopier::default());
    let ctx = host.context(&values(context));
    let queries = values(queries);
    for q in 0..tq {
        let got = host.attend(&queries[q * d..(q + 1) * d], &ctx);
        assert_close(&got, &want[q * d..(q + 1) * d], 2e-5, &format!("query {q}"));
    }
}

/// Layers with equal rotary tables share one copy; a different θ gets its own.
#[test]
fn rotary_tables_are_shared_when_equal() {
    let device = Default::default();
    let config = TransformerBlockConfig::new(16, 2).with_max_seq_len(8);
    let a = config.init::<B>(&device);
    let b = config.init::<B>(&device);
    let c = config.clone().with_rope_theta(1e4).init::<B>(&device);
    let mut copier = HostCopier::default();
    let (ra, rb, rc) = (
        copier.rope(&a.attention.rope),
        copier.rope(&b.attention.rope),
        copier.rope(&c.attention.rope),
    );
    assert!(std::sync::Arc::ptr_eq(&ra, &rb));
    assert!(!std::sync::Arc::ptr_eq(&ra, &rc));
    assert_eq!(ra.positions(), 8);
}
