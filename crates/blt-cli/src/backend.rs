//! Backend selection at run time among the backends compiled in (Cargo features `ndarray`,
//! `flex`, `wgpu`, `cuda`).

use anyhow::{Result, bail};
use burn::tensor::backend::Backend;

/// A computation to run on whichever backend is chosen.
pub trait BackendTask {
    /// What it returns.
    type Output;
    /// The CPU backends `auto` tries, fastest first for this task. ndarray (with our kernels)
    /// trains and runs whole batches faster than flex; generation picks by model size (see
    /// [`decoding_preference`]).
    fn cpu_preference(&self) -> [BackendKind; 2] {
        [BackendKind::Ndarray, BackendKind::Flex]
    }
    /// Runs on backend `B` with `device`; `name` is the backend's name.
    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<Self::Output>;

    /// Runs on flex. Training tasks override this with an error: ndarray trains faster on CPU,
    /// and not instantiating the autodiff training loop for a second CPU backend keeps the
    /// binary's build several minutes shorter.
    #[cfg(feature = "flex")]
    fn run_flex(self, device: burn::backend::flex::FlexDevice) -> Result<Self::Output>
    where
        Self: Sized,
    {
        self.run::<burn::backend::Flex>(device, "flex")
    }
}

/// The error of a training task asked to run on flex (see [`BackendTask::run_flex`]).
#[cfg(feature = "flex")]
pub fn no_training_on_flex<T>() -> Result<T> {
    bail!(
        "training runs on ndarray, not flex, on CPU (ndarray trains faster); use --backend ndarray"
    )
}

/// `--backend`: a backend, or `auto` to pick one per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// CUDA when a GPU is present and compiled in, else the faster CPU backend for the command.
    Auto,
    /// Burn's ndarray CPU backend, with blt's kernels.
    Ndarray,
    /// Burn's flex CPU backend (not for training).
    Flex,
    /// wgpu (build feature `wgpu`).
    Wgpu,
    /// CUDA (build feature `cuda`).
    Cuda,
}

/// The backends this binary knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Burn's ndarray CPU backend.
    Ndarray,
    /// Burn's flex CPU backend.
    Flex,
    /// wgpu (Vulkan).
    Wgpu,
    /// CUDA.
    Cuda,
}

