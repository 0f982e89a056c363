//! blt-core's layers on wgpu against ndarray: self-attention with windows and document blocks,
//! the KV cache, cross-attention with fully masked rows, and RoPE at the end of its table.

use blt_core::{
    AttentionKind, CrossAttentionConfig, KvCache, RopeConfig, SelfAttentionConfig,
    mask::{local_causal_mask, segment_ids},
};
use burn::tensor::{Bool, Distribution, Tensor, TensorData, backend::Backend};

use super::backends::*;

/// f32 attention on another kernel order: sums of 16–32 products and a softmax of up to 24
/// terms, each rounding at about 6e-8 relative, stay far below 1e-5 of the output scale.
const TOL: f32 = 1e-5;

/// The same standard-normal values on both backends (which values depends on what else draws
/// from ndarray's generator meanwhile; both backends get the same ones).
fn randn<const D: usize>(shape: [usize; D], seed: u64) -> (Tensor<N, D>, Tensor<W, D>) {
    N::seed(&nd(), seed);
    let x = Tensor::<N, D>::random(shape, Distribution::Normal(0.0, 1.0), &nd());
    let on_gpu = Tensor::from_data(x.to_data(), &gpu());
    (x, on_gpu)
}

fn attention_pair(
    kind: AttentionKind,
    dim: usize,
    seed: u64,
) -> (blt_core::SelfAttention<N>, blt_core::SelfAttention<W>) {
    let config = SelfAttentionConfig::new(dim, 2)
        .with_kind(kind)
        .with_max_seq_len(64)
        .with_layer_index(1);
    on_both(
        || {
            N::seed(&nd(), seed);
            config.init::<N>(&nd())
        },
        || config.init::<W>(&gpu()),
    )
}

/// Two rows: one with a document boundary after position 6, one without.
fn segments(seq: usize) -> Vec<Vec<u32>> {
    vec![
        segment_ids((0..seq).map(|p| p == 6)),
        segment_ids(vec![false; seq]),
    ]
}

#[test]
fn self_attention_with_windows_and_documents() {
    let _gpu = exclusive();
    let (batch, seq) = (2, 20);
    let segments = segments(seq);
    for kind in [AttentionKind::Standard, AttentionKind::Differential] {
        for window in [None, Some(5)] {
            let (reference, under_test) = attention_pair(kind, 32, 1);
            let (x, xg) = randn([batch, seq, 32], 2);
            let want = reference.forward(
                x,
                local_causal_mask::<N>(batch, seq, window, Some(&segments), &nd()),
            );
            let got = under_test.forward(
                xg,
                local_causal_mask::<W>(batch, seq, window, Some(&segments), &gpu()),
            );
            assert_tensors_close(
                got,
                want,
                TOL,
                &format!("{kind:?} attention, window {window:?}"),
            );
        }
    }
}

