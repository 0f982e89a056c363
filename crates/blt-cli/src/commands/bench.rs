//! `blt-cli bench` (run through `cargo xtask bench`): throughput of training, forward and
//! generation on the `bench` config, peak memory and achieved FLOP/s, as JSON.

use std::{path::Path, time::Instant};

use anyhow::{Context, Result};
use blt_data::{BltBatcher, Row};
use blt_model::{
    Blt, BltConfig, DecodeMode, FlopsPerByte, ForwardStage, GenerationConfig, Generator,
    ParameterCounts, SamplingConfig, WeightPrecision, masked_cross_entropy,
};
use blt_train::{FusedAdamW, RunConfig};
use burn::{
    backend::Autodiff,
    module::AutodiffModule,
    optim::{GradientsParams, Optimizer},
    tensor::backend::Backend,
};
use serde_json::{Value, json};

use crate::{
    args::{BenchArgs, GlobalArgs},
    backend::{BackendKind, BackendTask, decoding_preference, dispatch},
};

/// Peak resident memory of this process (VmHWM), bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// Pseudo-random text rows of `len` ids (BOS + bytes), from the built-in corpus.
fn rows(count: usize, len: usize) -> Result<Vec<Row>> {
    let text = blt_data::BuiltinCorpus::Kjv.text()?;
    Ok((0..count)
        .map(|i| {
            let start = (i * 7919 * len) % (text.len() - len);
            Row::new(i, i, &text[start..start + len - 1], false)
        })
        .collect())
}

struct BenchTask {
    config: RunConfig,
    quick: bool,
}

