//! The two backends side by side: ndarray (the reference) and wgpu on Vulkan's CPU adapter,
//! weights copied from one to the other, and comparisons with a stated tolerance.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::{
    backend::{NdArray, Wgpu, ndarray::NdArrayDevice, wgpu::WgpuDevice},
    module::{Module, ModuleVisitor},
    record::{BinBytesRecorder, FullPrecisionSettings, Recorder},
    tensor::{Tensor, backend::Backend},
};

/// The reference backend.
pub type N = NdArray;
/// The backend under test: Burn's wgpu backend (CubeCL kernels compiled to SPIR-V).
pub type W = Wgpu;

pub fn nd() -> NdArrayDevice {
    NdArrayDevice::Cpu
}

/// The wgpu device on the CPU adapter (Mesa's lavapipe, a CPU implementation of Vulkan), the
/// only adapter a machine without a GPU has. The first call checks that one exists: without it
/// every test fails with what to install, never passes.
pub fn gpu() -> WgpuDevice {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let device = WgpuDevice::Cpu;
        std::panic::catch_unwind(|| {
            let x = Tensor::<W, 1>::from_floats([1.0, 2.0, 3.0], &device);
            (x.clone() * x).sum().into_scalar()
        })
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
        .and_then(|sum| {
            (sum == 14.0)
                .then_some(())
                .ok_or_else(|| format!("1² + 2² + 3² came out as {sum}"))
        })
    });
    if let Err(why) = ready {
        panic!(
            "no usable Vulkan CPU adapter for the wgpu tests ({why}); install Mesa's lavapipe \
             (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)"
        );
    }
    WgpuDevice::Cpu
}

/// Held by every test for its whole run, so that one test at a time drives the wgpu device.
/// With two test threads on one device, Burn 0.21's fusion client failed a read with
/// `CallError` (its device task ended without an answer) in a test that passes alone; the
/// fusion fixes for shared tensors and re-entrancy (tracel-ai/burn#4962, #4984) landed after
/// 0.21.0. `blt-cli` drives a device from one thread, so only the tests need this.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one still runs on a working device.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A module's weights as bytes (Burn's byte recorder at full precision), to load bit for bit
/// into the same module on another backend. Burn initialises parameters lazily and a clone of an
/// uninitialised module draws its own values, so a module is copied by its record, never cloned.
pub fn record_bytes<B: Backend, M: Module<B>>(module: M) -> Vec<u8> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(module.into_record(), ())
        .expect("record the module")
}

/// `init` with the weights in `bytes` (from [`record_bytes`]).
pub fn load_into<B: Backend, M: Module<B>>(bytes: &[u8], init: M, device: &B::Device) -> M {
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load::<M::Record>(bytes.to_vec(), device)
        .expect("load the record");
    init.load_record(record)
}

/// One module with the same weights on both backends: `build` runs once per backend, and the
/// wgpu copy gets the ndarray copy's weights.
pub fn on_both<MN: Module<N>, MW: Module<W>>(
    build_nd: impl Fn() -> MN,
    build_gpu: impl FnOnce() -> MW,
) -> (MN, MW) {
    let bytes = record_bytes(build_nd());
    (
        load_into(&bytes, build_nd(), &nd()),
        load_into(&bytes, build_gpu(), &gpu()),
    )
}

/// The values of a tensor on the host.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 values")
}

/// Largest absolute difference, and the largest magnitude of the reference.
pub fn diff(got: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(got.len(), want.len(), "different sizes");
    let mut max_diff = 0.0f32;
    let mut scale = 0.0f32;
    for (g, w) in got.iter().zip(want) {
        assert!(g.is_finite(), "non-finite value {g} on wgpu");
        max_diff = max_diff.max((g - w).abs());
        scale = scale.max(w.abs());
    }
    (max_diff, scale)
}

/// Asserts `got` (wgpu) equals `want` (ndarray) within `tol` relative to the larger of 1 and
/// the reference's largest magnitude, and logs the measured difference.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let (max_diff, scale) = diff(got, want);
    let bound = tol * scale.max(1.0);
    eprintln!(
        "{what}: max |wgpu − ndarray| = {max_diff:.2e} (scale {scale:.2e}, bound {bound:.1e})"
    );
    assert!(
        max_diff <= bound,
        "{what}: wgpu differs from ndarray by {max_diff:e} (bound {bound:e})"
    );
}

/// Compares two tensors of the same shape on the two backends.
pub fn assert_tensors_close<const D: usize>(
    got: Tensor<W, D>,
    want: Tensor<N, D>,
    tol: f32,
    what: &str,
) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    assert_close(&values(got), &values(want), tol, what);
}

/// Every float parameter's gradient, labelled by its module path and its index, in visiting
/// order.
pub struct Gradients<'a, B: burn::tensor::backend::AutodiffBackend> {
    pub grads: &'a B::Gradients,
    pub path: Vec<String>,
    pub out: Vec<(String, Vec<f32>)>,
}

impl<'a, B: burn::tensor::backend::AutodiffBackend> Gradients<'a, B> {
    pub fn new(grads: &'a B::Gradients) -> Self {
        Self {
            grads,
            path: Vec::new(),
            out: Vec::new(),
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> ModuleVisitor<B> for Gradients<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        if let Some(grad) = param.val().grad(self.grads) {
            let label = format!("{} #{}", self.path.join("."), self.out.len());
            self.out.push((label, values(grad)));
        }
    }
}
