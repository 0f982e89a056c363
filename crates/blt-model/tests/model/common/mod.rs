//! Shared helpers of the model integration tests.
#![allow(dead_code)]

use blt_model::{Blt, BltConfig, BltInput, EntropyModel, EntropyModelConfig, PatchingKind};
use burn::{
    backend::{NdArray, ndarray::NdArrayDevice},
    tensor::Tensor,
};

/// The backend the tests run on.
pub type B = NdArray;

pub fn device() -> NdArrayDevice {
    NdArrayDevice::Cpu
}

/// A tiny config with a small window so that windowing matters at test lengths.
pub fn test_config(patching: PatchingKind) -> BltConfig {
    BltConfig {
        patching,
        window_size: 12,
        entropy_context_size: 12,
        max_position_embeddings: 160,
        encoder_layers: 1,
        decoder_layers: 2,
        ..BltConfig::tiny()
    }
}

pub struct TestModel {
    pub config: BltConfig,
    pub model: Blt<B>,
    pub entropy: Option<EntropyModel<B>>,
}

/// [`blt_model::seeded`] on the test backend and device.
pub fn seeded<T>(seed: u64, init: impl FnOnce() -> T) -> T {
    blt_model::seeded::<B, T>(&device(), seed, init)
}

impl TestModel {
    pub fn new(config: BltConfig, seed: u64) -> Self {
        let (model, entropy) = seeded(seed, || {
            let model = Blt::new(&config, &device()).unwrap();
            let entropy = (config.patching == PatchingKind::Entropy)
                .then(|| EntropyModelConfig::from_blt(&config).init(&device()));
            (model, entropy)
        });
        Self {
            config,
            model,
            entropy,
        }
    }

    /// Entropies of `[BOS] + text`, when the model patches by entropy.
    pub fn entropies(&self, texts: &[&[u8]]) -> Option<Vec<Vec<f32>>> {
        self.entropy.as_ref().map(|e| {
            let rows: Vec<Vec<u32>> = texts
                .iter()
                .map(|t| {
                    std::iter::once(1)
                        .chain(t.iter().map(|&b| b as u32 + 4))
                        .collect()
                })
                .collect();
            let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
            e.entropies(&refs, self.config.entropy_resets(), &device())
                .unwrap()
        })
    }

    pub fn input(&self, texts: &[&[u8]]) -> BltInput<B> {
        let entropies = self.entropies(texts);
        BltInput::from_bytes(&self.config, texts, entropies.as_deref(), &device()).unwrap()
    }

    pub fn logits(&self, texts: &[&[u8]]) -> Tensor<B, 3> {
        self.model.forward(&self.input(texts)).logits
    }
}

pub fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

/// Deterministic pseudo-random text of letters, spaces and punctuation.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let alphabet = b"abcdefghij klmnop, qrstuvwxyz. ABC\n";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            alphabet[(state % alphabet.len() as u64) as usize]
        })
        .collect()
}
