//! The whole BLT on wgpu against ndarray: the forward pass under every patching scheme, the
//! entropy model, and byte-by-byte decoding through the caches against a full forward.

use blt_model::{
    Blt, BltConfig, BltInput, EntropyModel, EntropyModelConfig, Generator, PatchingKind,
    generate::{FullRecompute, Incremental, StepDecoder},
};

use super::{
    backends::*,
    common::text,
    schemes::{schemes, tune_threshold},
};

/// Logits after several layers of f32 products (sums of up to 384 terms), norms and softmaxes
/// on another kernel order. The measured differences are about 1e-6 of the logits' scale
/// (the test log prints them); 1e-4 leaves room without hiding a wrong op, which moves logits
/// by far more (a wrong mask or position changes them at the 1e-1 scale).
const TOL: f32 = 1e-4;

/// One BLT and its entropy model (when it patches by entropy), on both backends.
pub struct Pair {
    pub nd: Blt<N>,
    pub gpu: Blt<W>,
    pub entropy: Option<(EntropyModel<N>, EntropyModel<W>)>,
}

impl Pair {
    pub fn new(config: &BltConfig, seed: u64) -> Self {
        let (reference, under_test) = on_both(
            || blt_model::seeded::<N, _>(&nd(), seed, || Blt::new(config, &nd()).unwrap()),
            || Blt::new(config, &gpu()).unwrap(),
        );
        let entropy = (config.patching == PatchingKind::Entropy).then(|| {
            let entropy = EntropyModelConfig::from_blt(config);
            on_both(
                || blt_model::seeded::<N, _>(&nd(), seed + 1, || entropy.init(&nd())),
                || entropy.init(&gpu()),
            )
        });
        Self {
            nd: reference,
            gpu: under_test,
            entropy,
        }
    }
}

/// `[BOS] + bytes` as ids.
fn ids(text: &[u8]) -> Vec<u32> {
    std::iter::once(1)
        .chain(text.iter().map(|&b| b as u32 + 4))
        .collect()
}

#[test]
fn forward_under_every_patching_scheme() {
    let _gpu = exclusive();
    let texts = [text(51, 40), text(52, 27)];
    let texts: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    for (name, config) in schemes(texts[0], 61) {
        let pair = Pair::new(&config, 61);
        // Patch boundaries come from the ndarray entropies on both backends, so that the
        // comparison is of the models, not of which side of a threshold an entropy fell; the
        // entropies themselves are compared below.
        let entropies = pair.entropy.as_ref().map(|(reference, under_test)| {
            let rows: Vec<Vec<u32>> = texts.iter().map(|t| ids(t)).collect();
            let rows: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
            let resets = config.entropy_resets();
            let want = reference.entropies(&rows, resets, &nd()).unwrap();
            let got = under_test.entropies(&rows, resets, &gpu()).unwrap();
            assert_close(
                &got.concat(),
                &want.concat(),
                TOL,
                &format!("{name}: entropies"),
            );
            want
        });
        let input_nd =
            BltInput::<N>::from_bytes(&config, &texts, entropies.as_deref(), &nd()).unwrap();
        let input_gpu =
            BltInput::<W>::from_bytes(&config, &texts, entropies.as_deref(), &gpu()).unwrap();
        assert_tensors_close(
            pair.gpu.forward(&input_gpu).logits,
            pair.nd.forward(&input_nd).logits,
            TOL,
            &format!("{name}: logits"),
        );
    }
}

/// Decoding on wgpu through every cache (local windows, the global model once per patch, the
/// entropy model's own cache) gives at each byte the logits of a full forward on ndarray, and
/// the same patch decisions.
#[test]
fn incremental_decoding_equals_the_full_forward() {
    let _gpu = exclusive();
    let prompt = text(71, 30);
    // Entropy (with the entropy model's own cache), space (max pooling) and byte (differential
    // attention, hierarchical memory); fixed and monotonic patch differently, not decode
    // differently, and the forward test covers them.
    let wanted = ["entropy", "space", "byte"];
    for (name, mut config) in schemes(&prompt, 73)
        .into_iter()
        .filter(|(n, _)| wanted.contains(n))
    {
        let pair = Pair::new(&config, 73);
        // Thresholds between this entropy model's own values (on ndarray), so that no boundary
        // hangs on the last bits of an entropy.
        if let Some((reference, _)) = &pair.entropy {
            let h = reference
                .entropies(&[&ids(&prompt)], config.entropy_resets(), &nd())
                .unwrap();
            tune_threshold(&mut config, &h[0]);
        }
        let entropy_nd = pair.entropy.as_ref().map(|(n, _)| n);
        let entropy_gpu = pair.entropy.as_ref().map(|(_, w)| w);
        let reference = Generator::new(&pair.nd, entropy_nd, &config, nd()).unwrap();
        let under_test = Generator::new(&pair.gpu, entropy_gpu, &config, gpu()).unwrap();
        let mut full = FullRecompute::new(&reference).unwrap();
        let mut fast = Incremental::new(&under_test).unwrap();
        let mut worst = 0.0f32;
        for (t, id) in ids(&prompt).into_iter().enumerate() {
            let want = full.push(id).unwrap();
            let got = fast.push(id).unwrap();
            assert_eq!(
                got.next_starts_patch, want.next_starts_patch,
                "{name}: patch decision at {t}"
            );
            let (diff, scale) = diff(&got.logits, &want.logits);
            assert!(
                diff <= TOL * scale.max(1.0),
                "{name}: step {t} differs by {diff} (scale {scale})"
            );
            worst = worst.max(diff);
        }
        eprintln!("{name}: cached decoding on wgpu within {worst:.2e} of ndarray's full forward");
        assert_eq!(full.patches(), fast.patches(), "{name}");
    }
}
