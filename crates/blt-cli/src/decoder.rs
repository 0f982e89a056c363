//! `--decoder`: which decoding path generation takes.

use blt_model::{DecodeMode, WeightPrecision};

/// `--decoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderChoice {
    /// `host-bf16` on a CPU backend when its copy of the weights fits in the memory available,
    /// `cached` otherwise.
    Auto,
    /// Cached decoding on the CPU with the weights copied out of Burn, in `f32`: the same
    /// logits as the model's forward pass, to float rounding.
    Host,
    /// `host` with the weight matrices rounded to `bf16`: half the memory traffic.
    HostBf16,
    /// `host` with the weight matrices in `int8`, one scale per column for every 32 rows:
    /// 0.56 of `bf16`'s memory traffic, the fastest at batch 1.
    HostInt8,
    /// Cached decoding through the backend's own ops (runs on a GPU when the backend does).
    Cached,
    /// The whole prefix recomputed for every byte (slow; for comparison).
    Full,
}

/// What `auto` weighs: where the model runs, and the host copy's size against free memory.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// The backend's name.
    pub backend: &'a str,
    /// Bytes the host decoder's copy of the weights takes in `bf16` (the n-gram tables are
    /// read in place, not copied).
    pub host_copy_bytes: usize,
    /// Memory available to this process (`MemAvailable`), when known.
    pub available_bytes: Option<u64>,
}

impl DecoderChoice {
    /// The decoding mode in `context`.
    pub fn resolve(self, context: DecodeContext<'_>) -> DecodeMode {
        match self {
            Self::Host => DecodeMode::Host(WeightPrecision::F32),
            Self::HostBf16 => DecodeMode::Host(WeightPrecision::Bf16),
            Self::HostInt8 => DecodeMode::Host(WeightPrecision::Int8),
            Self::Cached => DecodeMode::Incremental,
            Self::Full => DecodeMode::FullRecompute,
            Self::Auto => {
                let on_cpu = matches!(context.backend, "ndarray" | "flex");
                // Keep a quarter of what is free for everything else.
                let fits = context
                    .available_bytes
                    .is_none_or(|free| context.host_copy_bytes as u64 <= free / 4 * 3);
                if on_cpu && fits {
                    DecodeMode::Host(WeightPrecision::Bf16)
                } else {
                    DecodeMode::Incremental
                }
            }
        }
    }
}

/// The mode `choice` resolves to for `model` and `entropy_model` on `backend` (its name), with
/// this machine's available memory.
pub fn mode_for<B: burn::tensor::backend::Backend>(
    choice: DecoderChoice,
    model: &blt_model::Blt<B>,
    entropy_model: Option<&blt_model::EntropyModel<B>>,
    backend: &str,
) -> DecodeMode {
    choice.resolve(DecodeContext {
        backend,
        host_copy_bytes: blt_model::host_copy_bytes(model, entropy_model, WeightPrecision::Bf16),
        available_bytes: available_memory(),
    })
}

/// `MemAvailable` from `/proc/meminfo` (Linux), in bytes.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::{DecodeContext, DecoderChoice};
    use blt_model::{DecodeMode, WeightPrecision};

    fn context(backend: &str, copy: usize, free: Option<u64>) -> DecodeContext<'_> {
        DecodeContext {
            backend,
            host_copy_bytes: copy,
            available_bytes: free,
        }
    }

    #[test]
    fn auto_takes_the_host_decoder_on_cpu_whenever_its_copy_fits() {
        let auto = DecoderChoice::Auto;
        let host = DecodeMode::Host(WeightPrecision::Bf16);
        let gib = 1u64 << 30;
        assert_eq!(
            auto.resolve(context("ndarray", 90 << 20, Some(20 * gib))),
            host
        );
        assert_eq!(auto.resolve(context("flex", 90 << 20, None)), host);
        // BLT-1B's copy without its n-gram tables: about 3 GB in bf16.
        assert_eq!(auto.resolve(context("flex", 3 << 30, Some(20 * gib))), host);
        assert_eq!(
            auto.resolve(context("ndarray", 3 << 30, Some(3 * gib))),
            DecodeMode::Incremental
        );
        assert_eq!(
            auto.resolve(context("cuda", 90 << 20, Some(20 * gib))),
            DecodeMode::Incremental
        );
        assert_eq!(
            auto.resolve(context("wgpu", 90 << 20, None)),
            DecodeMode::Incremental
        );
        assert_eq!(
            DecoderChoice::Host.resolve(context("cuda", 1, None)),
            DecodeMode::Host(WeightPrecision::F32)
        );
        assert_eq!(
            DecoderChoice::HostInt8.resolve(context("cuda", 1, None)),
            DecodeMode::Host(WeightPrecision::Int8)
        );
        assert_eq!(
            DecoderChoice::Full.resolve(context("ndarray", 1, None)),
            DecodeMode::FullRecompute
        );
    }
}
