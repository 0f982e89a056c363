//! Copies Burn layers to the host: one weight precision for the whole model, and rotary tables
//! shared between the layers that have equal ones.

use std::sync::Arc;

use burn::{nn::Linear, tensor::backend::Backend};

use super::{HostLinear, HostRope, WeightPrecision};
use crate::rope::Rope;

/// What the host layers of one model share while they are copied: the precision of their
/// weight matrices and the rotary tables (most layers of a model have equal ones).
#[derive(Debug, Default)]
pub struct HostCopier {
    precision: WeightPrecision,
    ropes: Vec<Arc<HostRope>>,
}

impl HostCopier {
    /// A copier storing weight matrices in `precision`.
    pub fn new(precision: WeightPrecision) -> Self {
        Self {
            precision,
            ropes: Vec::new(),
        }
    }

    /// The precision of the weight matrices.
    pub fn precision(&self) -> WeightPrecision {
        self.precision
    }

    /// `layer` on the host, its weight in the copier's precision.
    pub fn linear<B: Backend>(&self, layer: &Linear<B>) -> HostLinear {
        HostLinear::from_linear(layer, self.precision)
    }

    /// The host tables of `rope`, shared with an earlier layer's when they are equal.
    pub fn rope<B: Backend>(&mut self, rope: &Rope<B>) -> Arc<HostRope> {
        let table = HostRope::from_rope(rope);
        if let Some(known) = self.ropes.iter().find(|known| ***known == table) {
            return known.clone();
        }
        let table = Arc::new(table);
        self.ropes.push(table.clone());
        table
    }
}
