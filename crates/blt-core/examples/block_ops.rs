//! Times the ops of one pre-norm block at the global model's bench shapes (`[4, 256, 512]`, 4
//! heads, FFN 2048; NdArray, inference), each alone, with its GFLOP/s where it multiplies.
//!
//! `cargo run --release -p blt-core --features ndarray,examples --example block_ops`
//!
//! A tool for finding hot spots: it runs under the system allocator, not `blt-cli`'s, so fresh
//! buffers cost more here. Figures to quote come from `cargo xtask bench`.
#![allow(clippy::print_stdout)]
use std::time::Instant;

use blt_core::{TransformerBlockConfig, kernels};
use burn::{
    backend::NdArray,
    tensor::{Bool, Distribution, Tensor, TensorData},
};

type B = NdArray;

fn time<T>(name: &str, reps: usize, flops: f64, mut f: impl FnMut() -> T) {
    let _ = f();
    let t = Instant::now();
    for _ in 0..reps {
        let _ = f();
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{name:>12}: {:7.2} ms  {:6.1} GFLOP/s",
        s * 1e3,
        flops / s / 1e9
    );
}

fn main() {
    let device = Default::default();
    let (b, t, d, h) = (4, 256, 512, 4);
    let block = TransformerBlockConfig::new(d, h).init::<B>(&device);
    let x = Tensor::<B, 3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &device);
    let mask: Vec<bool> = (0..b * t * t).map(|i| (i % t) > (i / t) % t).collect();
    let mask = Tensor::<B, 3, Bool>::from_data(TensorData::new(mask, [b, t, t]), &device);
    let rows = (b * t) as f64;
    let reps = 20;
    time(
        "block",
        reps,
        rows * (2.0 * d as f64 * (4 * d + 3 * 2048) as f64),
        || block.forward(x.clone(), mask.clone()),
    );
    time("norm", reps, 0.0, || {
        block.attention_norm.forward(x.clone())
    });
    time("attention", reps, 0.0, || {
        block.attention.forward(x.clone(), mask.clone())
    });
    let a = &block.attention;
    time("qkv", reps, rows * 2.0 * (d * 3 * d) as f64, || {
        kernels::linear(&a.qkv, x.clone())
    });
    let qkv = kernels::linear(&a.qkv, x.clone());
    time("rope", reps, 0.0, || {
        a.rope.apply_flat(qkv.clone(), 2 * d, 0)
    });
    time("split", reps, 0.0, || {
        let q = qkv.clone().reshape([b, t, 3 * h, d / h]).swap_dims(1, 2);
        let q0 = q.clone().narrow(1, 0, h);
        q0.sum()
    });
    time("out", reps, rows * 2.0 * (d * d) as f64, || {
        kernels::linear(&a.output, x.clone())
    });
    let f = &block.ffn;
    time("ffn", reps, rows * 2.0 * (3 * d * 2048) as f64, || {
        f.forward(x.clone())
    });
    time("gate", reps, rows * 2.0 * (d * 2048) as f64, || {
        kernels::linear(&f.gate, x.clone())
    });
    let g = kernels::linear(&f.gate, x.clone());
    let u = kernels::linear(&f.up, x.clone());
    time("swiglu", reps, 0.0, || {
        kernels::swiglu(g.clone(), u.clone())
    });
    let s = kernels::swiglu(g.clone(), u.clone());
    time("down", reps, rows * 2.0 * (d * 2048) as f64, || {
        kernels::linear(&f.down, s.clone())
    });
    time("add", reps, 0.0, || x.clone() + x.clone());
}
