//! `--decoder`: which decoding path generation takes.

use blt_model::{DecodeMode, WeightPrecision};

/// The largest model (in `f32` bytes of parameters) that `auto` copies to host memory for the
/// host decoder: the copy takes as much memory again as the model, and BLT-1B's 4.5 B
/// parameters (18 GB) would not fit twice on a machine of this project's kind.
pub const HOST_COPY_LIMIT: usize = 4 << 30;

/// `--decoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderChoice {
    /// `host-bf16` on a CPU backend for models up to 4 GiB of weights, `cached` otherwise.
    Auto,
    /// Cached decoding on the CPU with the weights copied out of Burn, in `f32`: the same
    /// logits as the model's forward pass, to float rounding.
    Host,
    /// `host` with the weight matrices rounded to `bf16`: half the memory traffic, the fastest
    /// at batch 1.
    HostBf16,
    /// Cached decoding through the backend's own ops (runs on a GPU when the backend does).
    Cached,
    /// The whole prefix recomputed for every byte (slow; for comparison).
    Full,
}

impl DecoderChoice {
    /// The decoding mode for a model of `parameters` parameters on `backend` (its name).
    pub fn resolve(self, backend: &str, parameters: usize) -> DecodeMode {
        match self {
            Self::Host => DecodeMode::Host(WeightPrecision::F32),
            Self::HostBf16 => DecodeMode::Host(WeightPrecision::Bf16),
            Self::Cached => DecodeMode::Incremental,
            Self::Full => DecodeMode::FullRecompute,
            Self::Auto => {
                let on_cpu = matches!(backend, "ndarray" | "flex");
                if on_cpu && parameters.saturating_mul(4) <= HOST_COPY_LIMIT {
                    DecodeMode::Host(WeightPrecision::Bf16)
                } else {
                    DecodeMode::Incremental
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DecoderChoice;
    use blt_model::{DecodeMode, WeightPrecision};

    #[test]
    fn auto_copies_small_models_on_cpu_only() {
        let auto = DecoderChoice::Auto;
        let host = DecodeMode::Host(WeightPrecision::Bf16);
        assert_eq!(auto.resolve("ndarray", 45_000_000), host);
        assert_eq!(auto.resolve("flex", 45_000_000), host);
        assert_eq!(auto.resolve("cuda", 45_000_000), DecodeMode::Incremental);
        assert_eq!(auto.resolve("wgpu", 45_000_000), DecodeMode::Incremental);
        assert_eq!(
            auto.resolve("ndarray", 4_500_000_000),
            DecodeMode::Incremental
        );
        assert_eq!(
            DecoderChoice::Host.resolve("cuda", 1),
            DecodeMode::Host(WeightPrecision::F32)
        );
        assert_eq!(
            DecoderChoice::Full.resolve("ndarray", 1),
            DecodeMode::FullRecompute
        );
    }
}