fn timed<F: FnMut() -> Result<usize>>(warmup: usize, reps: usize, mut f: F) -> Result<(f64, f64)> {
    for _ in 0..warmup {
        f()?;
    }
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..reps {
        bytes += f()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((bytes as f64 / seconds, seconds))
}

/// Seconds of the timed training steps spent in the forward pass (batch and loss included), the
/// backward pass and the optimizer step.
#[derive(Debug, Default, serde::Serialize)]
struct Phases {
    forward: f64,
    backward: f64,
    optimizer: f64,
}

/// Times consecutive phases of one step; a no-op for warm-up steps.
struct PhaseClock {
    last: Option<Instant>,
}

impl PhaseClock {
    fn start<B: Backend>(device: &B::Device, timed: bool) -> Result<Self> {
        if timed {
            B::sync(device)?;
        }
        Ok(Self {
            last: timed.then(Instant::now),
        })
    }

    /// Adds the time since the previous lap to `into`, once the device has finished its work.
    fn lap<B: Backend>(&mut self, device: &B::Device, into: &mut f64) -> Result<()> {
        if let Some(last) = self.last {
            B::sync(device)?;
            let now = Instant::now();
            *into += (now - last).as_secs_f64();
            self.last = Some(now);
        }
        Ok(())
    }
}

/// Seconds of forward passes spent in each stage of the model (batch preparation excluded),
/// indexed like [`ForwardStage::ALL`].
#[derive(Debug, Default)]
struct Stages([f64; ForwardStage::ALL.len()]);

impl Stages {
    /// Runs `model`'s forward pass on `input`, adding each stage's time.
    fn time<B: Backend>(
        &mut self,
        model: &Blt<B>,
        input: &blt_model::BltInput<B>,
        device: &B::Device,
    ) -> Result<()> {
        B::sync(device)?;
        let mut last = Instant::now();
        let mut failed = None;
        let _ = model.forward_observed(input, |stage| {
            if let Err(err) = B::sync(device) {
                failed.get_or_insert(err);
            }
            let now = Instant::now();
            self.0[stage as usize] += (now - last).as_secs_f64();
            last = now;
        });
        failed.map_or(Ok(()), |err| Err(err.into()))
    }

    fn json(&self) -> Value {
        ForwardStage::ALL
            .iter()
            .map(|&stage| (stage.name().to_string(), json!(self.0[stage as usize])))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

impl BackendTask for BenchTask {
    type Output = Value;

    #[cfg(feature = "flex")]
    fn run_flex(self, _device: burn::backend::flex::FlexDevice) -> Result<Self::Output> {
        crate::backend::no_training_on_flex()
    }

    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<Value> {
        let config: &BltConfig = &self.config.model;
        let t = &self.config.training;
        let (warmup, reps) = if self.quick { (1, 2) } else { (2, 8) };
        B::seed(&device, 0);
        let batch_rows = rows(t.batch_size, t.max_sequence_length)?;
        let batcher = BltBatcher::new(config, None)?;
        let mean_patch = {
            let b = batcher.try_batch::<B>(&batch_rows, &device)?;
            b.input.mean_patch_len()
        };
        let flops = FlopsPerByte::estimate(config, mean_patch, t.max_sequence_length);

        // Training: forward + backward + AdamW.
        type AB<B> = Autodiff<B>;
        let mut model = Blt::<AB<B>>::new(config, &device)?;
        let params = ParameterCounts::of(&model, None);
        // The optimizer training uses, with the peer's settings (torch's `AdamW` defaults).
        let mut optim = FusedAdamW::new(0.9, 0.999, 1e-8, 0.01).init::<AB<B>, Blt<AB<B>>>();
        // Seconds spent in each phase of the timed steps (the device is synced at each boundary,
        // so asynchronous backends are charged to the phase that queued the work).
        let mut phases = Phases::default();
        let mut step = 0;
        let (train_bps, train_s) = timed(warmup, reps, || {
            let mut clock = PhaseClock::start::<AB<B>>(&device, step >= warmup)?;
            step += 1;
            let batch = batcher.try_batch::<AB<B>>(&batch_rows, &device)?;
            let n = batch.num_targets;
            let logits = model.forward(&batch.input).logits;
            let loss =
                masked_cross_entropy(logits, batch.targets, batch.target_mask, n).mean_loss();
            clock.lap::<AB<B>>(&device, &mut phases.forward)?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            clock.lap::<AB<B>>(&device, &mut phases.backward)?;
            model = optim.step(1e-4, model.clone(), grads);
            clock.lap::<AB<B>>(&device, &mut phases.optimizer)?;
            Ok(n)
        })?;

        // Forward only (inference backend).
        let inference = model.valid();
        let (forward_bps, forward_s) = timed(warmup, reps, || {
            let batch = batcher.try_batch::<B>(&batch_rows, &device)?;
            let logits = inference.forward(&batch.input).logits;
            let _ = logits.into_data();
            Ok(batch.num_targets)
        })?;
        // The same forward pass stage by stage, for the breakdown in docs/performance.md.
        let mut stages = Stages::default();
        let batch = batcher.try_batch::<B>(&batch_rows, &device)?;
        for _ in 0..reps {
            stages.time::<B>(&inference, &batch.input, &device)?;
        }

        Ok(json!({
            "machine": machine(),
            "backend": name,
            "quick": self.quick,
            "config": { "model": config, "batch_size": t.batch_size, "sequence_length": t.max_sequence_length },
            "parameters": params,
            "mean_patch_length": mean_patch,
            "flops_per_byte": { "forward": flops.forward(), "training": flops.training() },
            "training": {
                "bytes_per_s": train_bps,
                "seconds": train_s,
                "steps": reps,
                "gflops_per_s": train_bps * flops.training() / 1e9,
                "phase_seconds": phases,
            },
            "forward": {
                "bytes_per_s": forward_bps,
                "seconds": forward_s,
                "gflops_per_s": forward_bps * flops.forward() / 1e9,
                "stage_seconds": stages.json(),
            },
        }))
    }
}

/// Generation at batch 1, incremental and full recompute, and batched incremental generation,
/// on the backend `auto` picks for generation (see `backend::decoding_preference`).
struct GenerationBench {
    config: BltConfig,
    quick: bool,
}

impl BackendTask for GenerationBench {
    type Output = Value;
    fn cpu_preference(&self) -> [BackendKind; 2] {
        decoding_preference(&self.config)
    }

    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<Value> {
        let config = &self.config;
        B::seed(&device, 0);
        // Generation, batch 1: incremental and full recompute.
        let model = Blt::<B>::new(config, &device)?;
        let generator = Generator::new(&model, None, config, device.clone())?;
        let text = blt_data::BuiltinCorpus::Kjv.text()?;
        let mut generation = Vec::new();
        let cases: &[(usize, usize, usize)] = if self.quick {
            &[(64, 32, 4), (1024, 16, 2)]
        } else {
            &[(64, 128, 32), (64, 256, 16), (1024, 256, 8)]
        };
        for &(prompt_len, new_bytes, full_bytes) in cases {
            let prompt = &text[1000..1000 + prompt_len];
            let rate = |mode: DecodeMode, max_bytes: usize| -> Result<(f64, usize)> {
                let cfg = GenerationConfig {
                    max_bytes,
                    sampling: SamplingConfig::greedy(),
                    stop: None,
                    context_shift: true,
                };
                // Decode speed only: the clock starts at the first generated byte, after the
                // prompt has been consumed (its prefill is a different workload).
                let mut first: Option<Instant> = None;
                let out = generator.generate(prompt, &cfg, mode, |_| {
                    first.get_or_insert_with(Instant::now);
                    true
                })?;
                let decoded = out.bytes.len().saturating_sub(1) as f64;
                let seconds = first.map_or(f64::INFINITY, |t| t.elapsed().as_secs_f64());
                Ok((decoded / seconds, out.global_steps))
            };
            let (host, host_global_steps) =
                rate(DecodeMode::Host(WeightPrecision::F32), new_bytes)?;
            let (host_bf16, _) = rate(DecodeMode::Host(WeightPrecision::Bf16), new_bytes)?;
            let (host_int8, _) = rate(DecodeMode::Host(WeightPrecision::Int8), new_bytes)?;
            let (incremental, global_steps) = rate(DecodeMode::Incremental, new_bytes)?;
            let (full, _) = rate(DecodeMode::FullRecompute, full_bytes)?;
            generation.push(json!({
                "prompt_bytes": prompt_len,
                "new_bytes": new_bytes,
                "host_bytes_per_s": host,
                "host_bf16_bytes_per_s": host_bf16,
                "host_int8_bytes_per_s": host_int8,
                "int8_over_bf16": host_int8 / host_bf16,
                "host_global_steps": host_global_steps,
                "incremental_bytes_per_s": incremental,
                "incremental_global_steps": global_steps,
                "full_recompute_bytes_per_s": full,
                "timing": "decode only: first to last generated byte, prompt prefill excluded",
                "full_recompute_new_bytes_measured": full_bytes,
                "speedup": incremental / full,
            }));
        }
        let batched = batched_rates(&generator, &text[1000..], self.quick)?;
        Ok(json!({ "backend": name, "cases": generation, "batched": batched }))
    }
}

/// Incremental generation of several 64-byte prompts at once (different prompts, greedy):
/// total bytes/s over all rows, decode only, beside batch 1 measured the same way.
fn batched_rates<B: Backend>(
    generator: &Generator<'_, B>,
    text: &[u8],
    quick: bool,
) -> Result<Value> {
    let (batches, new_bytes): (&[usize], usize) = if quick {
        (&[1, 4], 16)
    } else {
        (&[1, 4, 16], 128)
    };
    let cfg = GenerationConfig {
        max_bytes: new_bytes,
        sampling: SamplingConfig::greedy(),
        stop: None,
        context_shift: true,
    };
    let mut cases = Vec::new();
    let mut single = None;
    for &batch in batches {
        let prompts: Vec<&[u8]> = (0..batch).map(|r| &text[r * 64..(r + 1) * 64]).collect();
        let mut first: Option<Instant> = None;
        let out = generator.generate_batch(&prompts, &cfg, |_, _| {
            first.get_or_insert_with(Instant::now);
            true
        })?;
        // The first step's bytes arrive as the clock starts; count the rest.
        let decoded = out
            .iter()
            .map(|o| o.bytes.len().saturating_sub(1))
            .sum::<usize>() as f64;
        let seconds = first.map_or(f64::INFINITY, |t| t.elapsed().as_secs_f64());
        let rate = decoded / seconds;
        let single_rate = *single.get_or_insert(rate);
        cases.push(json!({
            "batch": batch,
            "prompt_bytes": 64,
            "new_bytes": new_bytes,
            "bytes_per_s": rate,
            "speedup_over_batch_1": rate / single_rate,
        }));
    }
    Ok(Value::Array(cases))
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: BenchArgs) -> Result<()> {
    if let Some(megabytes) = args.corpus_mb {
        anyhow::ensure!(megabytes > 0, "--corpus-mb must be at least 1");
        let mut report = super::bench_memory::corpus_memory(megabytes)?;
        report["machine"] = machine();
        return write_report(&report, args.out.as_deref());
    }
    if args.shapes == crate::args::BenchShapes::Blt1b {
        anyhow::ensure!(
            args.ngram_rows > 0 && args.new_bytes > 1,
            "--ngram-rows must be at least 1 and --new-bytes at least 2"
        );
        let mut report = dispatch(
            &global.backend,
            super::bench_1b::Blt1bBench {
                ngram_rows: args.ngram_rows,
                new_bytes: args.new_bytes,
                quick: args.quick,
            },
        )?;
        report["machine"] = machine();
        report["peak_rss_bytes"] = json!(peak_rss());
        return write_report(&report, args.out.as_deref());
    }
    // The error names the file already.
    let config = RunConfig::load(&args.config)?;
    // Where the JSON goes is checked before minutes of measuring, not after.
    if let Some(parent) = args.out.as_deref().and_then(Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot write --out: creating {}", parent.display()))?;
    }
    let model = config.model.clone();
    let mut report = dispatch(
        &global.backend,
        BenchTask {
            config,
            quick: args.quick,
        },
    )?;
    if !args.skip_generation {
        report["generation"] = dispatch(
            &global.backend,
            GenerationBench {
                config: model,
                quick: args.quick,
            },
        )?;
    }
    report["peak_rss_bytes"] = json!(peak_rss());
    write_report(&report, args.out.as_deref())
}

/// Prints the JSON and writes it to `out`.
fn write_report(report: &Value, out: Option<&Path>) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    println!("{text}");
    if let Some(out) = out {
        blt_core::fs::write_atomically(out, text.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
