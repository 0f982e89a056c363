//! Our NdArray kernels against Burn's composition, forward and gradients.
//!
//! The reference is the generic composition run in f64 (`NdArray<f64>`), so that the bound
//! measures the kernel's own rounding rather than the composition's: both f32 paths are held
//! to a relative error (`‖got − want‖ / ‖want‖`) of 1e-5, and the kernel is also compared with
//! the f32 composition that every other backend runs. Inputs come from a fixed generator, not
//! the backend's global RNG, which other tests running in parallel would disturb.

use burn::{
    backend::{
        Autodiff, NdArray,
        autodiff::checkpoint::strategy::{
            BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
        },
    },
    module::Param,
    nn::Linear,
    tensor::{
        Bool, Element, ElementConversion, Tensor, TensorData,
        backend::{AutodiffBackend, Backend},
    },
};

use super::{
    AdamWStep, AttentionInputs, Moments, adamw, attention, composed_adamw, composed_attention,
    composed_rms_norm, composed_swiglu, linear, qkv_attention, rms_norm, rope_flat, swiglu,
};
use crate::mask::{Span, local_causal_mask_at};

type Reference = Autodiff<NdArray<f64>>;
type Fast<C> = Autodiff<NdArray, C>;

/// Uniform values in `[-scale, scale)` from a fixed xorshift stream.
fn data(shape: &[usize], seed: u64, scale: f32) -> TensorData {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    TensorData::new(values, shape.to_vec())
}

/// A tensor of `B`'s float element type (f64 for the reference: without the dtype, `from_data`
/// would use the device's default, f32, which NdArray<f64> shares with NdArray<f32>).
fn tensor<B: Backend, const D: usize>(data: &TensorData) -> Tensor<B, D> {
    let dtype = <B::FloatElem as Element>::dtype();
    Tensor::from_data(
        data.clone().convert::<B::FloatElem>(),
        (&Default::default(), dtype),
    )
}

/// `‖got − want‖₂ / ‖want‖₂`, computed in f64.
fn relative_error<B: Backend, const D: usize>(
    got: Tensor<B, D>,
    want: Tensor<NdArray<f64>, D>,
) -> f64 {
    let got = tensor::<NdArray<f64>, D>(&got.into_data());
    let diff: f64 = (got - want.clone())
        .square()
        .sum()
        .sqrt()
        .into_scalar()
        .elem();
    let norm: f64 = want.square().sum().sqrt().into_scalar().elem();
    diff / norm.max(f64::MIN_POSITIVE)
}

/// The forward output and the gradients of `Σ out ∘ w` (w fixed) with respect to the inputs.
struct Run<B: Backend, const D: usize, const N: usize> {
    out: Tensor<B, D>,
    grads: [Tensor<B, D>; N],
}

/// The kernels are held to 1e-5 of the f64 reference (they measure about 3e-7). Burn's own f32
/// composition is only checked to 1e-4, to show the reference is sound: its softmax and norm
/// backward passes lose digits to cancellation (about 1.7e-5 here).
const KERNEL_TOLERANCE: f64 = 1e-5;
const COMPOSITION_TOLERANCE: f64 = 1e-4;

fn check<B: Backend, const D: usize, const N: usize>(
    what: &str,
    got: Run<B, D, N>,
    want: &Run<NdArray<f64>, D, N>,
    tolerance: f64,
) {
    let err = relative_error(got.out, want.out.clone());
    assert!(err < tolerance, "{what}, output: relative error {err:e}");
    for (i, (g, w)) in got.grads.into_iter().zip(want.grads.clone()).enumerate() {
        let err = relative_error(g, w);
        assert!(
            err < tolerance,
            "{what}, gradient of input {i}: relative error {err:e}"
        );
    }
}

