//! Attention-mask builders. Every mask here is boolean with **`true` = masked** (the Burn
//! convention), shaped `[batch, queries, keys]`; attention layers broadcast it over heads.
//!
//! Self-attention masks are *local block-causal* (reference §5, §8): a query at absolute
//! position `p` sees a key at position `s` iff `s ≤ p`, `p − s < window` and both lie in the
//! same document segment (segments end at, and include, each end-of-document marker).

use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

/// Segment id of every position, given which positions end a document: position `p` belongs
/// to segment `#{ends before p}`, so an end marker belongs to the document it closes.
///
/// ```
/// let seg = blt_core::mask::segment_ids([false, true, false, false, true, false]);
/// assert_eq!(seg, vec![0, 0, 1, 1, 1, 2]);
/// ```
pub fn segment_ids(ends: impl IntoIterator<Item = bool>) -> Vec<u32> {
    let mut current = 0;
    ends.into_iter()
        .map(|end| {
            let id = current;
            current += u32::from(end);
            id
        })
        .collect()
}

/// Where a block of queries and keys sit in a sequence, for [`local_causal_mask_at`].
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Absolute position of the first element.
    pub start: usize,
    /// Number of elements.
    pub len: usize,
}

/// Local block-causal mask for queries and keys at arbitrary absolute positions, as a KV cache
/// needs: queries `q`, keys `k`, an optional window (in keys, the query itself included), and
/// optional per-row segment ids for the queries and the keys.
///
/// # Shapes
/// - q_segments: `batch` rows of `q.len` ids; k_segments: `batch` rows of `k.len` ids
/// - output: `[batch, q.len, k.len]`
#[allow(clippy::too_many_arguments)]
pub fn local_causal_mask_at<B: Backend>(
    batch: usize,
    q: Span,
    k: Span,
    window: Option<usize>,
    q_segments: Option<&[Vec<u32>]>,
    k_segments: Option<&[Vec<u32>]>,
    device: &B::Device,
) -> Tensor<B, 3, Bool> {
    let window = window.unwrap_or(usize::MAX);
    let rows = if q_segments.is_some() || k_segments.is_some() {
        batch
    } else {
        1
    };
    let mut data = Vec::with_capacity(rows * q.len * k.len);
    for b in 0..rows {
        for i in 0..q.len {
            let p = q.start + i;
            let qs = q_segments.map(|s| s[b][i]);
            for j in 0..k.len {
                let s = k.start + j;
                let visible = s <= p
                    && p - s < window
                    && match (qs, k_segments) {
                        (Some(a), Some(ks)) => ks[b][j] == a,
                        _ => true,
                    };
                data.push(!visible);
            }
        }
    }
    let mask = Tensor::<B, 3, Bool>::from_data(TensorData::new(data, [rows, q.len, k.len]), device);
    if rows == batch {
        mask
    } else {
        mask.expand([batch, q.len, k.len])
    }
}

/// Local block-causal self-attention mask over a whole sequence of `seq_len` positions.
///
/// # Shapes
/// - segments: `batch` rows of `seq_len` ids (see [`segment_ids`])
/// - output: `[batch, seq_len, seq_len]`
///
/// ```
/// use burn::backend::NdArray;
/// let mask = blt_core::mask::local_causal_mask::<NdArray>(1, 3, Some(2), None, &Default::default());
/// let data: Vec<bool> = mask.into_data().to_vec().unwrap();
/// // Row p sees keys p-1 and p only.
/// assert_eq!(data, vec![false, true, true, false, false, true, true, false, false]);
/// ```
pub fn local_causal_mask<B: Backend>(
    batch: usize,
    seq_len: usize,
    window: Option<usize>,
    segments: Option<&[Vec<u32>]>,
    device: &B::Device,
) -> Tensor<B, 3, Bool> {
    let span = Span {
        start: 0,
        len: seq_len,
    };
    local_causal_mask_at(batch, span, span, window, segments, segments, device)
}

/// Mask letting query `i` see key `j` only when their group ids are equal, e.g. patch
/// membership for cross-attention. Give padding a group id that matches nothing (e.g. −1 on
/// one side only).
///
/// # Shapes
/// - query_groups: `[batch, queries]`
/// - key_groups: `[batch, keys]`
/// - output: `[batch, queries, keys]`
pub fn group_mask<B: Backend>(
    query_groups: Tensor<B, 2, Int>,
    key_groups: Tensor<B, 2, Int>,
) -> Tensor<B, 3, Bool> {
    let [batch, tq] = query_groups.dims();
    let tk = key_groups.dims()[1];
    let q = query_groups.reshape([batch, tq, 1]).expand([batch, tq, tk]);
    let k = key_groups.reshape([batch, 1, tk]).expand([batch, tq, tk]);
    q.not_equal(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    fn to_vec(mask: Tensor<TestBackend, 3, Bool>) -> Vec<bool> {
        mask.into_data().to_vec().unwrap()
    }

    #[test]
    fn causal_window_and_segments() {
        let device = Default::default();
        let segs = vec![segment_ids([false, true, false, false])];
        let m = to_vec(local_causal_mask::<TestBackend>(
            1,
            4,
            Some(2),
            Some(&segs),
            &device,
        ));
        #[rustfmt::skip]
        let expected = vec![
            false, true,  true,  true,
            false, false, true,  true,
            true,  true,  false, true,  // new document: cannot see 0..=1
            true,  true,  false, false, // window 2: sees 2 and 3
        ];
        assert_eq!(m, expected);
    }

    #[test]
    fn offset_block_matches_full_mask_rows() {
        let device = Default::default();
        let full = to_vec(local_causal_mask::<TestBackend>(
            1,
            6,
            Some(3),
            None,
            &device,
        ));
        let step = to_vec(local_causal_mask_at::<TestBackend>(
            1,
            Span { start: 5, len: 1 },
            Span { start: 2, len: 4 },
            Some(3),
            None,
            None,
            &device,
        ));
        assert_eq!(step, full[5 * 6 + 2..5 * 6 + 6].to_vec());
    }

    #[test]
    fn group_mask_matches_equal_ids() {
        let device = Default::default();
        let q = Tensor::<TestBackend, 2, Int>::from_ints([[0, 1]], &device);
        let k = Tensor::<TestBackend, 2, Int>::from_ints([[0, 0, 1, -1]], &device);
        let m = to_vec(group_mask(q, k));
        assert_eq!(m, vec![false, false, true, true, true, true, false, true]);
    }
}
