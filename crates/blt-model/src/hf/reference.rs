//! Reference logits (`REF.json`) and the check of a model against them.
//!
//! The format is what a script writes from transformers: `input_ids` (a list of ids, BOS
//! included, or a list of such lists), optional `patch_lengths` (the same nesting; without
//! them our own patcher cuts the rows) and `logits` (`[T][260]`, or `[B][T][260]`).

use burn::tensor::backend::Backend;
use serde_json::Value;

use crate::{
    blt::Blt,
    config::BltConfig,
    entropy::EntropyModel,
    error::{ModelError, Result},
    input::{BltInput, RowPreparer},
};

/// One reference row.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceRow {
    /// Input ids, BOS first.
    pub input_ids: Vec<u32>,
    /// Patch lengths, when the reference fixes them.
    pub patch_lengths: Option<Vec<usize>>,
    /// Expected logits, `[T · 260]` row-major.
    pub logits: Vec<f32>,
}

fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::InvalidInput(format!("reference file: {}", message.into()))
}

/// `[a, b, …]` or `[[a, …], …]` as rows of unsigned integers.
fn nested_ints(value: &Value, field: &str) -> Result<Vec<Vec<u64>>> {
    let outer = value
        .as_array()
        .ok_or_else(|| invalid(format!("{field} is not a list")))?;
    let row = |v: &Value| -> Result<Vec<u64>> {
        v.as_array()
            .ok_or_else(|| invalid(format!("{field} mixes lists and numbers")))?
            .iter()
            .map(|x| {
                x.as_u64()
                    .ok_or_else(|| invalid(format!("{field} holds {x}, not a count")))
            })
            .collect()
    };
    if outer.first().is_some_and(Value::is_array) {
        outer.iter().map(row).collect()
    } else {
        Ok(vec![row(value)?])
    }
}

/// `[T][260]` or `[B][T][260]` as one flat vector per row.
fn nested_logits(value: &Value) -> Result<Vec<Vec<f32>>> {
    let depth = {
        let mut d = 0;
        let mut v = value;
        while let Some(first) = v.as_array().and_then(|a| a.first()) {
            d += 1;
            v = first;
        }
        d
    };
    let flat = |rows: &Value| -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for position in rows.as_array().into_iter().flatten() {
            let values = position
                .as_array()
                .ok_or_else(|| invalid("logits rows are not lists"))?;
            if values.len() != 260 {
                return Err(invalid(format!(
                    "a logits row has {} values, not 260",
                    values.len()
                )));
            }
            for x in values {
                out.push(
                    x.as_f64()
                        .ok_or_else(|| invalid(format!("logit {x} is not a number")))?
                        as f32,
                );
            }
        }
        Ok(out)
    };
    match depth {
        2 => Ok(vec![flat(value)?]),
        3 => value.as_array().into_iter().flatten().map(flat).collect(),
        _ => Err(invalid("logits must be [T][260] or [B][T][260]")),
    }
}

/// Parses `REF.json` text.
pub fn parse_reference(text: &str) -> Result<Vec<ReferenceRow>> {
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let ids = nested_ints(&value["input_ids"], "input_ids")?;
    let lengths = match value.get("patch_lengths") {
        None | Some(Value::Null) => None,
        Some(v) => Some(nested_ints(v, "patch_lengths")?),
    };
    let logits = nested_logits(&value["logits"])?;
    if logits.len() != ids.len() || lengths.as_ref().is_some_and(|l| l.len() != ids.len()) {
        return Err(invalid(
            "input_ids, patch_lengths and logits hold different numbers of rows",
        ));
    }
    ids.into_iter()
        .enumerate()
        .map(|(r, ids)| {
            let input_ids = ids
                .iter()
                .map(|&id| u32::try_from(id).ok().filter(|&id| id < 260))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| invalid(format!("row {}: an id is not below 260", r + 1)))?;
            if logits[r].len() != input_ids.len() * 260 {
                return Err(invalid(format!(
                    "row {}: {} positions of logits for {} ids",
                    r + 1,
                    logits[r].len() / 260,
                    input_ids.len()
                )));
            }
            Ok(ReferenceRow {
                input_ids,
                patch_lengths: lengths
                    .as_ref()
                    .map(|l| l[r].iter().map(|&x| x as usize).collect()),
                logits: logits[r].clone(),
            })
        })
        .collect()
}

/// The largest absolute logit difference of each row against the reference (see
/// [`logit_diffs_by_position`]).
pub fn max_logit_diffs<B: Backend>(
    model: &Blt<B>,
    config: &BltConfig,
    entropy_model: Option<&EntropyModel<B>>,
    rows: &[ReferenceRow],
    device: &B::Device,
) -> Result<Vec<f32>> {
    Ok(
        logit_diffs_by_position(model, config, entropy_model, rows, device)?
            .into_iter()
            .map(|row| row.into_iter().fold(0.0, f32::max))
            .collect(),
    )
}

/// The largest absolute logit difference at each position of each row against the
/// reference, the rows run as one batch (a NaN on either side counts as infinite). Rows
/// without patch lengths are cut by the model's own patcher (entropy patching needs
/// `entropy_model`).
pub fn logit_diffs_by_position<B: Backend>(
    model: &Blt<B>,
    config: &BltConfig,
    entropy_model: Option<&EntropyModel<B>>,
    rows: &[ReferenceRow],
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let preparer = RowPreparer::new(config)?;
    let prepared = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let at = |e: ModelError| ModelError::InvalidInput(format!("row {}: {e}", r + 1));
            match &row.patch_lengths {
                Some(lengths) => preparer
                    .prepare_with_lengths(row.input_ids.clone(), lengths)
                    .map_err(at),
                None => {
                    let h = match entropy_model {
                        Some(e) => Some(
                            e.entropies(&[&row.input_ids], config.entropy_resets(), device)?
                                .remove(0),
                        ),
                        None => None,
                    };
                    preparer
                        .prepare(row.input_ids.clone(), h.as_deref())
                        .map_err(at)
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let input = BltInput::<B>::from_rows(config, &prepared, device)?;
    let seq = input.seq_len();
    let logits: Vec<f32> = model
        .forward(&input)
        .logits
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 logits");
    Ok(rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let ours = &logits[r * seq * 260..(r * seq + row.input_ids.len()) * 260];
            ours.chunks_exact(260)
                .zip(row.logits.chunks_exact(260))
                .map(|(ours, theirs)| {
                    ours.iter()
                        .zip(theirs)
                        // A NaN on either side is the worst difference, not one `max` skips.
                        .map(|(a, b)| (a - b).abs())
                        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
                        .fold(0.0, f32::max)
                })
                .collect()
        })
        .collect())
}
