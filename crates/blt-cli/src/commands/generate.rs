//! `blt-cli generate`.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use blt_model::{GenerationConfig, Generator, SamplingConfig, load_model};
use burn::tensor::backend::Backend;

use crate::{
    args::{GenerateArgs, GlobalArgs},
    backend::{BackendKind, BackendTask, decoding_preference_of, dispatch},
    decoder::DecoderChoice,
    output::ByteSink,
};

/// Reads the prompt from `--prompt`, `--prompt -` (stdin) or `--prompt-file` (raw bytes).
pub fn read_prompt(prompt: &Option<String>, file: &Option<PathBuf>) -> Result<Vec<u8>> {
    let bytes = match (prompt.as_deref(), file) {
        (Some("-"), _) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the prompt from stdin")?;
            buf
        }
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(path)) => std::fs::read(path)
            .with_context(|| format!("reading prompt file {}", path.display()))?,
        (None, None) => bail!("give --prompt TEXT, --prompt - (stdin) or --prompt-file FILE"),
    };
    if bytes.is_empty() {
        bail!("the prompt is empty");
    }
    Ok(bytes)
}

/// Reads `--prompts-file`: one prompt per line (a trailing `\r` is dropped), blank lines
/// skipped.
fn read_prompts(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading prompts file {}", path.display()))?;
    let prompts: Vec<Vec<u8>> = bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect();
    if prompts.is_empty() {
        bail!("{} holds no prompts (one per line)", path.display());
    }
    Ok(prompts)
}

/// The text the interactive prompt box starts with: `--prompt` or `--prompt-file`, if given
/// (stdin is the terminal there, so `--prompt -` is refused).
fn initial_prompt(args: &GenerateArgs) -> Result<Vec<u8>> {
    match (args.prompt.as_deref(), &args.prompt_file) {
        (Some("-"), _) => {
            bail!("--prompt - reads stdin, which --interactive needs for the keyboard")
        }
        (None, None) => Ok(Vec::new()),
        _ => read_prompt(&args.prompt, &args.prompt_file),
    }
}

