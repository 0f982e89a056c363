//! Importing a Hugging Face BLT: logits parity with transformers on a tiny random checkpoint
//! (`tests/fixtures/hf-tiny`, made by `scripts/make_hf_fixture.py` with transformers 5.24), and
//! clear errors for checkpoints that do not fit.

use std::path::{Path, PathBuf};

use blt_model::{
    BltInput, RowPreparer,
    hf::{
        Checkpoint, SINGLE_FILE, export_hf, export_hf_with, load_hf, load_hf_with, max_logit_diffs,
        parse_reference, write_f32,
    },
};
use burn::backend::NdArray;
use serde_json::Value;

type B = NdArray;

/// Records a pass's total, its running counts and whether it finished.
#[derive(Default)]
struct Counter(std::sync::Mutex<(usize, Vec<usize>, bool)>);

impl Counter {
    fn seen(&self) -> (usize, Vec<usize>, bool) {
        self.0.lock().unwrap().clone()
    }
}

impl blt_core::Progress for Counter {
    fn start(&self, _task: &str, total: usize) {
        self.0.lock().unwrap().0 = total;
    }
    fn update(&self, done: usize) {
        self.0.lock().unwrap().1.push(done);
    }
    fn finish(&self) {
        self.0.lock().unwrap().2 = true;
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn case<'a>(expected: &'a Value, name: &str) -> &'a Value {
    expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn input_ids(expected: &Value) -> Vec<u32> {
    ints(&expected["input_ids"][0])
        .into_iter()
        .map(|x| x as u32)
        .collect()
}

/// Largest absolute difference between our `[1, T, 260]` logits and transformers' `[T][260]`.
fn max_logit_diff(ours: burn::tensor::Tensor<B, 3>, theirs: &Value) -> f32 {
    let ours: Vec<f32> = ours.into_data().to_vec().unwrap();
    let theirs: Vec<f32> = theirs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    max_diff(&ours, &theirs)
}

/// Largest absolute difference of two equally long slices; a NaN on either side counts as ∞
/// (`f32::max` alone would skip it, and a NaN model would pass).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// transformers' logits are rounded to 5 decimals and span about 9 units; f32 in a different
/// order explains a few 1e-6 more.
const TOLERANCE: f32 = 1e-4;

#[test]
fn the_config_translates_field_by_field() {
    let loaded = load_hf::<B>(&fixture(), &Default::default()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        (c.hidden_size, c.num_heads, c.intermediate_size),
        (32, 2, 64)
    );
    assert_eq!(
        (c.encoder_layers, c.decoder_layers, c.global_layers),
        (1, 2, 2)
    );
    assert_eq!((c.global_hidden_size, c.global_intermediate_size), (48, 96));
    assert_eq!(
        (c.ngram_vocab_size, c.ngram_sizes.clone()),
        (50, vec![3, 4, 5, 6, 7, 8])
    );
    assert_eq!((c.window_size, c.cross_attn_k), (16, 2));
    assert_eq!((c.entropy_hidden_size, c.entropy_context_size), (32, 24));
    assert_eq!((c.rope_theta, c.entropy_rope_theta), (500_000.0, 10_000.0));
    // transformers masks plainly causally, EOS or not.
    assert!(!c.document_mask);
    assert!(loaded.entropy_model.is_some());
}

#[test]
fn logits_match_transformers_for_given_patch_lengths() {
    let expected = expected();
    let device = Default::default();
    let loaded = load_hf::<B>(&fixture(), &device).unwrap();
    let want = case(&expected, "irregular");
    let lengths = ints(&want["patch_lengths"][0]);
    let row = RowPreparer::new(&loaded.config)
        .unwrap()
        .prepare_with_lengths(input_ids(&expected), &lengths)
        .unwrap();
    // The same patch of every byte for the encoder, and the same one-patch shift.
    let enc: Vec<usize> = row
        .patches
        .encoder_ids
        .iter()
        .map(|&x| x as usize)
        .collect();
    assert_eq!(enc, ints(&expected["debug"]["patch_ids"]["irregular"]));
    let dec: Vec<usize> = row
        .patches
        .decoder_ids
        .iter()
        .map(|&x| x as usize)
        .collect();
    assert_eq!(
        dec,
        ints(&expected["debug"]["decoder_patch_ids"]["irregular"])
    );
    let input = BltInput::<B>::from_rows(&loaded.config, &[row], &device).unwrap();
    let diff = max_logit_diff(loaded.model.forward(&input).logits, &want["logits"]);
    assert!(diff < TOLERANCE, "max |Δlogit| = {diff}");
}

#[test]
fn the_imported_patcher_gives_transformers_entropies_patches_and_logits() {
    let expected = expected();
    let device = Default::default();
    let loaded = load_hf::<B>(&fixture(), &device).unwrap();
    let ids = input_ids(&expected);
    let entropy = loaded.entropy_model.as_ref().unwrap();
    let h = entropy
        .entropies(&[&ids], loaded.config.entropy_resets(), &device)
        .unwrap()
        .remove(0);
    let want_h: Vec<f32> = expected["debug"]["patcher_entropies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let worst = max_diff(&h, &want_h);
    assert!(worst < 1e-4, "max |ΔH| = {worst}");

    let want = case(&expected, "patcher");
    let row = RowPreparer::new(&loaded.config)
        .unwrap()
        .prepare(ids, Some(&h))
        .unwrap();
    // transformers ends with a zero-length patch where our next slot opens its own.
    let mut theirs = ints(&want["resulting_patch_lengths"][0]);
    let mut ours = row.patches.lengths.clone();
    assert_eq!(theirs.pop(), Some(0));
    assert_eq!(ours.pop(), Some(1));
    assert_eq!(ours, theirs);
    let input = BltInput::<B>::from_rows(&loaded.config, &[row], &device).unwrap();
    let diff = max_logit_diff(loaded.model.forward(&input).logits, &want["logits"]);
    assert!(diff < TOLERANCE, "max |Δlogit| = {diff}");
}

#[test]
fn a_first_patch_longer_than_bos_is_refused_as_not_causal() {
    let expected = expected();
    let loaded = load_hf::<B>(&fixture(), &Default::default()).unwrap();
    let lengths = ints(&case(&expected, "stride4")["patch_lengths"][0]);
    let err = RowPreparer::new(&loaded.config)
        .unwrap()
        .prepare_with_lengths(input_ids(&expected), &lengths)
        .unwrap_err()
        .to_string();
    assert!(err.contains("BOS alone"), "{err}");
}

/// A copy of the fixture whose tensors and config pass through `edit`.
fn edited(
    dir: &Path,
    edit_tensors: impl FnOnce(&mut Vec<(String, Vec<f32>, Vec<usize>)>),
    edit_config: impl FnOnce(&mut Value),
) {
    let mut ckpt = Checkpoint::open(&fixture()).unwrap();
    let names: Vec<String> = ckpt.names().map(str::to_string).collect();
    let mut tensors: Vec<_> = names
        .into_iter()
        .map(|n| {
            let t = ckpt.take(&n).unwrap();
            (n, t.values, t.shape)
        })
        .collect();
    edit_tensors(&mut tensors);
    write_f32(&dir.join(SINGLE_FILE), &tensors).unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap())
            .unwrap();
    edit_config(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn import_error(dir: &Path) -> String {
    load_hf::<B>(dir, &Default::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn checkpoints_that_do_not_fit_are_refused_with_the_tensor_or_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    edited(
        d,
        |t| t.retain(|(n, ..)| n != "model.local_decoder.norm.weight"),
        |_| {},
    );
    let err = import_error(d);
    assert!(
        err.contains("no tensor model.local_decoder.norm.weight"),
        "{err}"
    );

    edited(
        d,
        |t| t.push(("model.extra.weight".into(), vec![0.0; 4], vec![2, 2])),
        |_| {},
    );
    let err = import_error(d);
    assert!(
        err.contains("does not read") && err.contains("model.extra.weight"),
        "{err}"
    );

    edited(
        d,
        |t| {
            let (_, values, shape) = t.iter_mut().find(|(n, ..)| n == "lm_head.weight").unwrap();
            values.truncate(259 * 32);
            *shape = vec![259, 32];
        },
        |_| {},
    );
    let err = import_error(d);
    assert!(err.contains("lm_head.weight has shape [259, 32]"), "{err}");

    edited(
        d,
        |_| {},
        |c| c["global_config"]["num_key_value_heads"] = 1.into(),
    );
    let err = import_error(d);
    assert!(err.contains("global_config.num_key_value_heads"), "{err}");

    edited(
        d,
        |_| {},
        |c| c["decoder_config"]["num_attention_heads"] = 4.into(),
    );
    let err = import_error(d);
    assert!(
        err.contains("num_attention_heads") && err.contains("differ"),
        "{err}"
    );

    edited(
        d,
        |_| {},
        |c| c["encoder_hash_byte_group_nb_functions"] = 3.into(),
    );
    let err = import_error(d);
    assert!(
        err.contains("encoder_hash_byte_group_nb_functions"),
        "{err}"
    );
}

#[test]
fn export_writes_back_the_checkpoint_it_imported() {
    let device = Default::default();
    // Both directions report every tensor, in order, then the end.
    let read = Counter::default();
    let loaded = load_hf_with::<B>(&fixture(), &device, &read).unwrap();
    let tensors = Checkpoint::open(&fixture()).unwrap().names().count();
    assert_eq!(read.seen(), (tensors, (1..=tensors).collect(), true));
    let dir = tempfile::tempdir().unwrap();
    let written = Counter::default();
    export_hf_with(
        dir.path(),
        &loaded.config,
        &loaded.model,
        loaded.entropy_model.as_ref(),
        &written,
    )
    .unwrap();
    assert_eq!(written.seen(), (tensors, (1..=tensors).collect(), true));
    // Every tensor comes back under its name, with its shape and its exact values.
    let mut original = Checkpoint::open(&fixture()).unwrap();
    let mut exported = Checkpoint::open(dir.path()).unwrap();
    let names: Vec<String> = original.names().map(str::to_string).collect();
    assert_eq!(names, exported.names().collect::<Vec<_>>());
    for name in &names {
        assert_eq!(
            original.take(name).unwrap(),
            exported.take(name).unwrap(),
            "{name}"
        );
    }
    // And the config translates back to the same one.
    let again = load_hf::<B>(dir.path(), &device).unwrap();
    assert_eq!(again.config, loaded.config);
}

#[test]
fn a_trained_model_round_trips_through_the_hugging_face_format() {
    let device = Default::default();
    let config = blt_model::BltConfig {
        patching: blt_model::PatchingKind::Fixed,
        ..blt_model::BltConfig::tiny()
    };
    let model = blt_model::Blt::<B>::new(&config, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_hf(dir.path(), &config, &model, None).unwrap();
    let again = load_hf::<B>(dir.path(), &device).unwrap();
    // Without an entropy model its fields do not travel; everything else does.
    let entropy_fields_aside = blt_model::BltConfig {
        entropy_model_layers: config.entropy_model_layers,
        entropy_context_size: config.entropy_context_size,
        entropy_hidden_size: config.entropy_hidden_size,
        entropy_num_heads: config.entropy_num_heads,
        entropy_intermediate_size: config.entropy_intermediate_size,
        ..again.config.clone()
    };
    assert_eq!(entropy_fields_aside, config);
    let text: &[u8] = b"In the beginning God created the heaven and the earth.";
    let before = BltInput::<B>::from_bytes(&config, &[text], None, &device).unwrap();
    let a: Vec<f32> = model.forward(&before).logits.into_data().to_vec().unwrap();
    let b: Vec<f32> = again
        .model
        .forward(&before)
        .logits
        .into_data()
        .to_vec()
        .unwrap();
    // The same weights; only their memory layout (and so the products' summation order) may
    // differ after the transposes.
    let diff = max_diff(&a, &b);
    assert!(diff < 1e-5, "max |Δlogit| = {diff}");

    // What transformers cannot compute is refused, not written.
    let mean_pooling = blt_model::BltConfig {
        pooling: blt_model::Pooling::Mean,
        ..config
    };
    let model = blt_model::Blt::<B>::new(&mean_pooling, &device).unwrap();
    let err = export_hf(&dir.path().join("x"), &mean_pooling, &model, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pooling"), "{err}");
}

/// A batch of two rows of different lengths (the second a prefix of the first, cut inside a
/// patch), checked through the `REF.json` path: right padding and the shorter row's last,
/// partial patch change nothing that transformers computes for those positions.
#[test]
fn reference_rows_of_different_lengths_match_as_one_batch() {
    let expected = expected();
    let device = Default::default();
    let loaded = load_hf::<B>(&fixture(), &device).unwrap();
    let want = case(&expected, "irregular");
    let ids = input_ids(&expected);
    let logits: Vec<Vec<f64>> = want["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    let reference = serde_json::json!({
        "input_ids": [ids, ids[..20]],
        "patch_lengths": [ints(&want["patch_lengths"][0]), [1, 3, 5, 2, 4, 1, 4]],
        "logits": [logits, logits[..20]],
    });
    let rows = parse_reference(&reference.to_string()).unwrap();
    assert_eq!(rows.len(), 2);
    let diffs = max_logit_diffs(
        &loaded.model,
        &loaded.config,
        loaded.entropy_model.as_ref(),
        &rows,
        &device,
    )
    .unwrap();
    assert!(diffs.iter().all(|&d| d < TOLERANCE), "{diffs:?}");

    // A reference that disagrees is seen, and a malformed one is refused with a reason.
    let mut wrong = rows.clone();
    wrong[1].logits[5 * 260 + 7] += 0.01;
    let diffs = max_logit_diffs(&loaded.model, &loaded.config, None, &wrong, &device).unwrap();
    assert!(
        diffs[0] < TOLERANCE && (diffs[1] - 0.01).abs() < 1e-3,
        "{diffs:?}"
    );
    let short = serde_json::json!({"input_ids": ids, "logits": logits[..3]});
    let err = parse_reference(&short.to_string()).unwrap_err().to_string();
    assert!(err.contains("positions of logits"), "{err}");
}

/// transformers' default `BltConfig` (BLT-1B's shapes, written by transformers 5.24 into
/// `tests/fixtures/hf-default-config.json`) translates, encoder and decoder SwiGLU sizes apart.
#[test]
fn the_blt_1b_shaped_default_config_translates() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-default-config.json"),
    )
    .unwrap();
    let c = blt_model::hf::HfBltConfig::parse(&text)
        .unwrap()
        .to_blt()
        .unwrap();
    assert_eq!((c.hidden_size, c.num_heads), (1024, 16));
    assert_eq!((c.intermediate_size, c.decoder_ffn()), (2730, 2816));
    assert_eq!(
        (c.encoder_layers, c.decoder_layers, c.global_layers),
        (1, 9, 25)
    );
    assert_eq!(
        (
            c.global_hidden_size,
            c.global_num_heads,
            c.global_intermediate_size
        ),
        (2048, 16, 5632)
    );
    assert_eq!(
        (c.ngram_vocab_size, c.window_size, c.cross_attn_k),
        (500_002, 512, 2)
    );
    assert_eq!((c.entropy_hidden_size, c.entropy_model_layers), (768, 14));
    assert_eq!(c.patching, blt_model::PatchingKind::Entropy);
}

/// An imported model with its imported patcher generates incrementally exactly what a full
/// recompute gives, as our own models do.
#[test]
fn incremental_generation_from_an_imported_model_equals_full_recompute() {
    use blt_model::{DecodeMode, GenerationConfig, Generator, SamplingConfig};
    let device = burn::backend::ndarray::NdArrayDevice::Cpu;
    let loaded = load_hf::<B>(&fixture(), &device).unwrap();
    let generator = Generator::new(
        &loaded.model,
        loaded.entropy_model.as_ref(),
        &loaded.config,
        device,
    )
    .unwrap();
    let greedy = GenerationConfig {
        max_bytes: 40,
        sampling: SamplingConfig::greedy(),
        ..Default::default()
    };
    let prompt = "Zoë bought café".as_bytes();
    let fast = generator
        .generate(prompt, &greedy, DecodeMode::Incremental, |_| true)
        .unwrap();
    let slow = generator
        .generate(prompt, &greedy, DecodeMode::FullRecompute, |_| true)
        .unwrap();
    assert_eq!(fast.bytes, slow.bytes);
    assert_eq!(fast.patches, slow.patches);
    assert!(!fast.bytes.is_empty());
}
