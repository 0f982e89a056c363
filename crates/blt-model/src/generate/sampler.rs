//! Next-byte sampling: temperature, top-k, top-p (nucleus), repetition penalty, seeded.
//! Special ids other than EOS (PAD/BOE, BOS, reserved) are never produced, and EOS is not
//! either under [`SamplingConfig::ignore_eos`]. Logits that are NaN or +inf, or that leave no
//! finite candidate, are an error rather than a silent pick.

use blt_patching::{BYTE_OFFSET, EOS_ID};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How to pick the next byte from logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 means greedy (arg-max). Default: 0.8.
    pub temperature: f32,
    /// Keep only the `k` most likely ids. Default: none.
    pub top_k: Option<usize>,
    /// Keep the smallest set of ids whose probability reaches `p`, in (0, 1]. Default: none.
    pub top_p: Option<f32>,
    /// Divide positive logits (multiply negative ones) of ids already produced or prompted by
    /// this factor (CTRL-style); 1 disables it. Default: 1.
    pub repetition_penalty: f32,
    /// Seed of the random generator. Default: 0.
    pub seed: u64,
    /// Never produce EOS, so that generation runs until `max_bytes`, a stop sequence or an
    /// interruption (llama.cpp's `--ignore-eos`). Default: off.
    #[serde(default)]
    pub ignore_eos: bool,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
            seed: 0,
            ignore_eos: false,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(ModelError::InvalidInput(m));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return fail(format!("temperature ({}) must be ≥ 0", self.temperature));
        }
        if self.top_k == Some(0) {
            return fail("top_k (0) must be at least 1".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return fail(format!("top_p ({p}) must be in (0, 1]"));
        }
        if !(self.repetition_penalty >= 1.0 && self.repetition_penalty.is_finite()) {
            return fail(format!(
                "repetition_penalty ({}) must be ≥ 1",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

/// A seeded sampler.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplingConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler; validates the config.
    pub fn new(config: SamplingConfig) -> Result<Self> {
        config.validate()?;
        let rng = StdRng::seed_from_u64(config.seed);
        Ok(Self { config, rng })
    }

    /// The config.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// Changes the temperature (interactive use).
    pub fn set_temperature(&mut self, temperature: f32) {
        self.config.temperature = temperature.max(0.0);
    }

    /// Picks an id from `logits` (`[260]`), given the ids seen so far (for the penalty).
    ///
    /// Fails with [`ModelError::NonFiniteLogits`] when a candidate's logit is NaN or +inf, or
    /// when every candidate is -inf: a model in that state has diverged or its weights are
    /// corrupt, and no pick would mean anything.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let mut scores: Vec<f32> = logits.to_vec();
        for (id, s) in scores.iter_mut().enumerate() {
            let id = id as u32;
            if (id < BYTE_OFFSET && id != EOS_ID) || (id == EOS_ID && self.config.ignore_eos) {
                *s = f32::NEG_INFINITY;
            }
        }
        check_finite(&scores)?;
        if self.config.repetition_penalty > 1.0 {
            let mut seen = [false; 260];
            for &id in history {
                if let Some(flag) = seen.get_mut(id as usize) {
                    *flag = true;
                }
            }
            for (s, _) in scores.iter_mut().zip(seen).filter(|(_, seen)| *seen) {
                *s = if *s > 0.0 {
                    *s / self.config.repetition_penalty
                } else {
                    *s * self.config.repetition_penalty
                };
            }
        }
        if self.config.temperature == 0.0 {
            return Ok(argmax(&scores));
        }
        let mut order: Vec<usize> = (0..scores.len())
            .filter(|&i| scores[i].is_finite())
            .collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        if let Some(k) = self.config.top_k {
            order.truncate(k.max(1));
        }
        let max = scores[order[0]];
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| (((scores[i] - max) / self.config.temperature) as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(top_p) = self.config.top_p {
            let mut cumulative = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    cumulative += p;
                    cumulative >= top_p as f64
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            order.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut draw = self.rng.random::<f64>() * total;
        for (&id, p) in order.iter().zip(&probs) {
            draw -= p;
            if draw <= 0.0 {
                return Ok(id as u32);
            }
        }
        Ok(order.last().map_or(EOS_ID, |&id| id as u32))
    }
}

/// Fails unless every score is finite or -inf (a banned id) and at least one is finite.
fn check_finite(scores: &[f32]) -> Result<()> {
    let nan = scores.iter().filter(|s| s.is_nan()).count();
    let inf = scores.iter().filter(|s| **s == f32::INFINITY).count();
    if nan > 0 || inf > 0 {
        return Err(ModelError::NonFiniteLogits(format!(
            "{nan} NaN and {inf} +inf among {} logits",
            scores.len()
        )));
    }
    if !scores.iter().any(|s| s.is_finite()) {
        return Err(ModelError::NonFiniteLogits(
            "every allowed id has a logit of -inf".into(),
        ));
    }
    Ok(())
}

/// Index of the largest finite value (the first on ties).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits_with(peaks: &[(usize, f32)]) -> Vec<f32> {
        let mut l = vec![0.0; 260];
        for &(i, v) in peaks {
            l[i] = v;
        }
        l
    }

    #[test]
    fn greedy_picks_argmax_and_never_special_ids() {
        let mut s = Sampler::new(SamplingConfig::greedy()).unwrap();
        assert_eq!(s.sample(&logits_with(&[(70, 5.0)]), &[]).unwrap(), 70);
        // BOS has the largest logit but is never produced; EOS may be.
        assert_eq!(
            s.sample(&logits_with(&[(1, 9.0), (2, 8.0)]), &[]).unwrap(),
            2
        );
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_reproduce() {
        let cfg = SamplingConfig {
            temperature: 1.0,
            top_k: Some(1),
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        assert_eq!(s.sample(&logits_with(&[(100, 3.0)]), &[]).unwrap(), 100);
        let cfg = SamplingConfig {
            temperature: 1.0,
            seed: 9,
            ..Default::default()
        };
        let draws = |cfg: &SamplingConfig| {
            let mut s = Sampler::new(cfg.clone()).unwrap();
            (0..50)
                .map(|_| s.sample(&logits_with(&[]), &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(&cfg), draws(&cfg));
        assert!(
            draws(&cfg)
                .iter()
                .all(|&id| id >= BYTE_OFFSET || id == EOS_ID)
        );
    }

    #[test]
    fn top_p_keeps_the_nucleus_and_penalty_demotes_repeats() {
        let cfg = SamplingConfig {
            temperature: 1.0,
            top_p: Some(0.5),
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..20 {
            assert_eq!(
                s.sample(&logits_with(&[(50, 20.0), (51, 0.5)]), &[])
                    .unwrap(),
                50
            );
        }
        let cfg = SamplingConfig {
            repetition_penalty: 10.0,
            ..SamplingConfig::greedy()
        };
        let mut s = Sampler::new(cfg).unwrap();
        assert_eq!(
            s.sample(&logits_with(&[(50, 4.0), (51, 3.0)]), &[50])
                .unwrap(),
            51
        );
    }

    #[test]
    fn ignore_eos_bans_eos_even_when_it_dominates() {
        let peaked = logits_with(&[(2, 30.0), (90, 1.0)]);
        let mut s = Sampler::new(SamplingConfig::greedy()).unwrap();
        assert_eq!(s.sample(&peaked, &[]).unwrap(), EOS_ID);
        for temperature in [0.0, 1.0] {
            let mut s = Sampler::new(SamplingConfig {
                temperature,
                ignore_eos: true,
                ..Default::default()
            })
            .unwrap();
            for _ in 0..50 {
                let id = s.sample(&peaked, &[]).unwrap();
                assert!(id >= BYTE_OFFSET, "temperature {temperature}: {id}");
            }
        }
    }

    #[test]
    fn non_finite_logits_are_an_error_not_a_pick() {
        for temperature in [0.0, 0.8] {
            let mut s = Sampler::new(SamplingConfig {
                temperature,
                top_k: Some(3),
                ..Default::default()
            })
            .unwrap();
            let all_nan = vec![f32::NAN; 260];
            let one_nan = logits_with(&[(70, f32::NAN)]);
            let one_inf = logits_with(&[(71, f32::INFINITY)]);
            let all_neg_inf = vec![f32::NEG_INFINITY; 260];
            for bad in [all_nan, one_nan, one_inf, all_neg_inf] {
                let err = s.sample(&bad, &[]).unwrap_err();
                assert!(matches!(err, ModelError::NonFiniteLogits(_)), "{err}");
            }
            // -inf on a special id the sampler bans anyway is fine.
            let ok = logits_with(&[(0, f32::NEG_INFINITY), (80, 2.0)]);
            assert!(s.sample(&ok, &[]).unwrap() >= BYTE_OFFSET);
        }
    }

    #[test]
    fn invalid_settings_are_rejected() {
        for cfg in [
            SamplingConfig {
                temperature: -1.0,
                ..Default::default()
            },
            SamplingConfig {
                top_k: Some(0),
                ..Default::default()
            },
            SamplingConfig {
                top_p: Some(1.5),
                ..Default::default()
            },
            SamplingConfig {
                repetition_penalty: 0.5,
                ..Default::default()
            },
        ] {
            assert!(Sampler::new(cfg).is_err());
        }
    }
}