/// Loads a model (or run) directory and hands `f` a generator over it.
fn with_generator<B: Backend, T>(
    model: &Path,
    device: B::Device,
    f: impl FnOnce(&Generator<'_, B>) -> Result<T>,
) -> Result<T> {
    let loaded = load_model::<B>(model, &device)
        .with_context(|| format!("loading model {}", model.display()))?;
    let generator = Generator::new(
        &loaded.model,
        loaded.entropy_model.as_ref(),
        &loaded.config,
        device,
    )?;
    f(&generator)
}

struct GenerateTask {
    model: PathBuf,
    prompt: Vec<u8>,
    generation: GenerationConfig,
    decoder: DecoderChoice,
}

impl BackendTask for GenerateTask {
    type Output = ();
    fn cpu_preference(&self) -> [BackendKind; 2] {
        decoding_preference_of(&self.model)
    }

    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<()> {
        with_generator::<B, _>(&self.model, device, |generator| {
            self.stream(generator, name)
        })
    }
}

impl GenerateTask {
    /// Streams one prompt's completion to stdout.
    fn stream<B: Backend>(&self, generator: &Generator<'_, B>, backend: &str) -> Result<()> {
        generator.check_prompt(&self.prompt)?;
        let mode = crate::decoder::mode_for(
            self.decoder,
            generator.model,
            generator.entropy_model,
            backend,
        );
        tracing::debug!(?mode, "decoding");
        let mut sink = ByteSink::stdout();
        let started = Instant::now();
        let mut write_error = None;
        let mut first_byte: Option<Instant> = None;
        let summary = generator.generate(&self.prompt, &self.generation, mode, |b| {
            first_byte.get_or_insert_with(Instant::now);
            match sink.push(b.byte) {
                Ok(()) => true,
                Err(e) => {
                    write_error = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = write_error
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(e).context("writing to stdout");
        }
        let _ = sink.finish();
        let seconds = started.elapsed().as_secs_f64();
        // Time to first byte covers the prompt's prefill (and a host copy made on first use);
        // the rate counts the bytes after the first over the time after it.
        let to_first = first_byte.map_or(seconds, |t| (t - started).as_secs_f64());
        let decode_rate =
            summary.bytes.len().saturating_sub(1) as f64 / (seconds - to_first).max(1e-9);
        eprintln!();
        eprintln!(
            "generated {} bytes in {:.2}s (first byte after {:.2}s, then {:.1} bytes/s), \
             mean patch length {:.2}, stop: {:?}{}",
            summary.bytes.len(),
            seconds,
            to_first,
            decode_rate,
            summary.mean_patch_len(),
            summary.stop,
            match summary.context_shifts {
                0 => String::new(),
                n => format!(", context shifts: {n}"),
            }
        );
        Ok(())
    }
}

/// `--prompts-file`: every prompt in one batch, printed when all are done.
struct BatchGenerateTask {
    model: PathBuf,
    prompts: Vec<Vec<u8>>,
    generation: GenerationConfig,
}

impl BackendTask for BatchGenerateTask {
    type Output = ();
    fn cpu_preference(&self) -> [BackendKind; 2] {
        decoding_preference_of(&self.model)
    }

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        with_generator::<B, _>(&self.model, device, |generator| self.generate(generator))
    }
}

impl BatchGenerateTask {
    /// Generates every prompt in one batch and prints them in order.
    fn generate<B: Backend>(&self, generator: &Generator<'_, B>) -> Result<()> {
        let prompts: Vec<&[u8]> = self.prompts.iter().map(Vec::as_slice).collect();
        let started = Instant::now();
        let summaries = generator.generate_batch(&prompts, &self.generation, |_, _| true)?;
        let seconds = started.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let written = summaries
            .iter()
            .zip(&prompts)
            .enumerate()
            .try_for_each(|(i, (summary, prompt))| -> std::io::Result<()> {
                writeln!(out, "== {} ==", i + 1)?;
                out.write_all(prompt)?;
                out.write_all(&summary.bytes)?;
                writeln!(out)
            })
            .and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("writing to stdout");
            }
            _ => {}
        }
        let total: usize = summaries.iter().map(|s| s.bytes.len()).sum();
        eprintln!(
            "generated {total} bytes for {} prompts in {seconds:.2}s ({:.1} bytes/s with the prompts' prefill)",
            prompts.len(),
            total as f64 / seconds.max(1e-9),
        );
        Ok(())
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: GenerateArgs) -> Result<()> {
    let prompts = args.prompts_file.as_deref().map(read_prompts).transpose()?;
    let prompt = if args.interactive {
        // Before anything else: without a terminal the screen could only hang or garble.
        super::interactive::require_terminal()?;
        initial_prompt(&args)?
    } else if prompts.is_some() {
        Vec::new()
    } else {
        read_prompt(&args.prompt, &args.prompt_file)?
    };
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
        seed: global.seed.unwrap_or(0),
        ignore_eos: args.ignore_eos,
    };
    sampling.validate()?;
    let generation = GenerationConfig {
        max_bytes: args.max_bytes,
        sampling,
        stop: args.stop.map(String::into_bytes),
        context_shift: !args.no_context_shift,
    };
    let decoder = if args.no_cache {
        DecoderChoice::Full
    } else {
        args.decoder
    };
    if let Some(prompts) = prompts {
        return dispatch(
            &global.backend,
            BatchGenerateTask {
                model: args.model,
                prompts,
                generation,
            },
        );
    }
    if args.interactive {
        return dispatch(
            &global.backend,
            super::interactive::InteractiveTask {
                model: args.model,
                decoder,
                generation,
                initial_prompt: String::from_utf8_lossy(&prompt).into_owned(),
            },
        );
    }
    dispatch(
        &global.backend,
        GenerateTask {
            model: args.model,
            prompt,
            generation,
            decoder,
        },
    )
}
