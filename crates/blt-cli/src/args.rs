//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::{backend::BackendChoice, decoder::DecoderChoice};

/// Byte Latent Transformer: a tokenizer-free language model on raw bytes.
#[derive(Debug, Parser)]
#[command(name = "blt-cli", version, about, long_about = None)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Compute backend (auto: CUDA when a GPU is present and compiled in, else the faster CPU
    /// backend for the command). Training does not run on flex.
    #[arg(long, global = true, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Random seed (sampling, initialisation, data order); overrides the config.
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a BLT (and its entropy model) into a run directory.
    #[command(
        after_help = "Examples:\n  blt-cli train --config configs/tiny.toml --run-dir runs/tiny\n  blt-cli train --config configs/small.toml --data corpus/ --run-dir runs/mine\n  blt-cli train --run-dir runs/tiny --resume"
    )]
    Train(TrainArgs),
    /// Generate text from a prompt, streamed as it is produced.
    #[command(
        after_help = "Examples:\n  blt-cli generate --model runs/tiny --prompt 'In the beginning'\n  echo 'And God said' | blt-cli generate --model runs/tiny --prompt - --top-p 0.9\n  blt-cli generate --model runs/tiny --interactive"
    )]
    Generate(GenerateArgs),
    /// Evaluate bits per byte, loss, accuracy and more on a data source.
    #[command(
        after_help = "Examples:\n  blt-cli eval --model runs/tiny --data builtin:kjv\n  blt-cli eval --model runs/tiny --data notes.txt --json"
    )]
    Eval(EvalArgs),
    /// Show per-byte entropies and patch cuts of a text (and plot them).
    #[command(
        after_help = "Examples:\n  blt-cli entropy --model runs/tiny --text 'In the beginning God created'\n  blt-cli entropy --model runs/tiny --text 'Hello' --plot entropy.svg\n  blt-cli entropy --model runs/tiny --text 'Hello' --plot entropy.png"
    )]
    Entropy(EntropyArgs),
    /// Show how a text is cut into patches.
    #[command(
        after_help = "Examples:\n  blt-cli patch --scheme space --text 'Hello big world'\n  blt-cli patch --scheme fixed --stride 4 --text 'Hello big world'\n  blt-cli patch --scheme entropy --model runs/tiny --text 'Hello'"
    )]
    Patch(PatchArgs),
    /// Find the entropy threshold that gives a target mean patch length.
    #[command(
        after_help = "Examples:\n  blt-cli calibrate --model runs/tiny --data builtin:kjv --target-patch-size 4.5\n  blt-cli calibrate --model runs/tiny --data builtin:kjv --target-patch-size 6 --write"
    )]
    Calibrate(CalibrateArgs),
    /// Show a model's config, parameter counts, FLOPs per byte and training summary.
    #[command(
        after_help = "Examples:\n  blt-cli info --model runs/tiny\n  blt-cli info --model runs/tiny --json"
    )]
    Info(InfoArgs),
    /// Convert a Hugging Face BLT checkpoint (config.json + safetensors) into a model directory.
    #[command(
        after_help = "Examples:\n  blt-cli import-hf ~/models/blt-1b --out models/blt-1b\n  blt-cli generate --model models/blt-1b --prompt 'Once upon a time'"
    )]
    ImportHf(ImportHfArgs),
    /// Check a model against reference logits (REF.json) and print the largest difference.
    #[command(
        after_help = "Examples:\n  blt-cli parity --model models/blt-1b --reference REF.json\n  blt-cli parity --model models/blt-1b --reference REF.json --atol 1e-3 --json\n\nREF.json holds input_ids (ids with BOS, or a list of such lists), patch_lengths (the same\nnesting; optional) and logits ([T][260] or [B][T][260]). Exits non-zero above --atol."
    )]
    Parity(ParityArgs),
    /// Write a model directory as a Hugging Face BLT (config.json + model.safetensors).
    #[command(
        after_help = "Examples:\n  blt-cli export-hf runs/tiny --out exported/tiny\n  python -c \"from transformers import BltForCausalLM; BltForCausalLM.from_pretrained('exported/tiny')\""
    )]
    ExportHf(ExportHfArgs),
    /// Measure throughput (used by `cargo xtask bench`).
    #[command(hide = true)]
    Bench(BenchArgs),
}

