//! The full-recompute decoding path: every step re-runs the entropy model and the BLT over the
//! whole prefix. Slow (the global model runs at every byte) but obviously right; the
//! incremental path is tested against it.

use burn::tensor::{Tensor, backend::Backend};

use super::{Generator, Step, StepDecoder};
use crate::{
    error::Result,
    input::{BltInput, RowPreparer},
};

/// Full-recompute [`StepDecoder`].
#[derive(Debug)]
pub struct FullRecompute<'g, 'a, B: Backend> {
    generator: &'g Generator<'a, B>,
    preparer: RowPreparer,
    ids: Vec<u32>,
    patches: usize,
    starts: Vec<bool>,
    global_steps: usize,
}

impl<'g, 'a, B: Backend> FullRecompute<'g, 'a, B> {
    /// A decoder with an empty prefix.
    pub fn new(generator: &'g Generator<'a, B>) -> Result<Self> {
        Ok(Self {
            generator,
            preparer: RowPreparer::new(generator.config)?,
            ids: Vec::new(),
            patches: 0,
            starts: vec![true],
            global_steps: 0,
        })
    }
}

impl<B: Backend> StepDecoder for FullRecompute<'_, '_, B> {
    fn push(&mut self, id: u32) -> Result<Step> {
        self.ids.push(id);
        let g = self.generator;
        let entropies = match g.entropy_model {
            Some(e) => Some(
                e.entropies(&[&self.ids], g.config.entropy_resets(), &g.device)?
                    .remove(0),
            ),
            None => None,
        };
        let row = self
            .preparer
            .prepare(self.ids.clone(), entropies.as_deref())?;
        let t = row.len();
        let next_starts_patch = row.patches.starts.last() == Some(&t);
        self.patches = row.patches.num_patches() + usize::from(next_starts_patch);
        self.starts = vec![false; t + 1];
        for &start in &row.patches.starts {
            self.starts[start] = true;
        }
        let input = BltInput::<B>::from_rows(g.config, &[row], &g.device)?;
        self.global_steps += input.patch_counts[0];
        let logits: Tensor<B, 1> = g
            .model
            .forward(&input)
            .logits
            .narrow(1, t - 1, 1)
            .reshape([-1]);
        Ok(Step {
            logits: logits
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32 logits"),
            entropy: entropies.map(|h| h[t - 1]),
            next_starts_patch,
        })
    }

    /// One forward over the whole prompt: only its last position's logits are needed.
    fn prefill(&mut self, ids: &[u32]) -> Result<Step> {
        let (last, head) = ids
            .split_last()
            .ok_or_else(|| crate::error::ModelError::InvalidInput("the prompt is empty".into()))?;
        self.ids.extend_from_slice(head);
        self.push(*last)
    }

    fn patches(&self) -> usize {
        self.patches
    }

    fn patch_starts(&self) -> &[bool] {
        &self.starts
    }

    fn global_steps(&self) -> usize {
        self.global_steps
    }
}
