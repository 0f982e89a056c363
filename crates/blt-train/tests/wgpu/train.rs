//! Training on `Autodiff<Wgpu>`: one step's gradients equal ndarray's under every patching
//! scheme, and the loss falls on an overfitted batch along ndarray's own curve.

use blt_model::{Blt, BltConfig, BltInput, PatchingKind, masked_cross_entropy};
use burn::{
    backend::Autodiff,
    module::Module,
    optim::{AdamWConfig, GradientsParams, Optimizer},
    tensor::{
        Bool, Int, Tensor, TensorData,
        backend::{AutodiffBackend, Backend},
    },
};

use super::{
    backends::*,
    common::{test_config, text},
    schemes::schemes,
};

type AN = Autodiff<N>;
type AW = Autodiff<W>;

/// Inputs, next-byte targets and their mask for `texts` (BOS + bytes in, bytes + EOS out).
struct Batch<B: Backend> {
    input: BltInput<B>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2, Bool>,
    count: usize,
}

impl<B: Backend> Batch<B> {
    fn new(
        config: &BltConfig,
        texts: &[&[u8]],
        entropies: Option<&[Vec<f32>]>,
        device: &B::Device,
    ) -> Self {
        let input = BltInput::from_bytes(config, texts, entropies, device).unwrap();
        let seq = input.seq_len();
        let (mut targets, mut mask) = (Vec::new(), Vec::new());
        for text in texts {
            let row: Vec<i64> = text.iter().map(|&b| b as i64 + 4).chain([2]).collect();
            mask.extend((0..seq).map(|i| i < row.len()));
            targets.extend(row.iter().copied().chain(std::iter::repeat(0)).take(seq));
        }
        let count = mask.iter().filter(|&&m| m).count();
        let shape = [texts.len(), seq];
        Self {
            input,
            targets: Tensor::from_data(TensorData::new(targets, shape), device),
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
            count,
        }
    }

    fn loss(&self, model: &Blt<B>) -> Tensor<B, 1> {
        let logits = model.forward(&self.input).logits;
        masked_cross_entropy(logits, self.targets.clone(), self.mask.clone(), self.count)
            .mean_loss()
    }
}

/// Every parameter's gradient of `batch`'s mean loss, by module path.
fn gradients<B: AutodiffBackend>(
    model: &Blt<B>,
    batch: &Batch<B>,
) -> (f32, Vec<(String, Vec<f32>)>) {
    let loss = batch.loss(model);
    let value = values(loss.clone())[0];
    let grads = loss.backward();
    let mut visitor = Gradients::<B>::new(&grads);
    model.visit(&mut visitor);
    (value, visitor.out)
}

/// The same BLT on `Autodiff<NdArray>` and `Autodiff<Wgpu>`.
fn autodiff_pair(config: &BltConfig, seed: u64) -> (Blt<AN>, Blt<AW>) {
    let bytes = record_bytes(blt_model::seeded::<N, _>(&nd(), seed, || {
        Blt::<N>::new(config, &nd()).unwrap()
    }));
    (
        load_into(&bytes, Blt::<AN>::new(config, &nd()).unwrap(), &nd()),
        load_into(&bytes, Blt::<AW>::new(config, &gpu()).unwrap(), &gpu()),
    )
}

/// Two rows of different lengths (the shorter padded), with entropies from a fixed rule when
/// the scheme patches by entropy, so that both backends cut the same patches.
fn texts_and_entropies(config: &BltConfig) -> ([Vec<u8>; 2], Option<Vec<Vec<f32>>>) {
    let texts = [text(81, 36), text(82, 23)];
    let entropies = (config.patching == PatchingKind::Entropy).then(|| {
        texts
            .iter()
            .map(|t| (0..=t.len()).map(|i| ((i * 7) % 5) as f32 * 0.5).collect())
            .collect()
    });
    (texts, entropies)
}

