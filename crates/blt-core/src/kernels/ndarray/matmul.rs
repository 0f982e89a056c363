//! Matrix products for the CPU kernels, on the `gemm` crate's packed kernels.
//!
//! `gemm` picks AVX-512, AVX2+FMA or NEON code at run time; the `matrixmultiply` crate under
//! `ndarray`'s `dot` stops at AVX2. On the benchmark's products (for example `[1152, 512] ×
//! [512, 2048]` and `[4096, 256] × [256, 1024]`) `gemm` ran 1.2–1.6× faster on an AVX-512 CPU,
//! measured in one process (`docs/performance.md`).
//!
//! This is the workspace's one module with `unsafe` code. `gemm::gemm` takes raw pointers and
//! element strides; the safe functions here take `ndarray` views, which already guarantee that
//! every `(row, column)` inside their shape is a valid element at `row·row_stride +
//! column·column_stride`, and check that the shapes agree before the call. The output is a
//! `&mut` view, so it cannot alias either input.
#![allow(unsafe_code)]

use gemm::Parallelism;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

use super::skinny;
use crate::kernels::{Kernel, enabled};

/// How many threads a product may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::kernels) enum Threads {
    /// All of rayon's pool (a product on its own).
    Pool,
    /// Only the calling thread (a product inside a task that is already parallel).
    One,
}

impl Threads {
    fn parallelism(self) -> Parallelism {
        match self {
            Threads::Pool => match rayon::current_num_threads() {
                0 | 1 => Parallelism::None,
                n => Parallelism::Rayon(n),
            },
            Threads::One => Parallelism::None,
        }
    }
}

/// `a · b` as a new standard-layout matrix. The output is not zeroed first: `gemm` writes
/// every element (zeroing the largest activations of the model, serially, cost about as much
/// as the elementwise kernels did).
pub(in crate::kernels) fn matmul(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    threads: Threads,
) -> Array2<f32> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "matmul: inner dimensions differ");
    if !enabled(Kernel::Gemm) || m == 0 || n == 0 || k == 0 {
        let mut c = Array2::zeros((m, n));
        gemm_into(1.0, a, b, 0.0, &mut c.view_mut(), threads);
        return c;
    }
    if threads == Threads::Pool && enabled(Kernel::Gemv) && skinny::takes(a, b) {
        return skinny::product(a, b);
    }
    let mut c = Array2::<f32>::uninit((m, n));
    let strides = (c.strides()[0], c.strides()[1]);
    // SAFETY: `c` is a fresh `[m, n]` allocation of `MaybeUninit<f32>` (the layout of `f32`),
    // valid for writes at `strides` and overlapping neither input; with `beta` zero `gemm`
    // never reads it and writes every one of its `m · n` elements, so it is initialised when
    // `assume_init` runs. The shapes agree and are non-empty (checked above).
    unsafe {
        gemm_raw(
            1.0,
            a,
            b,
            0.0,
            c.as_mut_ptr().cast::<f32>(),
            strides,
            threads,
        );
        c.assume_init()
    }
}

/// `dst = alpha · a · b + beta · dst` on `gemm`'s kernels, `dst` being `[m, n]` at `dst` with
/// row and column strides `dst_strides`; `dst` is read only when `beta` is not zero.
///
/// # Safety
/// `a` is `[m, k]` and `b` is `[k, n]` with `m`, `k`, `n` all non-zero; every element of the
/// `[m, n]` region at `dst` with `dst_strides` is valid for writes (and, when `beta` is not
/// zero, for reads of initialised values), and the region overlaps neither `a` nor `b`.
unsafe fn gemm_raw(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    dst: *mut f32,
    (dst_rs, dst_cs): (isize, isize),
    threads: Threads,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    // SAFETY: the views guarantee that every element `gemm` addresses in `a` and `b` through
    // these base pointers and strides lies inside them; the caller guarantees the same for
    // `dst`. `gemm` computes `dst = dst_scale · dst + product_scale · lhs · rhs`, reading
    // `dst` only when told to (`beta != 0`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            beta != 0.0,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            threads.parallelism(),
        );
    }
}

