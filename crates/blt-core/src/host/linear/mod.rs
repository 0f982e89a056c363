//! A linear layer applied to rows: `y = x·W (+ b)`, with the weight kept in `f32`, `bf16` or
//! `int8`, packed by blocks of output columns ([`packed`]), and products of one row or of many
//! ([`product`]).

mod packed;
mod product;

use burn::{nn::Linear, tensor::backend::Backend};

use super::values;
use packed::Matrix;

/// How a host layer stores its weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightPrecision {
    /// As trained: results equal the Burn layer's to float rounding.
    #[default]
    F32,
    /// Rounded to bfloat16 (8 bits of mantissa, round to nearest even), computed in `f32`. Half
    /// the bytes to read per product, which is what a product of one row costs once the weights
    /// outgrow the CPU's cache; each weight moves by at most 2⁻⁹ of itself.
    Bf16,
    /// Symmetric 8-bit integers with one `f32` scale per output column for every 32 input rows
    /// (the largest magnitude of those rows maps to 127), computed in `f32`: 1.125 bytes per
    /// weight, 0.56 of `bf16`'s; each weight moves by at most half a step, 1/254 of its group's
    /// largest.
    Int8,
}

impl WeightPrecision {
    /// Bytes per weight, scales included.
    pub fn bytes_per_weight(self) -> f64 {
        match self {
            Self::F32 => 4.0,
            Self::Bf16 => 2.0,
            Self::Int8 => 1.125,
        }
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even); NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// A [`Linear`] layer's weight `[d_in, d_out]` (row-major, as Burn stores it) and optional
/// bias, on the host.
#[derive(Clone)]
pub struct HostLinear {
    weight: Matrix,
    bias: Option<Vec<f32>>,
    d_in: usize,
    d_out: usize,
}

impl std::fmt::Debug for HostLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLinear")
            .field("d_in", &self.d_in)
            .field("d_out", &self.d_out)
            .field("precision", &self.precision())
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

impl HostLinear {
    /// Copies `layer`'s parameters to the host, the weight in `precision` (the bias stays
    /// `f32`).
    pub fn from_linear<B: Backend>(layer: &Linear<B>, precision: WeightPrecision) -> Self {
        let [d_in, d_out] = layer.weight.dims();
        Self::from_values(
            &values(layer.weight.val()),
            layer.bias.as_ref().map(|b| values(b.val())),
            [d_in, d_out],
            precision,
        )
    }

    /// A layer from a row-major `[d_in, d_out]` weight and an optional bias of `d_out` values.
    ///
    /// # Panics
    /// If the lengths do not match the shape.
    pub fn from_values(
        weight: &[f32],
        bias: Option<Vec<f32>>,
        [d_in, d_out]: [usize; 2],
        precision: WeightPrecision,
    ) -> Self {
        assert_eq!(weight.len(), d_in * d_out, "linear weight shape");
        if let Some(b) = &bias {
            assert_eq!(b.len(), d_out, "linear bias width");
        }
        Self {
            weight: Matrix::pack(weight, d_in, d_out, precision),
            bias,
            d_in,
            d_out,
        }
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// How the weight is stored.
    pub fn precision(&self) -> WeightPrecision {
        self.weight.precision()
    }

    /// Bytes of the weight and bias: what one product reads.
    pub fn bytes(&self) -> usize {
        self.weight.bytes() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    /// `x·W (+ b)` for one row `x` of `d_in` values.
    ///
    /// # Panics
    /// If `x` does not have `d_in` values.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.d_in, "linear input width");
        self.apply_rows(x)
    }

    /// [`apply`](Self::apply) into `y` (`d_out` values, overwritten).
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn apply_into(&self, x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), self.d_in, "linear input width");
        assert_eq!(y.len(), self.d_out, "linear output width");
        self.rows_into(x, 1, y);
    }

    /// Applies the layer to each row of `x` (row-major, `d_in` values each). Many rows share
    /// each pass over the weight, so this costs far less than a product per row.
    ///
    /// # Panics
    /// If `x` is not a whole number of rows.
    pub fn apply_rows(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len() % self.d_in.max(1), 0, "linear input width");
        let rows = x.len() / self.d_in.max(1);
        let mut y = vec![0.0; rows * self.d_out];
        self.rows_into(x, rows, &mut y);
        y
    }

    fn rows_into(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        match &self.bias {
            Some(b) => y
                .chunks_exact_mut(self.d_out)
                .for_each(|y| y.copy_from_slice(b)),
            None => y.fill(0.0),
        }
        if rows > 0 && self.d_in > 0 {
            product::product(&self.weight, x, rows, self.d_out, y);
        }
    }
}