/// Gradients through attention, pooling, n-gram embeddings and the decoder, summed in another
/// order: each is compared per parameter against 1e-4 of that parameter's largest gradient
/// (measured differences are printed; f32 rounding over these depths stays near 1e-6).
#[test]
fn one_training_step_has_ndarray_gradients() {
    let _gpu = exclusive();
    let prompt = text(80, 30);
    // Entropy (cross-attention pooling, n-gram embeddings), space (max pooling) and byte
    // (differential attention, hierarchical memory) cover every trainable layer; fixed and
    // monotonic differ from entropy only in where patches start, which the forward test covers.
    let wanted = ["entropy", "space", "byte"];
    for (name, mut config) in schemes(&prompt, 83)
        .into_iter()
        .filter(|(n, _)| wanted.contains(n))
    {
        config.entropy_threshold = 1.2;
        let (reference, under_test) = autodiff_pair(&config, 83);
        let (texts, entropies) = texts_and_entropies(&config);
        let texts: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let (loss_nd, want) = gradients(
            &reference,
            &Batch::new(&config, &texts, entropies.as_deref(), &nd()),
        );
        let (loss_gpu, got) = gradients(
            &under_test,
            &Batch::new(&config, &texts, entropies.as_deref(), &gpu()),
        );
        assert!(
            (loss_gpu - loss_nd).abs() < 1e-5 * loss_nd.abs().max(1.0),
            "{name}: loss {loss_gpu} vs {loss_nd}"
        );
        assert_eq!(
            got.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            want.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "{name}: the same parameters have gradients"
        );
        assert!(want.len() > 20, "{name}: only {} gradients", want.len());
        let mut worst = 0.0f32;
        for ((path, g), (_, w)) in got.iter().zip(&want) {
            let (d, scale) = diff(g, w);
            assert!(
                scale > 0.0 || d == 0.0,
                "{name}: {path} has a zero gradient on ndarray but not on wgpu"
            );
            assert!(
                d <= 1e-4 * scale,
                "{name}: gradient of {path} differs by {d:e} (scale {scale:e})"
            );
            if scale > 0.0 {
                worst = worst.max(d / scale);
            }
        }
        eprintln!(
            "{name}: {} gradients within {worst:.2e} (relative to each one's scale) of ndarray",
            want.len()
        );
    }
}

/// AdamW on one batch: the loss falls by more than half in 30 steps on wgpu, and each step's
/// loss stays within 1e-3 of ndarray's (Adam divides by √v, which amplifies rounding in
/// near-zero gradients, so the two curves drift apart slowly rather than staying bit-close).
#[test]
fn loss_falls_on_an_overfitted_batch_as_on_ndarray() {
    let _gpu = exclusive();
    let config = BltConfig {
        max_patch_size: 6,
        ..test_config(PatchingKind::Space)
    };
    let (mut reference, mut under_test) = autodiff_pair(&config, 87);
    let texts: [&[u8]; 2] = [
        b"In the beginning God created the heaven",
        b"and the earth.",
    ];
    let batch_nd = Batch::new(&config, &texts, None, &nd());
    let batch_gpu = Batch::new(&config, &texts, None, &gpu());
    let adam = AdamWConfig::new().with_weight_decay(0.0);
    let (mut optim_nd, mut optim_gpu) = (adam.init(), adam.init());
    let mut curve = Vec::new();
    for step in 0..30 {
        let loss_nd = batch_nd.loss(&reference);
        let loss_gpu = batch_gpu.loss(&under_test);
        let (a, b) = (values(loss_gpu.clone())[0], values(loss_nd.clone())[0]);
        assert!(
            (a - b).abs() <= 1e-3 * b.max(1.0),
            "step {step}: loss {a} on wgpu, {b} on ndarray"
        );
        curve.push(a);
        let grads = GradientsParams::from_grads(loss_nd.backward(), &reference);
        reference = optim_nd.step(3e-3, reference, grads);
        let grads = GradientsParams::from_grads(loss_gpu.backward(), &under_test);
        under_test = optim_gpu.step(3e-3, under_test, grads);
    }
    eprintln!("wgpu loss curve: {curve:?}");
    assert!(
        curve[29] < 0.5 * curve[0],
        "loss fell only from {} to {}",
        curve[0],
        curve[29]
    );
}