impl BackendKind {
    fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    fn compiled(self) -> bool {
        match self {
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Flex => cfg!(feature = "flex"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }
}

/// Forward FLOPs per decoded byte (≈ 2 × the weights each byte reads) above which `auto`
/// decodes on ndarray rather than flex. Byte-at-a-time decoding is a chain of small products
/// whose cost is reading the weights. Flex's small ops cost less, which wins while the weights
/// a byte reads sit in the CPU's cache; beyond that, memory bandwidth decides, and ndarray's
/// products with a few rows use both cores' share of it (kernel `gemv`). Measured on 2 cores:
/// at the bench shapes (about 20 MFLOP per byte) flex decodes at 507–548 bytes/s against
/// ndarray's 389–520; at BLT-1B's shapes (about 1.1 GFLOP per byte) ndarray decodes at
/// 5.8–6.5 bytes/s against flex's 4.1 (`docs/performance.md`).
const NDARRAY_DECODES_FROM_FLOPS: f64 = 200e6;

/// `auto`'s CPU order for byte-at-a-time decoding with `config` (see
/// [`NDARRAY_DECODES_FROM_FLOPS`]).
pub fn decoding_preference(config: &blt_model::BltConfig) -> [BackendKind; 2] {
    // One byte's weights: no attention context, patches of BLT-1B's mean length.
    let per_byte = blt_model::FlopsPerByte::estimate(config, 4.5, 1).forward();
    if per_byte >= NDARRAY_DECODES_FROM_FLOPS {
        [BackendKind::Ndarray, BackendKind::Flex]
    } else {
        [BackendKind::Flex, BackendKind::Ndarray]
    }
}

/// `auto`'s CPU order for decoding the model in `dir`: by its size when its config reads,
/// flex otherwise (loading the model then reports what is wrong with it).
pub fn decoding_preference_of(dir: &std::path::Path) -> [BackendKind; 2] {
    blt_model::load_config(dir).map_or([BackendKind::Flex, BackendKind::Ndarray], |config| {
        decoding_preference(&config)
    })
}

/// The devices `[training] devices` names on backend `name`, whose default device is
/// `default`: CUDA ordinals, wgpu's discrete GPUs, and on the CPU backends the one CPU device
/// once per entry; `default` alone when the list is empty.
pub fn training_devices<B: Backend>(
    indices: &[usize],
    default: B::Device,
    name: &str,
) -> Result<Vec<B::Device>> {
    use burn::tensor::backend::{Device, DeviceId};
    if indices.is_empty() {
        return Ok(vec![default]);
    }
    // wgpu's default device ignores an index; its discrete GPUs are device type 0.
    let type_id = if name == "wgpu" {
        0
    } else {
        default.to_id().type_id
    };
    indices
        .iter()
        .map(|&index| match u16::try_from(index) {
            Ok(index_id) => Ok(B::Device::from_id(DeviceId { type_id, index_id })),
            Err(_) => bail!("training.devices: no device {index}"),
        })
        .collect()
}

/// Resolves `--backend` and says why.
pub fn resolve(
    choice: BackendChoice,
    cpu_preference: [BackendKind; 2],
) -> Result<(BackendKind, String)> {
    let kind = match choice {
        BackendChoice::Auto => {
            if BackendKind::Cuda.compiled() && crate::gpu_probe::nvidia_gpu_present() {
                return Ok((
                    BackendKind::Cuda,
                    "auto: an NVIDIA GPU is present and CUDA is compiled in".into(),
                ));
            }
            // On CPU, the compiled CPU backend that is faster for this kind of work.
            for kind in cpu_preference {
                if kind.compiled() {
                    return Ok((
                        kind,
                        format!(
                            "auto: no usable GPU backend, using the CPU backend {}",
                            kind.name()
                        ),
                    ));
                }
            }
            bail!("no CPU backend compiled in; rebuild with --features ndarray");
        }
        BackendChoice::Ndarray => BackendKind::Ndarray,
        BackendChoice::Flex => BackendKind::Flex,
        BackendChoice::Wgpu => BackendKind::Wgpu,
        BackendChoice::Cuda => BackendKind::Cuda,
    };
    if !kind.compiled() {
        bail!(
            "backend `{}` is not compiled into this binary; rebuild with `--features {}`",
            kind.name(),
            kind.name()
        );
    }
    Ok((kind, format!("requested with --backend {}", kind.name())))
}

/// Runs `task` on the backend `choice` resolves to.
pub fn dispatch<T: BackendTask>(choice: &BackendChoice, task: T) -> Result<T::Output> {
    let (kind, why) = resolve(*choice, task.cpu_preference())?;
    // Debug level: the choice is in `info` and the training summary, and an INFO line here would
    // open every command (and every error message) with a second line.
    tracing::debug!(backend = kind.name(), "{why}");
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => task.run::<burn::backend::NdArray>(Default::default(), "ndarray"),
        #[cfg(feature = "flex")]
        BackendKind::Flex => task.run_flex(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => task.run::<burn::backend::Wgpu>(Default::default(), "wgpu"),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => task.run::<burn::backend::Cuda>(Default::default(), "cuda"),
        #[allow(unreachable_patterns)]
        other => bail!(
            "backend `{}` is not compiled into this binary",
            other.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{BackendKind, decoding_preference, training_devices};

    /// On a CPU backend every entry is the one device; the list's length is what counts.
    #[test]
    fn training_devices_on_ndarray() {
        type B = burn::backend::NdArray;
        let devices = training_devices::<B>(&[0, 1], Default::default(), "ndarray").unwrap();
        assert_eq!(devices.len(), 2);
        assert!(devices.iter().all(|d| *d == Default::default()));
        let one = training_devices::<B>(&[], Default::default(), "ndarray").unwrap();
        assert_eq!(one.len(), 1);
        let err = training_devices::<B>(&[70_000], Default::default(), "ndarray").unwrap_err();
        assert!(err.to_string().contains("no device 70000"), "{err}");
    }

    /// Small models decode on flex, models whose weights per byte outgrow the cache on ndarray:
    /// the bench shapes and BLT-1B's, where the choice was measured.
    #[test]
    fn decoding_goes_to_ndarray_only_for_large_models() {
        let bench = blt_model::BltConfig::bench();
        assert_eq!(decoding_preference(&bench)[0], BackendKind::Flex);
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../blt-model/tests/fixtures/hf-default-config.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let blt_1b = blt_model::hf::HfBltConfig::parse(&text)
            .unwrap()
            .to_blt()
            .unwrap();
        assert_eq!(decoding_preference(&blt_1b)[0], BackendKind::Ndarray);
    }
}