/// Runs `f` on the inputs (all tracked) and backpropagates `Σ out ∘ w`.
fn run<B: AutodiffBackend, const D: usize, const N: usize>(
    inputs: [&TensorData; N],
    f: impl FnOnce([Tensor<B, D>; N]) -> Tensor<B, D>,
) -> Run<B::InnerBackend, D, N> {
    let tracked: [Tensor<B, D>; N] = inputs.map(|d| tensor::<B, D>(d).require_grad());
    let out = f(tracked.clone());
    let w = tensor::<B, D>(&data(&out.dims(), 99, 1.0));
    let grads = (out.clone() * w).sum().backward();
    Run {
        out: out.inner(),
        grads: tracked.map(|t| t.grad(&grads).expect("every input is tracked")),
    }
}

// ---------------------------------------------------------------------------------------------
// Attention

struct Case {
    name: &'static str,
    batch: usize,
    heads: usize,
    tq: usize,
    tk: usize,
    dk: usize,
    dv: usize,
    /// `[mask_rows, tq, tk]`, `true` = hidden.
    mask: Option<(usize, Vec<bool>)>,
}

/// Causal masks over `t` positions with a window, and optionally documents that end every
/// `37 + 11·b` positions in row `b`.
fn block_causal(batch: usize, t: usize, window: usize, docs: bool) -> Vec<bool> {
    let segments: Vec<Vec<u32>> = (0..batch)
        .map(|b| (0..t).map(|i| (i / (37 + 11 * b)) as u32).collect())
        .collect();
    let span = Span { start: 0, len: t };
    let segments = docs.then_some(segments.as_slice());
    local_causal_mask_at::<NdArray>(
        batch,
        span,
        span,
        Some(window),
        segments,
        segments,
        &Default::default(),
    )
    .into_data()
    .to_vec()
    .expect("bool mask")
}

fn cases() -> Vec<Case> {
    let (b, t) = (2, 150);
    // Cross-attention: every fifth query sees nothing, the others a scattered set of keys.
    let scattered: Vec<bool> = (0..b * 40 * 23)
        .map(|i| {
            let (row, key) = ((i / 23) % 40, i % 23);
            row % 5 == 0 || (row * 7 + key * 3) % 4 == 0
        })
        .collect();
    let case = |name, batch, heads, tq, tk, dk, dv, mask| Case {
        name,
        batch,
        heads,
        tq,
        tk,
        dk,
        dv,
        mask,
    };
    vec![
        case(
            "causal, window 48",
            b,
            3,
            t,
            t,
            16,
            16,
            Some((b, block_causal(b, t, 48, false))),
        ),
        case(
            "documents",
            b,
            2,
            t,
            t,
            8,
            8,
            Some((b, block_causal(b, t, t, true))),
        ),
        case(
            "cross, empty rows",
            b,
            2,
            40,
            23,
            8,
            12,
            Some((b, scattered)),
        ),
        case(
            "one mask row for the batch",
            3,
            2,
            70,
            70,
            32,
            32,
            Some((1, block_causal(1, 70, 70, false))),
        ),
        case("no mask", 2, 2, 9, 130, 16, 16, None),
    ]
}

impl Case {
    /// q, k, v: scores of a few units, so softmax rows are neither uniform nor one-hot.
    fn data(&self) -> [TensorData; 3] {
        let (b, h) = (self.batch, self.heads);
        [
            data(&[b, h, self.tq, self.dk], 1, 2.5),
            data(&[b, h, self.tk, self.dk], 2, 2.5),
            data(&[b, h, self.tk, self.dv], 3, 1.0),
        ]
    }

    fn mask<B: Backend>(&self) -> Option<Tensor<B, 3, Bool>> {
        self.mask.as_ref().map(|(rows, m)| {
            Tensor::from_data(
                TensorData::new(m.clone(), [*rows, self.tq, self.tk]),
                &Default::default(),
            )
        })
    }

