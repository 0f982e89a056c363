//! Learning-rate schedule: linear warmup, then cosine decay to a floor, then hold.
//!
//! Burn 0.21 calls `LrScheduler::step` once per **micro-batch**, including those that only
//! accumulate gradients, while the schedule is defined in **optimizer steps**. [`WarmupCosine`]
//! therefore positions itself at `iteration / accumulation`: all micro-batches of one
//! optimizer step get the same learning rate. Unlike Burn 0.21's cosine scheduler, it never
//! restarts: past `total_steps` it holds `min_lr`.

use std::f64::consts::PI;

use burn::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// An invalid [`WarmupCosineConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// `peak_lr` is not a positive finite number.
    #[error("peak_lr ({0}) must be finite and > 0")]
    PeakLr(f64),
    /// `min_lr` is outside `0..=peak_lr`.
    #[error("min_lr ({min_lr}) must be in 0..=peak_lr ({peak_lr})")]
    MinLr {
        /// The configured floor.
        min_lr: f64,
        /// The configured peak.
        peak_lr: f64,
    },
    /// `total_steps` is 0.
    #[error("total_steps (0) must be >= 1")]
    TotalSteps,
    /// `warmup_steps` exceeds `total_steps`.
    #[error("warmup_steps ({warmup_steps}) must be <= total_steps ({total_steps})")]
    WarmupSteps {
        /// The configured warmup length.
        warmup_steps: usize,
        /// The configured schedule length.
        total_steps: usize,
    },
    /// `accumulation` is 0.
    #[error("accumulation (0) must be >= 1")]
    Accumulation,
}

/// Configuration of [`WarmupCosine`]; all lengths are in optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosineConfig {
    /// Learning rate reached at the end of warmup. Must be finite and > 0.
    pub peak_lr: f64,
    /// Floor reached at `total_steps` and held afterwards. Must be in `0..=peak_lr`.
    pub min_lr: f64,
    /// Optimizer steps of linear warmup; 0 starts at `peak_lr`. Must be `<= total_steps`.
    pub warmup_steps: usize,
    /// Optimizer steps until `min_lr` is reached (warmup included). Must be >= 1.
    pub total_steps: usize,
    /// Micro-batches per optimizer step (Burn's `grads_accumulation`; 1 when not
    /// accumulating). Must be >= 1.
    pub accumulation: usize,
}

impl WarmupCosineConfig {
    /// A schedule with no accumulation (`accumulation = 1`).
    pub fn new(peak_lr: f64, min_lr: f64, warmup_steps: usize, total_steps: usize) -> Self {
        Self {
            peak_lr,
            min_lr,
            warmup_steps,
            total_steps,
            accumulation: 1,
        }
    }

    /// Sets the micro-batches per optimizer step.
    pub fn with_accumulation(mut self, accumulation: usize) -> Self {
        self.accumulation = accumulation;
        self
    }

    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if !(self.peak_lr.is_finite() && self.peak_lr > 0.0) {
            return Err(ScheduleError::PeakLr(self.peak_lr));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.peak_lr) {
            return Err(ScheduleError::MinLr {
                min_lr: self.min_lr,
                peak_lr: self.peak_lr,
            });
        }
        if self.total_steps == 0 {
            return Err(ScheduleError::TotalSteps);
        }
        if self.warmup_steps > self.total_steps {
            return Err(ScheduleError::WarmupSteps {
                warmup_steps: self.warmup_steps,
                total_steps: self.total_steps,
            });
        }
        if self.accumulation == 0 {
            return Err(ScheduleError::Accumulation);
        }
        Ok(())
    }

    /// Validates the configuration and builds the scheduler at iteration 0.
    pub fn init(&self) -> Result<WarmupCosine, ScheduleError> {
        self.validate()?;
        Ok(WarmupCosine {
            peak_lr: self.peak_lr,
            min_lr: self.min_lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.total_steps,
            accumulation: self.accumulation,
            iteration: 0,
        })
    }
}

/// Linear warmup then cosine decay, stepped per micro-batch (see the [module docs](self)).
///
/// At optimizer step `s`:
/// - `s < warmup_steps`: `peak_lr · (s + 1) / warmup_steps`;
/// - `warmup_steps <= s < total_steps`: `min_lr + (peak_lr − min_lr) · (1 + cos(π·p)) / 2`
///   with `p = (s − warmup_steps) / (total_steps − warmup_steps)`;
/// - `s >= total_steps`: `min_lr`.
///
/// Its record is the micro-batch counter, so a resumed run continues at the same position.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupCosine {
    peak_lr: f64,
    min_lr: f64,
    warmup_steps: usize,
    total_steps: usize,
    accumulation: usize,
    /// Micro-batches stepped so far.
    iteration: usize,
}

