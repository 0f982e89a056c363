//! The tiny preset (`configs/tiny.toml`) trained end to end on Burn's wgpu backend, on Vulkan's
//! CPU adapter (Mesa's lavapipe), then generation from the saved model on wgpu: the code path
//! of `cargo xtask train --backend wgpu` and `blt-cli --backend wgpu generate`, shortened to
//! 10 entropy-model steps and 10 BLT steps on 12 chapters (each new shape compiles its kernels
//! on the CPU adapter). The other modules check the same kernels against ndarray, op by op.

use std::path::Path;

use blt_model::{DecodeMode, GenerationConfig, Generator, SamplingConfig, StopReason};
use blt_train::{Dashboard, RunConfig, TrainOptions};
use burn::backend::{Autodiff, Wgpu};
use burn::train::Interrupter;

use super::backends::{exclusive, gpu};

#[test]
fn tiny_preset_trains_and_generates_on_wgpu() {
    let _device_lock = exclusive();
    let device = gpu();
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
    let mut config = RunConfig::load(&preset).expect("configs/tiny.toml loads");
    config.training.entropy_steps = 10;
    config.training.max_steps = 10;
    // 12 of the preset's 40 chapters: the entropy cache and validation batches bring fewer
    // new shapes, each of which compiles kernels on the CPU adapter.
    config.data.max_documents = 12;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let options = TrainOptions {
        dashboard: Dashboard::Quiet,
        interrupter: Interrupter::new(),
        backend: "wgpu".into(),
        ..TrainOptions::default()
    };
    let summary = blt_train::train::<Autodiff<Wgpu>>(config, device.clone(), &run, options)
        .expect("the tiny preset trains on wgpu");
    let valid = summary
        .blt_stage
        .epochs
        .last()
        .and_then(|e| e.valid_loss)
        .expect("a validated epoch");
    eprintln!(
        "tiny preset on wgpu: {:.0} s, valid loss {valid:.3} nats/byte",
        summary.wall_seconds
    );
    assert_eq!(summary.entropy_stage.as_ref().map(|s| s.steps), Some(10));
    assert_eq!(summary.blt_stage.steps, 10);
    // Ten steps from a uniform guess over 260 ids (ln 260 ≈ 5.56 nats) must have learnt the
    // byte frequencies at least: a NaN or a wrong kernel leaves the loss at or above the guess.
    assert!(valid.is_finite() && valid < 5.0, "valid loss {valid}");

    let loaded = blt_model::load_model::<Wgpu>(&run, &device).expect("the model loads on wgpu");
    let generator = Generator::new(
        &loaded.model,
        loaded.entropy_model.as_ref(),
        &loaded.config,
        device,
    )
    .unwrap();
    let generation = GenerationConfig {
        max_bytes: 48,
        sampling: SamplingConfig {
            ignore_eos: true,
            seed: 1,
            ..SamplingConfig::default()
        },
        ..GenerationConfig::default()
    };
    let mut streamed = Vec::new();
    let out = generator
        .generate(
            b"In the beginning",
            &generation,
            DecodeMode::Incremental,
            |b| {
                streamed.push(b.byte);
                true
            },
        )
        .expect("generation on wgpu");
    eprintln!(
        "generated on wgpu: {:?}",
        String::from_utf8_lossy(&out.bytes)
    );
    assert_eq!(out.stop, StopReason::MaxBytes);
    assert_eq!(out.bytes.len(), 48);
    assert_eq!(streamed, out.bytes);
    // Incremental decoding runs the global model once per patch, never more.
    assert!(out.global_steps <= out.patches, "{out:?}");
}
