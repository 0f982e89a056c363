//! Whether an NVIDIA GPU is usable here: the one probe behind `--backend auto` in `blt-cli` and
//! the backend choice of `cargo xtask train` (which includes this file, because it picks the
//! cargo feature before `blt-cli` is built).

/// Whether an NVIDIA GPU and its driver are visible (a device node or the driver's version
/// file), without loading any CUDA library.
pub fn nvidia_gpu_present() -> bool {
    std::path::Path::new("/dev/nvidia0").exists()
        || std::path::Path::new("/proc/driver/nvidia/version").exists()
}