    fn run<B: AutodiffBackend>(&self, fused: bool) -> Run<B::InnerBackend, 4, 3> {
        let [q, k, v] = self.data();
        run::<B, 4, 3>([&q, &k, &v], |[q, k, v]| {
            let inputs = AttentionInputs {
                q,
                k,
                v,
                mask: self.mask(),
            };
            if fused {
                attention(inputs)
            } else {
                composed_attention(inputs)
            }
        })
    }
}

fn attention_matches<C: CheckpointStrategy>() {
    for case in cases() {
        let want = case.run::<Reference>(false);
        check(
            &format!("{} (kernel)", case.name),
            case.run::<Fast<C>>(true),
            &want,
            KERNEL_TOLERANCE,
        );
        check(
            &format!("{} (composition)", case.name),
            case.run::<Fast<C>>(false),
            &want,
            COMPOSITION_TOLERANCE,
        );
    }
}

#[test]
fn attention_matches_the_composition() {
    attention_matches::<NoCheckpointing>();
}

#[test]
fn attention_matches_the_composition_under_checkpointing() {
    attention_matches::<BalancedCheckpointing>();
}

#[test]
fn attention_without_autodiff_matches() {
    for case in cases() {
        let [q, k, v] = case.data();
        let inputs = AttentionInputs {
            q: tensor::<NdArray, 4>(&q),
            k: tensor(&k),
            v: tensor(&v),
            mask: case.mask(),
        };
        let got = attention(inputs.clone());
        let want = case.run::<Reference>(false).out;
        let err = relative_error(got, want);
        assert!(
            err < KERNEL_TOLERANCE,
            "{}: relative error {err:e}",
            case.name
        );
    }
}

