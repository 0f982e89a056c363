//! Prints parameter counts and estimated FLOPs per byte of every preset (no weights are drawn:
//! parameters are initialised lazily and counted from their shapes).
//!
//! `cargo run -p blt-model --example presets --features examples`
#![allow(clippy::print_stdout)]

use blt_model::{Blt, BltConfig, EntropyModelConfig, FlopsPerByte, ParameterCounts};
use burn::backend::NdArray;

fn main() {
    let device = Default::default();
    println!(
        "| preset | embeddings | encoder | global | decoder | total | entropy model | fwd MFLOP/byte (p=4.5, T=1024) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in ["tiny", "small", "bench", "seed-basic", "seed-advanced"] {
        let config = BltConfig::preset(name).expect("preset");
        let model = Blt::<NdArray>::new(&config, &device).expect("valid preset");
        let entropy = EntropyModelConfig::from_blt(&config).init::<NdArray>(&device);
        let counts = ParameterCounts::of(&model, Some(&entropy));
        let flops = FlopsPerByte::estimate(&config, 4.5, 1024);
        let m = |n: usize| format!("{:.2} M", n as f64 / 1e6);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.2} |",
            m(counts.embeddings),
            m(counts.encoder),
            m(counts.global),
            m(counts.decoder),
            m(counts.total()),
            m(counts.entropy_model),
            flops.forward() / 1e6
        );
    }
}