/// Decoding through the cache on wgpu, in steps of one and several positions, equals the full
/// masked forward on ndarray, and the windowed cache stays bounded.
#[test]
fn kv_cache_decoding_equals_the_full_forward() {
    let _gpu = exclusive();
    let batch = 2;
    let steps = [6usize, 1, 1, 3, 1, 1, 1, 4, 1];
    let seq: usize = steps.iter().sum();
    let segments = segments(seq);
    // Standard attention with a window (the cache evicts) and differential attention without
    // one (the cache keeps everything): each kernel and cache path once, since every chunk
    // length compiles new kernels on the CPU adapter.
    for (kind, window) in [
        (AttentionKind::Standard, Some(5)),
        (AttentionKind::Differential, None),
    ] {
        let (reference, under_test) = attention_pair(kind, 32, 3);
        let (x, xg) = randn([batch, seq, 32], 4);
        let full = reference.forward(
            x,
            local_causal_mask::<N>(batch, seq, window, Some(&segments), &nd()),
        );
        let mut cache = KvCache::new(window);
        let mut start = 0;
        for &len in &steps {
            let chunk: Vec<Vec<u32>> = segments
                .iter()
                .map(|s| s[start..start + len].to_vec())
                .collect();
            let out = under_test.forward_cached(
                xg.clone().narrow(1, start, len),
                &mut cache,
                Some(&chunk),
            );
            assert_tensors_close(
                out,
                full.clone().narrow(1, start, len),
                TOL,
                &format!("{kind:?} window {window:?} cached step at {start}"),
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
}

#[test]
fn cross_attention_with_fully_masked_rows() {
    let _gpu = exclusive();
    let config = CrossAttentionConfig::new(16, 24, 2);
    let (reference, under_test) = on_both(|| config.init::<N>(&nd()), || config.init::<W>(&gpu()));
    let (queries, queries_g) = randn([2, 3, 16], 6);
    let (context, context_g) = randn([2, 5, 24], 7);
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
    let data = TensorData::new(mask, [2, 3, 5]);
    let want = reference.forward(
        queries,
        context,
        Tensor::<N, 3, Bool>::from_data(data.clone(), &nd()),
    );
    let got = under_test.forward(
        queries_g,
        context_g,
        Tensor::<W, 3, Bool>::from_data(data, &gpu()),
    );
    let got_values = values(got.clone());
    for (b, row) in [(0usize, 1usize), (1, 2)] {
        let start = (b * 3 + row) * 16;
        assert!(
            got_values[start..start + 16].iter().all(|&v| v == 0.0),
            "fully masked row {row} of batch {b} is not zero on wgpu"
        );
    }
    assert_tensors_close(got, want, TOL, "cross-attention");
}

/// RoPE at the last positions of its table, by offset and with per-row starts.
#[test]
fn rope_at_the_end_of_its_table() {
    let _gpu = exclusive();
    let config = RopeConfig::new(16).with_max_seq_len(64);
    let reference = config.init::<N>(&nd());
    let under_test = config.init::<W>(&gpu());
    let (x, xg) = randn([2, 2, 8, 16], 8);
    assert_tensors_close(
        under_test.apply(xg.clone(), 56),
        reference.apply(x.clone(), 56),
        TOL,
        "rope at offset 56 of 64",
    );
    // Per row: row 0 from 3, row 1 up to the last position.
    let starts = [3, 56];
    assert_tensors_close(
        under_test.apply_at(xg, &starts),
        reference.apply_at(x, &starts),
        TOL,
        "rope with per-row starts 3 and 56",
    );
}

/// CubeCL's flash-attention kernel itself (the "unit" variant, which needs no plane
/// instructions and so runs on the CPU adapter), with the masks our layers build: a sliding
/// window, a document boundary, and rows whose keys are all masked. Autotuning on a GPU may
/// pick a flash kernel for our inference; on lavapipe it always picks the fallback (the
/// plane-based flash kernels cannot run there), so the flash kernel is called directly.
///
/// Fully masked rows come out exactly zero, as in the fallback. The kernel agrees with the
/// reference to about 4e-4 of the output scale, far above the 3e-7 of the fallback on the same
/// adapter (its online softmax rescales running sums tile by tile), so this test allows 2e-3.
/// A mask error moves outputs by a tenth of the scale or more, which this still catches.
#[test]
fn flash_attention_kernel_with_our_masks() {
    let _gpu = exclusive();
    use burn::{
        backend::wgpu::{CubeBackend, WgpuRuntime},
        tensor::{TensorPrimitive, module::attention, ops::AttentionModuleOptions},
    };
    use burn_cubecl::kernel::attention::{AttentionStrategy, attention as cube_attention};
    type C = CubeBackend<WgpuRuntime, f32, i32, u32>;

    let (batch, heads, seq, dim) = (2, 2, 20, 16);
    let segments = segments(seq);
    let mut mask: Vec<bool> = local_causal_mask::<N>(batch, seq, Some(5), Some(&segments), &nd())
        .into_data()
        .to_vec()
        .unwrap();
    // Row 9 of batch 1 sees nothing (as a cross-attention query with no bytes yet would).
    mask[(seq + 9) * seq..(seq + 10) * seq].fill(true);
    let mask: Vec<bool> = (0..batch)
        .flat_map(|b| {
            let rows = &mask[b * seq * seq..(b + 1) * seq * seq];
            (0..heads).flat_map(move |_| rows.iter().copied())
        })
        .collect();
    let shape = [batch, heads, seq, dim];
    let mask = TensorData::new(mask, [batch, heads, seq, seq]);
    let (q, _) = randn(shape, 11);
    let (k, _) = randn(shape, 12);
    let (v, _) = randn(shape, 13);
    let want = attention(
        q.clone(),
        k.clone(),
        v.clone(),
        Some(Tensor::<N, 4, Bool>::from_data(mask.clone(), &nd())),
        None,
        AttentionModuleOptions::default(),
    );
    let device = gpu();
    let on_cube = |t: &Tensor<N, 4>| {
        Tensor::<C, 4>::from_data(t.to_data(), &device)
            .into_primitive()
            .tensor()
    };
    let out = cube_attention::<WgpuRuntime>(
        on_cube(&q),
        on_cube(&k),
        on_cube(&v),
        Some(Tensor::<C, 4, Bool>::from_data(mask, &device).into_primitive()),
        None,
        AttentionModuleOptions::default(),
        AttentionStrategy::FlashUnit,
    )
    .expect("the flash kernel accepts these shapes");
    let got = Tensor::<C, 4>::from_primitive(TensorPrimitive::Float(out));
    let got_values = values(got);
    // Batch 1, every head, row 9.
    for head in 0..heads {
        let start = ((heads + head) * seq + 9) * dim;
        assert!(
            got_values[start..start + dim].iter().all(|&x| x == 0.0),
            "a fully masked row is not zero: {:?}",
            &got_values[start..start + dim]
        );
    }
    assert_close(
        &got_values,
        &values(want),
        2e-3,
        "flash attention (unit kernel)",
    );
}