/// `import-hf` options.
#[derive(Debug, Args)]
pub struct ImportHfArgs {
    /// Directory with the checkpoint's `config.json` and `model.safetensors` (or shards with
    /// `model.safetensors.index.json`).
    #[arg(value_name = "SRC_DIR")]
    pub from: PathBuf,
    /// New model directory to write (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

/// `export-hf` options.
#[derive(Debug, Args)]
pub struct ExportHfArgs {
    /// Model or run directory.
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,
    /// New directory to write (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

/// `parity` options.
#[derive(Debug, Args)]
pub struct ParityArgs {
    /// Model or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Reference logits (REF.json).
    #[arg(long)]
    pub reference: PathBuf,
    /// Largest absolute logit difference that passes.
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run config with the benchmark shapes.
    #[arg(long, default_value = "configs/bench.toml")]
    pub config: PathBuf,
    /// Smoke mode: a few steps only.
    #[arg(long)]
    pub quick: bool,
    /// Training and forward only (generation takes minutes in the full bench).
    #[arg(long)]
    pub skip_generation: bool,
    /// Also write the JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Instead of the model benchmarks, measure the data pipeline's memory per corpus byte on
    /// a synthetic corpus of this many MB (dataset, split, batches and the entropy cache; it
    /// needs about five times that much free disk for the corpus and the cache file).
    #[arg(long, value_name = "MB")]
    pub corpus_mb: Option<usize>,
    /// Which shapes: the `--config` model (training, forward, generation), or BLT-1B's with
    /// random weights (generation on every decoder, prefill, the bandwidth bound).
    #[arg(long, value_enum, default_value_t = BenchShapes::Config)]
    pub shapes: BenchShapes,
    /// With `--shapes blt-1b`: rows per hash n-gram table (500002 at full size).
    #[arg(long, default_value_t = 50_000)]
    pub ngram_rows: usize,
    /// With `--shapes blt-1b`: bytes generated per decoder.
    #[arg(long, default_value_t = 32)]
    pub new_bytes: usize,
}

/// `bench --shapes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchShapes {
    /// The model of `--config`.
    Config,
    /// BLT-1B's shapes (transformers' default `BltConfig`).
    #[value(name = "blt-1b")]
    Blt1b,
}

/// `train` options.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run config (TOML with `[model]`, `[training]`, `[data]`); not needed with --resume.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data source, overriding the config: builtin:kjv, a file, a directory, a .jsonl file,
    /// or hub:openwebtext / hub:wikitext-103 (a build with the `hub` feature).
    #[arg(long)]
    pub data: Option<String>,
    /// Run directory (default: `runs/<config name>`).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in --run-dir from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Reuse this entropy model (a run or model directory) instead of training one.
    #[arg(long)]
    pub entropy_model: Option<PathBuf>,
    /// Override training.max_steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Override training.entropy_steps (the entropy model's stage; not on resume).
    #[arg(long)]
    pub entropy_steps: Option<usize>,
    /// Train data parallel on these devices (comma-separated indices: CUDA ordinals, wgpu
    /// discrete GPUs); replaces `training.devices`. Gradient accumulation must be a multiple of
    /// their number.
    #[arg(long, value_delimiter = ',')]
    pub devices: Option<Vec<usize>>,
    /// Plain log lines even on a terminal (the same as --dashboard plain).
    #[arg(long, conflicts_with = "dashboard")]
    pub plain: bool,
    /// What training shows on a terminal (default: compact; plain when stdout is not a
    /// terminal).
    #[arg(long, value_enum)]
    pub dashboard: Option<DashboardArg>,
}

