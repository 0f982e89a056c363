//! GFLOP/s (and GB/s of weights read) of [`HostLinear`] products at BLT-1B's global shapes:
//! one row (a decode step) and many (a prefill), in f32, bf16 and int8.
//!
//! `cargo run --release -p blt-core --features examples --example host_products [ROWS]`

#![allow(clippy::print_stdout)]

use std::time::Instant;

use blt_core::host::{HostLinear, WeightPrecision};

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(256, |a| a.parse().expect("ROWS: a number"));
    let (d_in, d_out) = (2048, 5632);
    let weight: Vec<f32> = (0..d_in * d_out)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let x: Vec<f32> = (0..rows * d_in)
        .map(|i| ((i * 31) % 97) as f32 / 97.0)
        .collect();
    for precision in [
        WeightPrecision::F32,
        WeightPrecision::Bf16,
        WeightPrecision::Int8,
    ] {
        let layer = HostLinear::from_values(&weight, None, [d_in, d_out], precision);
        for (label, n) in [("one row", 1), ("many rows", rows)] {
            let input = &x[..n * d_in];
            let reps = if n == 1 { 50 } else { 3 };
            std::hint::black_box(layer.apply_rows(input));
            let started = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(layer.apply_rows(input));
            }
            let seconds = started.elapsed().as_secs_f64() / f64::from(reps);
            let flops = 2.0 * (n * d_in * d_out) as f64;
            println!(
                "{precision:?} {label:>9} ({n:>4}): {:7.1} GFLOP/s, {:6.1} GB/s of weights, {:.2} ms",
                flops / seconds / 1e9,
                layer.bytes() as f64 / seconds / 1e9,
                seconds * 1e3
            );
        }
    }
}
