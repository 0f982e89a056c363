//! Where does a forward pass spend its time? Times each stage of [`Blt::forward`] on the bench
//! preset (batch 4 × 1024 bytes, NdArray), then a full forward + backward.
//!
//! `cargo run -p blt-model --example profile --features examples [--release] [-- REPS]`
//!
//! NdArray executes eagerly, so a stage's wall time is the cost of its ops. This is a tool for
//! finding hot spots; the figures to quote come from `cargo xtask bench`.

#![allow(clippy::print_stdout)]

use blt_model::{
    Blt, BltConfig, BltInput, DecodeMode, GenerationConfig, Generator, SamplingConfig,
    masked_cross_entropy,
};
use burn::{
    backend::{Autodiff, Flex, NdArray},
    tensor::{Tensor, backend::Backend},
};

/// Process CPU seconds (all threads): robust to other load on the machine, unlike wall time.
fn cpu() -> f64 {
    if std::env::var_os("WALL").is_some() {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64();
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn sync<Bk: Backend, const D: usize>(t: &Tensor<Bk, D>) {
    // A reduction, not `into_data`: converting a whole tensor to host data costs more than
    // some of the stages being timed.
    let _ = t.clone().sum().into_data();
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mode = std::env::args().nth(3).unwrap_or_default();
    if mode == "gemv" {
        return gemv();
    }
    let decode = match mode.as_str() {
        "gen" => Some(DecodeMode::Incremental),
        "host" => Some(DecodeMode::Host(blt_model::WeightPrecision::F32)),
        "bf16" => Some(DecodeMode::Host(blt_model::WeightPrecision::Bf16)),
        _ => None,
    };
    match (std::env::args().nth(2).as_deref(), decode) {
        (Some("flex"), None) => run::<Flex>(reps, &mode),
        (Some("flex"), Some(decode)) => generation::<Flex>(reps, decode),
        (_, None) => run::<NdArray>(reps, &mode),
        (_, Some(decode)) => generation::<NdArray>(reps, decode),
    }
}

/// Incremental generation at batch 1 (64-byte prompt), decode bytes per wall second; `gen` for
/// Burn's cached path, `host` and `bf16` for the host decoder.
fn generation<B: Backend>(reps: usize, decode: DecodeMode) {
    let device = B::Device::default();
    let config = BltConfig::bench();
    let model = Blt::<B>::new(&config, &device).expect("bench preset is valid");
    let generator = Generator::new(&model, None, &config, device).expect("generator");
    let prompt: Vec<u8> = (0..64).map(|i| b"abcdefgh ij"[i % 11]).collect();
    let cfg = GenerationConfig {
        max_bytes: 128,
        sampling: SamplingConfig::greedy(),
        stop: None,
        context_shift: true,
    };
    for _ in 0..reps {
        let mut first = None;
        let out = generator
            .generate(&prompt, &cfg, decode, |_| {
                first.get_or_insert_with(std::time::Instant::now);
                true
            })
            .expect("generate");
        let secs = first.map_or(f64::INFINITY, |t| t.elapsed().as_secs_f64());
        println!(
            "{decode:?}: {:.1} bytes/s",
            (out.bytes.len() - 1) as f64 / secs
        );
    }
}

/// Host products of one row with the bench shapes' weights, f32 and bf16: GB of weights read
/// per second (the weights, 23 MB in all, cycle so that they come from memory, not cache).
fn gemv() {
    use blt_core::host::{HostLinear, WeightPrecision};
    let device = Default::default();
    for precision in [WeightPrecision::F32, WeightPrecision::Bf16] {
        for (d_in, d_out) in [(256, 768), (512, 2048), (2048, 512)] {
            let layers: Vec<HostLinear> = (0..48)
                .map(|_| {
                    let layer = burn::nn::LinearConfig::new(d_in, d_out)
                        .with_bias(false)
                        .init::<NdArray>(&device);
                    HostLinear::from_linear(&layer, precision)
                })
                .collect();
            let x = vec![0.5f32; d_in];
            let reps = 400;
            let t = std::time::Instant::now();
            for r in 0..reps {
                std::hint::black_box(layers[r % layers.len()].apply(&x));
            }
            let secs = t.elapsed().as_secs_f64() / reps as f64;
            let bytes = (d_in
                * d_out
                * if precision == WeightPrecision::F32 {
                    4
                } else {
                    2
                }) as f64;
            println!(
                "{precision:?} [{d_in}, {d_out}]: {:.1} µs, {:.1} GB/s",
                secs * 1e6,
                bytes / secs / 1e9
            );
        }
    }
}

fn run<B: Backend>(reps: usize, mode: &str) {
    let device = B::Device::default();
    if mode == "mm" {
        let a = Tensor::<B, 3>::ones([4, 256, 512], &device);
        let w = Tensor::<B, 3>::ones([1, 512, 2048], &device);
        let a2 = Tensor::<B, 2>::ones([1024, 512], &device);
        let w2 = Tensor::<B, 2>::ones([512, 2048], &device);
        for _ in 0..2 {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                sync(&a.clone().matmul(w.clone()));
            }
            let s3 = t.elapsed().as_secs_f64() / 10.0;
            let t = std::time::Instant::now();
            for _ in 0..10 {
                sync(&a2.clone().matmul(w2.clone()));
            }
            let s2 = t.elapsed().as_secs_f64() / 10.0;
            let flop = 2.0 * 1024.0 * 512.0 * 2048.0;
            println!(
                "matmul 3d-broadcast {:.1} GFLOP/s, 2d {:.1} GFLOP/s",
                flop / s3 / 1e9,
                flop / s2 / 1e9
            );
        }
    }
    let config = BltConfig::bench();
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|r| {
            (0..1024)
                .map(|i| b"abcdefghijklmnopqrstuvwxyz ,."[(i * 7 + r * 13) % 29])
                .collect()
        })
        .collect();
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let model = Blt::<B>::new(&config, &device).expect("bench preset is valid");
    let mut totals = [0.0f64; 7];
    let names = ["input", "embed", "enc", "pool", "global", "dec", "total"];
    for rep in 0..=reps {
        let t0 = cpu();
        let input = BltInput::<B>::from_bytes(&config, &refs, None, &device).expect("input");
        let t1 = cpu();
        let h = model
            .embedding
            .forward(input.ids.clone(), input.ngram_ids.clone());
        sync(&h);
        let t2 = cpu();
        let bytes = model.encoder.encode_bytes(h, input.local_mask.clone());
        sync(&bytes);
        let t3 = cpu();
        let patches = model.encoder.pool(bytes.clone(), &input.pooling);
        sync(&patches);
        let t4 = cpu();
        let global = model.global.forward(patches, input.global_mask.clone());
        sync(&global);
        let t5 = cpu();
        let slots = model.decoder.patch_slots(global);
        let logits = model.decoder.forward(
            bytes,
            slots,
            input.decoder_patch_ids.clone(),
            input.local_mask.clone(),
        );
        sync(&logits);
        let t6 = cpu();
        if rep == 0 {
            continue; // warm-up
        }
        let ts = [t0, t1, t2, t3, t4, t5, t6];
        for i in 0..6 {
            totals[i] += ts[i + 1] - ts[i];
        }
        totals[6] += t6 - t0;
    }
    for (name, t) in names.iter().zip(totals) {
        println!("forward {name:>7}: {:8.1} ms", 1e3 * t / reps as f64);
    }
    println!("forward bytes/s: {:.0}", 4096.0 * reps as f64 / totals[6]);

    if mode == "fwd" {
        return;
    }
    let model = Blt::<Autodiff<B>>::new(&config, &device).expect("bench preset is valid");
    let mut fwd = 0.0;
    let mut bwd = 0.0;
    for rep in 0..=reps {
        let t0 = cpu();
        let input =
            BltInput::<Autodiff<B>>::from_bytes(&config, &refs, None, &device).expect("input");
        let logits = model.forward(&input).logits;
        let [b, t, _] = logits.dims();
        let targets = input.ids.clone();
        let mask = input.ids.clone().greater_elem(0);
        let loss = masked_cross_entropy(logits, targets, mask, b * t).mean_loss();
        sync(&loss);
        let t1 = cpu();
        let _grads = loss.backward();
        let t2 = cpu();
        if rep > 0 {
            fwd += t1 - t0;
            bwd += t2 - t1;
        }
    }
    println!(
        "autodiff forward {:.1} ms, backward {:.1} ms, bytes/s {:.0}",
        1e3 * fwd / reps as f64,
        1e3 * bwd / reps as f64,
        4096.0 * reps as f64 / (fwd + bwd)
    );
}