/// `c = alpha · a · b + beta · c`. A `beta` of zero overwrites `c` without reading it.
///
/// # Panics
/// If the shapes do not agree: `a` is `[m, k]`, `b` is `[k, n]` and `c` is `[m, n]`.
pub(in crate::kernels) fn gemm_into(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
    threads: Threads,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "matmul: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "matmul: output shape differs");
    if !enabled(Kernel::Gemm) {
        general_mat_mul(alpha, a, b, beta, c);
        return;
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: `gemm` is not asked to handle it.
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.mapv_inplace(|v| beta * v);
        }
        return;
    }
    let strides = (c.strides()[0], c.strides()[1]);
    // SAFETY: the shapes agree and are non-empty (checked above); `c` is a live view of
    // initialised `[m, n]` elements at `strides`, borrowed mutably and so overlapping neither
    // input.
    unsafe { gemm_raw(alpha, a, b, beta, c.as_mut_ptr(), strides, threads) }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2, s};

    use super::{Threads, gemm_into, matmul};

    /// A matrix of varied, exactly representable values.
    fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 8.0 - 1.375
        })
    }

    /// `alpha · a · b + beta · c` accumulated in f64.
    fn reference(
        alpha: f32,
        a: &ArrayView2<'_, f32>,
        b: &ArrayView2<'_, f32>,
        beta: f32,
        c: &Array2<f32>,
    ) -> Array2<f32> {
        Array2::from_shape_fn(c.dim(), |(i, j)| {
            let dot: f64 = (0..a.ncols())
                .map(|p| f64::from(a[[i, p]]) * f64::from(b[[p, j]]))
                .sum();
            (f64::from(alpha) * dot + f64::from(beta) * f64::from(c[[i, j]])) as f32
        })
    }

    fn assert_close(got: &Array2<f32>, want: &Array2<f32>) {
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-5 * scale, "got {g}, want {w}");
        }
    }

    #[test]
    fn products_match_f64_for_every_layout() {
        // Large enough for the packed, multi-threaded path; odd sizes leave partial tiles.
        let (m, k, n) = (67, 130, 45);
        let a = filled(m, k, 1);
        let b = filled(k, n, 2);
        let a_t = filled(k, m, 3);
        let b_t = filled(n, k, 4);
        let wide = filled(m, 2 * k, 5);
        let cases: Vec<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> = vec![
            (a.view(), b.view()),
            (a_t.t(), b.view()),
            (a.view(), b_t.t()),
            (a_t.t(), b_t.t()),
            // Every other column: a stride of two.
            (wide.slice(s![.., ..;2]), b.view()),
            // Rows in reverse: a negative stride.
            (a.slice(s![..;-1, ..]), b.slice(s![.., ..;-1])),
        ];
        for (lhs, rhs) in cases {
            for threads in [Threads::Pool, Threads::One] {
                let want = reference(1.0, &lhs, &rhs, 0.0, &Array2::zeros((m, n)));
                assert_close(&matmul(&lhs, &rhs, threads), &want);
                let c0 = filled(m, n, 6);
                let mut c = c0.clone();
                gemm_into(0.5, &lhs, &rhs, -2.0, &mut c.view_mut(), threads);
                assert_close(&c, &reference(0.5, &lhs, &rhs, -2.0, &c0));
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_scales_the_output() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 4));
        let mut c = filled(3, 4, 1);
        let want = c.mapv(|v| 3.0 * v);
        gemm_into(
            1.0,
            &a.view(),
            &b.view(),
            3.0,
            &mut c.view_mut(),
            Threads::Pool,
        );
        assert_eq!(c, want);
        assert_eq!(
            matmul(&a.view(), &b.view(), Threads::One),
            Array2::<f32>::zeros((3, 4))
        );
    }
}
