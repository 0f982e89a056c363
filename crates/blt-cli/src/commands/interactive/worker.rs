//! The generation thread of the interactive screen: it owns the model, takes one [`Request`] at a
//! time and sends every byte back as an [`Event`] the moment it is sampled, so the screen never
//! waits on the model.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
    mpsc::{Receiver, Sender},
};

use blt_model::{
    DecodeMode, GeneratedByte, GenerationConfig, Generator, LoadedModel, PatchingKind, StopReason,
};
use burn::tensor::backend::Backend;

/// What the screen needs to know about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The patching scheme, in words (`entropy`, `space`, ...).
    pub patching: String,
    /// The entropy threshold (nats) of the model's config.
    pub threshold: f32,
    /// Whether bytes come with entropies (the directory has an entropy model).
    pub has_entropy: bool,
    /// The longest prompt the model takes (bytes).
    pub max_prompt_bytes: usize,
    /// The backend's name.
    pub backend: &'static str,
}

impl ModelInfo {
    /// The facts about `loaded`, run on `backend`.
    pub fn of<B: Backend>(loaded: &LoadedModel<B>, backend: &'static str) -> Self {
        let patching = match loaded.config.patching {
            PatchingKind::Entropy if loaded.config.monotonic_entropy => "monotonic entropy",
            PatchingKind::Entropy => "entropy",
            PatchingKind::Fixed => "fixed",
            PatchingKind::Space => "space",
            PatchingKind::Byte => "byte",
        };
        Self {
            patching: patching.into(),
            threshold: loaded.config.entropy_threshold,
            has_entropy: loaded.entropy_model.is_some(),
            max_prompt_bytes: loaded.config.max_position_embeddings.saturating_sub(1),
            backend,
        }
    }
}

#[cfg(test)]
impl ModelInfo {
    /// A model for tests: entropy patching at θ = 2, prompts up to 10 bytes.
    pub fn example() -> Self {
        Self {
            patching: "entropy".into(),
            threshold: 2.0,
            has_entropy: true,
            max_prompt_bytes: 10,
            backend: "ndarray",
        }
    }
}

/// One generation to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The prompt (non-empty).
    pub prompt: Vec<u8>,
    /// Length, sampling and stop settings.
    pub generation: GenerationConfig,
}

/// What the generation thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A byte was sampled.
    Byte(GeneratedByte),
    /// The generation ended.
    Finished {
        /// Why.
        stop: StopReason,
        /// Patches over prompt and output.
        patches: usize,
        /// Positions (BOS, prompt and output).
        positions: usize,
    },
    /// The generation failed (e.g. the prompt is too long); the thread keeps serving.
    Failed(String),
}

/// Serves requests until the screen drops its sender: generates each one, sending every byte as
/// it comes and then [`Event::Finished`] or [`Event::Failed`]. A generation ends early when
/// `stop` is set or the screen has gone.
pub fn serve<B: Backend>(
    loaded: LoadedModel<B>,
    device: B::Device,
    mode: DecodeMode,
    requests: Receiver<Request>,
    events: Sender<Event>,
    stop: Arc<AtomicBool>,
) {
    let generator = match Generator::new(
        &loaded.model,
        loaded.entropy_model.as_ref(),
        &loaded.config,
        device,
    ) {
        Ok(generator) => generator,
        Err(err) => {
            let _ = events.send(Event::Failed(err.to_string()));
            return;
        }
    };
    for request in requests {
        let result = generator.generate(&request.prompt, &request.generation, mode, |byte| {
            events.send(Event::Byte(*byte)).is_ok() && !stop.load(Ordering::Relaxed)
        });
        let event = match result {
            Ok(summary) => Event::Finished {
                stop: summary.stop,
                patches: summary.patches,
                positions: summary.positions,
            },
            Err(err) => Event::Failed(err.to_string()),
        };
        if events.send(event).is_err() {
            return;
        }
    }
}