#[test]
fn queries_that_see_nothing_get_zeros_and_zero_gradients() {
    let case = &cases()[2];
    let run = case.run::<Fast<NoCheckpointing>>(true);
    let (_, mask) = case.mask.as_ref().expect("the case has a mask");
    let empty: Vec<usize> = (0..case.batch * case.tq)
        .filter(|r| {
            mask[r * case.tk..(r + 1) * case.tk]
                .iter()
                .all(|&hidden| hidden)
        })
        .collect();
    assert!(!empty.is_empty());
    let out: Vec<f32> = run.out.into_data().to_vec().expect("f32");
    let dq: Vec<f32> = run.grads[0].clone().into_data().to_vec().expect("f32");
    for (values, width) in [(&out, case.dv), (&dq, case.dk)] {
        assert!(values.iter().all(|x| x.is_finite()));
        for &row in &empty {
            let (b, i) = (row / case.tq, row % case.tq);
            for h in 0..case.heads {
                let start = ((b * case.heads + h) * case.tq + i) * width;
                assert!(values[start..start + width].iter().all(|&x| x == 0.0));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Linear and RMSNorm

fn layer<B: Backend>(w: Tensor<B, 2>) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(w),
        bias: None,
    }
}

/// `x: [150, 24]` as `[3, 50, 24]` rows (or a transposed `[3, 24, 50]` view), times `w: [24, 40]`.
fn linear_case<B: Backend>(
    fused: bool,
    transposed: bool,
    [x, w]: [Tensor<B, 2>; 2],
) -> Tensor<B, 2> {
    let x = if transposed {
        x.reshape([3, 24, 50]).swap_dims(1, 2)
    } else {
        x.reshape([3, 50, 24])
    };
    let out = if fused {
        linear(&layer(w), x)
    } else {
        layer(w).forward(x)
    };
    out.reshape([150, 40])
}

#[test]
fn linear_matches_burn() {
    let w = data(&[24, 40], 4, 0.5);
    let x = data(&[150, 24], 5, 1.0);
    for (name, transposed) in [("rows", false), ("strided input", true)] {
        let want = run::<Reference, 2, 2>([&x, &w], |t| linear_case(false, transposed, t));
        let got =
            run::<Fast<NoCheckpointing>, 2, 2>([&x, &w], |t| linear_case(true, transposed, t));
        check(name, got, &want, KERNEL_TOLERANCE);
    }
}

fn norm_case<B: Backend>(fused: bool, [x, g]: [Tensor<B, 3>; 2]) -> Tensor<B, 3> {
    let g = g.reshape([48]);
    if fused {
        rms_norm(x, g, 1e-5)
    } else {
        composed_rms_norm(x, g, 1e-5)
    }
}

#[test]
fn rms_norm_matches_the_composition() {
    let x = data(&[4, 130, 48], 6, 3.0);
    let gamma = data(&[1, 1, 48], 7, 1.5);
    let want = run::<Reference, 3, 2>([&x, &gamma], |t| norm_case(false, t));
    let kernel = run::<Fast<NoCheckpointing>, 3, 2>([&x, &gamma], |t| norm_case(true, t));
    check("kernel", kernel, &want, KERNEL_TOLERANCE);
    let composed = run::<Fast<NoCheckpointing>, 3, 2>([&x, &gamma], |t| norm_case(false, t));
    check("composition", composed, &want, COMPOSITION_TOLERANCE);
}

fn swiglu_case<B: Backend>(fused: bool, [g, u]: [Tensor<B, 3>; 2]) -> Tensor<B, 3> {
    if fused {
        swiglu(g, u)
    } else {
        composed_swiglu(g, u)
    }
}

#[test]
fn swiglu_matches_the_composition() {
    // Gate values far into both tails, where a naive sigmoid overflows.
    let mut gate = data(&[2, 70, 96], 8, 6.0);
    if let Ok(values) = gate.as_mut_slice::<f32>() {
        values[0] = -120.0;
        values[1] = 120.0;
    }
    let up = data(&[2, 70, 96], 9, 2.0);
    let want = run::<Reference, 3, 2>([&gate, &up], |t| swiglu_case(false, t));
    let kernel = run::<Fast<NoCheckpointing>, 3, 2>([&gate, &up], |t| swiglu_case(true, t));
    check("kernel", kernel, &want, KERNEL_TOLERANCE);
    let composed = run::<Fast<NoCheckpointing>, 3, 2>([&gate, &up], |t| swiglu_case(false, t));
    check("composition", composed, &want, COMPOSITION_TOLERANCE);
}

/// Three AdamW steps of the kernel and of the composition (f32 and f64) from the same
/// gradients, with decay, bias corrections that still matter, and gradients of both signs.
fn adamw_steps<B: Backend>(fused: bool, keep_old: bool) -> [Tensor<B, 2>; 3] {
    let shape = [37, 129];
    let mut param = tensor::<B, 2>(&data(&shape, 40, 0.5));
    let mut moments = None;
    for time in 1..=3 {
        let step = AdamWStep {
            lr: 1e-2,
            beta_1: 0.9,
            beta_2: 0.95,
            epsilon: 1e-8,
            weight_decay: 0.1,
            time,
        };
        let grad = tensor::<B, 2>(&data(&shape, 40 + time as u64, 1.0));
        // A clone of the old state kept alive forces the kernel to write beside it.
        let old = keep_old.then(|| (param.clone(), moments.clone()));
        let before = old.as_ref().map(|(p, _)| p.to_data());
        (param, moments) = if fused {
            let (p, m) = adamw(&step, param, grad, moments);
            (p, Some(m))
        } else {
            let (p, m) = composed_adamw(&step, param, grad, moments);
            (p, Some(m))
        };
        if let (Some((p, _)), Some(before)) = (old, before) {
            assert_eq!(
                p.to_data(),
                before,
                "the step changed a parameter someone still holds"
            );
        }
    }
    let Moments { first, second } = moments.expect("three steps were taken");
    [param, first, second]
}

#[test]
fn adamw_matches_the_composition() {
    let want = adamw_steps::<NdArray<f64>>(false, false);
    let composed = adamw_steps::<NdArray>(false, false);
    for keep_old in [false, true] {
        let got = adamw_steps::<NdArray>(true, keep_old);
        let names = ["parameter", "first moment", "second moment"];
        for (i, got) in got.into_iter().enumerate() {
            // The same operations in the same order as Burn's AdamW: within f32 rounding of
            // the f32 composition and of the f64 reference.
            let vs_f32 = relative_error(got.clone(), tensor(&composed[i].to_data()));
            let vs_f64 = relative_error(got, want[i].clone());
            for (err, against) in [(vs_f32, "f32 composition"), (vs_f64, "f64")] {
                assert!(err < 1e-6, "{}: {err:e} from the {against}", names[i]);
            }
        }
    }
}

/// Rotary tables for `x: [batch, seq, 40]`: heads of 8, the first 32 features rotated and 8
/// passing through; arbitrary values (the kernel must not assume the pairs share an angle).
fn rope_case<B: Backend>(fused: bool, x: Tensor<B, 3>, rows: usize) -> Tensor<B, 3> {
    let [_, seq, _] = x.dims();
    let cos = tensor::<B, 3>(&data(&[rows, seq, 8], 21, 1.0));
    let sin = tensor::<B, 3>(&data(&[rows, seq, 8], 22, 1.0));
    if fused {
        rope_flat(x, cos, sin, 32).expect("the kernel takes f32 NdArray tokens")
    } else {
        crate::rope::composed_flat(x, cos, sin, 32)
    }
}

#[test]
fn rope_matches_the_composition() {
    let x = data(&[3, 11, 40], 20, 2.0);
    // One table row per position (a shared offset) and one per batch row (per-row positions).
    for rows in [1, 3] {
        let want = run::<Reference, 3, 1>([&x], |[x]| rope_case(false, x, rows));
        let kernel = run::<Fast<NoCheckpointing>, 3, 1>([&x], |[x]| rope_case(true, x, rows));
        check("kernel", kernel, &want, KERNEL_TOLERANCE);
        let composed = run::<Fast<NoCheckpointing>, 3, 1>([&x], |[x]| rope_case(false, x, rows));
        check("composition", composed, &want, COMPOSITION_TOLERANCE);
    }
}

/// Attention over a fused projection `[batch, seq, 3·heads·dh]`: the kernel, or the heads split
/// off, attended by the composition and merged again.
fn qkv_case<B: Backend>(
    fused: bool,
    qkv: Tensor<B, 3>,
    mask: &[bool],
    heads: usize,
) -> Tensor<B, 3> {
    let [batch, seq, features] = qkv.dims();
    let dh = features / (3 * heads);
    let mask = Tensor::<B, 3, Bool>::from_data(
        TensorData::new(mask.to_vec(), [batch, seq, seq]),
        &Default::default(),
    );
    if fused {
        return qkv_attention(qkv, Some(mask), heads).expect("the kernel takes f32 NdArray");
    }
    let split = qkv.reshape([batch, seq, 3 * heads, dh]).swap_dims(1, 2);
    let part = |i: usize| split.clone().narrow(1, i * heads, heads);
    let inputs = AttentionInputs {
        q: part(0),
        k: part(1),
        v: part(2),
        mask: Some(mask),
    };
    composed_attention(inputs)
        .swap_dims(1, 2)
        .reshape([batch, seq, heads * dh])
}

#[test]
fn qkv_attention_matches_split_heads() {
    let (batch, seq, heads, dh) = (2, 70, 3, 8);
    let qkv = data(&[batch, seq, 3 * heads * dh], 30, 1.5);
    // A causal window with documents: rows that see one key, rows that see many.
    let mask = block_causal(batch, seq, 24, true);
    let want = run::<Reference, 3, 1>([&qkv], |[x]| qkv_case(false, x, &mask, heads));
    let kernel = run::<Fast<NoCheckpointing>, 3, 1>([&qkv], |[x]| qkv_case(true, x, &mask, heads));
    check("kernel", kernel, &want, KERNEL_TOLERANCE);
}