impl WarmupCosine {
    /// The learning rate at optimizer step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if step >= self.total_steps {
            return self.min_lr;
        }
        let progress =
            (step - self.warmup_steps) as f64 / (self.total_steps - self.warmup_steps) as f64;
        self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + (PI * progress).cos())
    }

    /// Micro-batches stepped so far.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// The optimizer step the next [`LrScheduler::step`] call belongs to.
    pub fn optimizer_step(&self) -> usize {
        self.iteration / self.accumulation
    }
}

impl LrScheduler for WarmupCosine {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> f64 {
        let lr = self.lr_at(self.optimizer_step());
        self.iteration = self.iteration.saturating_add(1);
        lr
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.iteration
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.iteration = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn schedule(accumulation: usize) -> WarmupCosine {
        WarmupCosineConfig::new(1e-3, 1e-4, 4, 12)
            .with_accumulation(accumulation)
            .init()
            .unwrap()
    }

    fn take(s: &mut WarmupCosine, n: usize) -> Vec<f64> {
        (0..n).map(|_| s.step()).collect()
    }

    #[test]
    fn values_at_key_steps() {
        let lrs = take(&mut schedule(1), 14);
        // Warmup: peak·(s+1)/4.
        for (s, lr) in lrs.iter().take(4).enumerate() {
            assert!(close(*lr, 1e-3 * (s + 1) as f64 / 4.0), "step {s}: {lr}");
        }
        // Cosine starts at the peak, passes the midpoint halfway, ends at the floor.
        assert!(close(lrs[4], 1e-3));
        assert!(close(lrs[8], 1e-4 + 0.9e-3 * 0.5));
        let expected_11 = 1e-4 + 0.9e-3 * 0.5 * (1.0 + (PI * 7.0 / 8.0).cos());
        assert!(close(lrs[11], expected_11));
        assert!(close(lrs[12], 1e-4));
        assert!(close(lrs[13], 1e-4));
    }

    #[test]
    fn decays_monotonically_and_never_restarts() {
        let mut s = schedule(1);
        let lrs = take(&mut s, 200);
        for pair in lrs[4..].windows(2) {
            assert!(pair[1] <= pair[0], "{pair:?}");
        }
        assert!(lrs[12..].iter().all(|lr| close(*lr, 1e-4)));
        assert_eq!(s.iteration(), 200);
    }

    #[test]
    fn accumulation_repeats_each_lr() {
        let plain = take(&mut schedule(1), 14);
        let accumulated = take(&mut schedule(3), 14 * 3);
        for (i, lr) in accumulated.iter().enumerate() {
            assert!(close(*lr, plain[i / 3]), "micro-batch {i}");
        }
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let mut s = WarmupCosineConfig::new(2e-3, 0.0, 0, 2).init().unwrap();
        let lrs = take(&mut s, 3);
        assert!(close(lrs[0], 2e-3) && close(lrs[1], 1e-3) && close(lrs[2], 0.0));
    }

    #[test]
    fn record_round_trip_resumes_exactly() {
        let mut truth = schedule(2);
        let mut saved = schedule(2);
        take(&mut truth, 9);
        take(&mut saved, 9);
        let record = saved.to_record::<NdArray>();
        let resumed = schedule(2).load_record::<NdArray>(record);
        assert_eq!(resumed, truth);
        let (mut resumed, mut truth) = (resumed, truth);
        assert_eq!(take(&mut resumed, 30), take(&mut truth, 30));
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let base = WarmupCosineConfig::new(1e-3, 1e-4, 4, 12);
        let cases = [
            (
                WarmupCosineConfig {
                    peak_lr: 0.0,
                    ..base.clone()
                },
                "peak_lr",
            ),
            (
                WarmupCosineConfig {
                    peak_lr: f64::NAN,
                    ..base.clone()
                },
                "peak_lr",
            ),
            (
                WarmupCosineConfig {
                    peak_lr: f64::INFINITY,
                    ..base.clone()
                },
                "peak_lr",
            ),
            (
                WarmupCosineConfig {
                    min_lr: -1e-5,
                    ..base.clone()
                },
                "min_lr",
            ),
            (
                WarmupCosineConfig {
                    min_lr: 2e-3,
                    ..base.clone()
                },
                "min_lr",
            ),
            (
                WarmupCosineConfig {
                    min_lr: f64::NAN,
                    ..base.clone()
                },
                "min_lr",
            ),
            (
                WarmupCosineConfig {
                    total_steps: 0,
                    warmup_steps: 0,
                    ..base.clone()
                },
                "total_steps",
            ),
            (
                WarmupCosineConfig {
                    warmup_steps: 13,
                    ..base.clone()
                },
                "warmup_steps",
            ),
            (base.clone().with_accumulation(0), "accumulation"),
        ];
        for (config, field) in cases {
            let error = config.init().unwrap_err().to_string();
            assert!(error.starts_with(field), "{error}");
        }
        assert!(base.init().is_ok());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let config = WarmupCosineConfig::new(3e-4, 3e-5, 100, 1000).with_accumulation(4);
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<WarmupCosineConfig>(&text).unwrap(), config);
    }
}
