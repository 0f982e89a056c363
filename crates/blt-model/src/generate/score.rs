//! Teacher-forced scoring through a decoding path: every position of a known text is pushed
//! through a [`StepDecoder`] and the log-probability of the byte that really follows is read
//! from its logits. The batch forward scores the same text in one pass; comparing the two
//! checks a decoding path (its caches, its weight precision) on real text.

use burn::tensor::backend::Backend;

use super::{DecodeMode, Generator};
use crate::error::{ModelError, Result};

/// What [`Generator::score`] measured on one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// `ln p(target)` at each position.
    pub log_probs: Vec<f32>,
    /// Whether each target was the arg-max.
    pub hits: Vec<bool>,
    /// Patches over the input.
    pub patches: usize,
}

/// `ln softmax(logits)[target]`, in `f64` sums.
pub fn log_prob(logits: &[f32], target: u32) -> f32 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let sum: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
    (f64::from(logits[target as usize] - max) - sum.ln()) as f32
}

impl<B: Backend> Generator<'_, B> {
    /// Scores `targets[t]` after `input[..=t]` for every `t`, pushing the input one id at a
    /// time through a fresh decoder for `mode` (teacher forcing). `input` starts with BOS, as
    /// a row's input does; `targets` has one id per input id.
    pub fn score(&self, input: &[u32], targets: &[u32], mode: DecodeMode) -> Result<Scored> {
        if input.len() != targets.len() || input.is_empty() {
            return Err(ModelError::InvalidInput(format!(
                "{} input ids for {} targets",
                input.len(),
                targets.len()
            )));
        }
        let mut decoder = self.decoder(mode)?;
        let mut scored = Scored {
            log_probs: Vec::with_capacity(input.len()),
            hits: Vec::with_capacity(input.len()),
            patches: 0,
        };
        for (&id, &target) in input.iter().zip(targets) {
            let step = decoder.push(id)?;
            scored.log_probs.push(log_prob(&step.logits, target));
            scored.hits.push(super::argmax(&step.logits) == target);
        }
        // The patch the next position would open does not hold an input byte.
        let starts = decoder.patch_starts();
        scored.patches = starts[..starts.len() - 1].iter().filter(|&&s| s).count();
        Ok(scored)
    }
}