/// `generate` options.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text; `-` reads it from stdin.
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// Read the prompt (raw bytes) from a file.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Generate for many prompts at once: one prompt per line of this file (blank lines are
    /// skipped), decoded together in one batch. Prints each prompt and its completion under a
    /// `== N ==` header line when all are done.
    #[arg(long, conflicts_with_all = ["prompt", "prompt_file", "interactive", "no_cache"])]
    pub prompts_file: Option<PathBuf>,
    /// Most bytes to generate.
    #[arg(long, default_value_t = 256)]
    pub max_bytes: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Sample among the k most likely bytes.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample from the smallest set of bytes with this total probability.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Penalise bytes already seen (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Stop after this byte string appears.
    #[arg(long)]
    pub stop: Option<String>,
    /// Stop when the context (max_position_embeddings) is full, instead of keeping its most
    /// recent half and going on.
    #[arg(long)]
    pub no_context_shift: bool,
    /// Never end the text with EOS: generate until --max-bytes, --stop or an interruption.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Recompute the whole prefix for every byte (slow; for comparison). Same as
    /// `--decoder full`.
    #[arg(long, conflicts_with = "decoder")]
    pub no_cache: bool,
    /// Decoding path: auto (host-bf16 on a CPU backend when its copy of the weights fits in the
    /// memory available, cached otherwise), host (cached, on the CPU, weights copied out of Burn
    /// in f32; the hash n-gram tables are read in place), host-bf16 (the same with bf16 weight
    /// matrices), host-int8 (int8 weight matrices: the fastest at batch 1), cached (through the
    /// backend's own ops: GPU backends decode on the GPU), full (recompute the prefix for every
    /// byte). Prompts are prefilled in one pass on the host decoders. Batches (--prompts-file) always decode cached.
    #[arg(long, value_enum, default_value_t = DecoderChoice::Auto)]
    pub decoder: DecoderChoice,
    /// Interactive screen (needs a terminal): prompt box, output coloured by entropy with patch
    /// marks, live bytes/s; Up/Down temperature, Esc stop, Ctrl-C quit. --prompt fills the box.
    #[arg(long)]
    pub interactive: bool,
}

/// `eval` options.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Data source: builtin:kjv, a file, a directory, a .jsonl file.
    #[arg(long)]
    pub data: String,
    /// Rows per batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Evaluate at most this many rows (0: all).
    #[arg(long, default_value_t = 0)]
    pub max_rows: usize,
    /// Score through a decoding path instead of the batch forward: every byte pushed through
    /// the decoder in turn (teacher forcing), as generation runs it. Checks a decoder, or a
    /// weight precision, against the batch forward on real text.
    #[arg(long, value_enum)]
    pub decoder: Option<DecoderChoice>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `entropy` options.
#[derive(Debug, Args)]
pub struct EntropyArgs {
    /// Model or run directory (its entropy model is used).
    #[arg(long)]
    pub model: PathBuf,
    /// Text to analyse.
    #[arg(long)]
    pub text: String,
    /// Also draw the entropy curve to this .svg or .png file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `patch` options.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Patching scheme.
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,
    /// Patch length for the fixed scheme.
    #[arg(long, default_value_t = 4)]
    pub stride: usize,
    /// Entropy threshold (default: the model's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Model or run directory (required for the entropy scheme).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Text to cut.
    #[arg(long)]
    pub text: String,
}

/// `train --dashboard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DashboardArg {
    /// blt's dashboard: a loss chart, every metric's latest value, progress. It redraws a few
    /// times a second and sleeps in between.
    Compact,
    /// Burn's TUI: a tab per metric with history, progress with an ETA, a final summary. Its
    /// renderer thread polls without sleeping, so it takes a core from training.
    Burn,
    /// One log line every `training.log_every` iterations and one per validation.
    Plain,
}

/// `patch --scheme`: the patching schemes that need no model config (the monotonic entropy rule
/// is a model setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Cut where the entropy model's next-byte entropy exceeds the threshold (needs --model).
    Entropy,
    /// Cut every --stride bytes after BOS.
    Fixed,
    /// Cut after runs of space-like bytes.
    Space,
    /// Every byte is a patch.
    Byte,
}

/// `calibrate` options.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Model or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Data source to measure patch lengths on.
    #[arg(long)]
    pub data: String,
    /// Wanted mean patch length in bytes.
    #[arg(long)]
    pub target_patch_size: f64,
    /// Rows to use (0: all).
    #[arg(long, default_value_t = 256)]
    pub max_rows: usize,
    /// Write the threshold into the model's config (model.toml and config.toml).
    #[arg(long)]
    pub write: bool,
}

/// `info` options.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Model or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
