//! Export: our model as a directory that transformers' `BltForCausalLM.from_pretrained` reads
//! (`config.json` and an f32 `model.safetensors`).
//!
//! Only what transformers' BLT computes can go out: cross-attention pooling, standard
//! attention, no hierarchical memory, and for entropy patching the global threshold rule with
//! the entropy model included. transformers has no document masking: a model with
//! `document_mask` on (the default) gives the same logits there on any input without an EOS,
//! and one with it off gives the same logits on every input.

use std::path::Path;

use burn::{
    module::Param,
    tensor::{Tensor, backend::Backend},
};
use serde_json::{Value, json};

use super::{
    CONFIG_FILE, SINGLE_FILE,
    names::{self, Visitor},
    safetensors::write_f32_with,
};
use crate::{
    blt::Blt,
    config::{BltConfig, PatchingKind, Pooling},
    entropy::EntropyModel,
    error::{ModelError, Result},
    io::{initialize, io_err},
};

type Named = (String, Vec<f32>, Vec<usize>);

/// Collects every parameter under its transformers name, in torch's layout.
struct Collector {
    tensors: Vec<Named>,
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> (Vec<f32>, Vec<usize>) {
    let shape = t.dims().to_vec();
    let values = t
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("parameters convert to f32");
    (values, shape)
}

impl<B: Backend> Visitor<B> for Collector {
    fn projection(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let (values, shape) = host(weight.val().transpose());
        self.tensors.push((format!("{name}.weight"), values, shape));
        Ok(())
    }

    fn qkv(&mut self, names: [&str; 3], weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let [_, three_w] = weight.dims();
        let w = three_w / 3;
        for (i, name) in names.into_iter().enumerate() {
            let part = weight.val().narrow(1, i * w, w).transpose();
            let (values, shape) = host(part);
            self.tensors.push((format!("{name}.weight"), values, shape));
        }
        Ok(())
    }

    fn table(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let (values, shape) = host(weight.val());
        self.tensors.push((name.to_string(), values, shape));
        Ok(())
    }

    fn vector(&mut self, name: &str, gain: &mut Param<Tensor<B, 1>>) -> Result<()> {
        let (values, shape) = host(gain.val());
        self.tensors.push((name.to_string(), values, shape));
        Ok(())
    }
}

fn unsupported(what: &str) -> ModelError {
    ModelError::InvalidConfig(format!(
        "cannot export to the Hugging Face format: {what}, which transformers' BLT does not have"
    ))
}

/// Refuses configs that transformers' BLT would compute differently.
fn check_exportable(config: &BltConfig, has_entropy_model: bool) -> Result<()> {
    if config.pooling != Pooling::CrossAttention {
        return Err(unsupported("pooling is not cross_attention"));
    }
    if config.attention != blt_core::AttentionKind::default() {
        return Err(unsupported("attention is differential"));
    }
    if config.hierarchical_memory {
        return Err(unsupported("hierarchical_memory is on"));
    }
    if config.patching == PatchingKind::Entropy {
        if !has_entropy_model {
            return Err(unsupported("entropy patching without its entropy model"));
        }
        if config.monotonic_entropy {
            return Err(unsupported("monotonic_entropy is on"));
        }
        if config.min_patch_size > 1 {
            return Err(unsupported("min_patch_size is above 1"));
        }
        if config.reset_entropy_context {
            return Err(unsupported("reset_entropy_context is on"));
        }
    }
    Ok(())
}

/// What every transformer stack's sub-config states.
fn stack(
    c: &BltConfig,
    hidden: usize,
    heads: usize,
    layers: usize,
    intermediate: usize,
    theta: f64,
) -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "num_hidden_layers": layers,
        "intermediate_size": intermediate,
        "head_dim": hidden / heads,
        "rms_norm_eps": c.norm_eps,
        "rope_parameters": { "rope_theta": theta, "rope_type": "default" },
        "hidden_act": "silu",
        "dropout": 0.0,
        "max_position_embeddings": c.max_position_embeddings,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// transformers' `config.json` for `config`.
pub fn hf_config_json(config: &BltConfig, has_entropy_model: bool) -> Value {
    let c = config;
    let local = |layers: usize, intermediate: usize, cross_attn_all_layers: bool| {
        let mut map = stack(
            c,
            c.hidden_size,
            c.num_heads,
            layers,
            intermediate,
            c.rope_theta,
        );
        map.insert("vocab_size".into(), json!(260));
        map.insert("cross_attn_k".into(), json!(c.cross_attn_k));
        map.insert("hidden_size_global".into(), json!(c.global_hidden_size));
        map.insert("sliding_window".into(), json!(c.window_size));
        map.insert("cross_attn_all_layers".into(), json!(cross_attn_all_layers));
        map
    };
    let encoder = local(c.encoder_layers, c.intermediate_size, false);
    let decoder = local(c.decoder_layers, c.decoder_ffn(), true);
    let global = stack(
        c,
        c.global_hidden_size,
        c.global_num_heads,
        c.global_layers,
        c.global_intermediate_size,
        c.rope_theta,
    );
    let mut top = json!({
        "architectures": ["BltForCausalLM"],
        "model_type": "blt",
        "vocab_size": 260,
        "bos_token_id": blt_patching::BOS_ID,
        "eos_token_id": blt_patching::EOS_ID,
        "max_position_embeddings": c.max_position_embeddings,
        "patch_in_forward": c.patching == PatchingKind::Entropy,
        "patch_size": c.patch_stride,
        "patching_mode": match c.patching {
            PatchingKind::Entropy => "entropy",
            PatchingKind::Fixed => "static",
            PatchingKind::Space => "space",
            PatchingKind::Byte => "byte",
        },
        "patching_threshold": c.entropy_threshold,
        "max_patch_length": (c.max_patch_size > 0).then_some(c.max_patch_size),
        "local_attention_window_len": c.window_size,
        "cross_attn_k": c.cross_attn_k,
        "encoder_hash_byte_group_size": c.ngram_sizes,
        "encoder_hash_byte_group_vocab": c.ngram_vocab_size,
        "encoder_hash_byte_group_nb_functions": 1,
        "tie_word_embeddings": false,
        "blt_document_mask": c.document_mask,
        "dtype": "float32",
        "encoder_config": encoder,
        "decoder_config": decoder,
        "global_config": global,
    });
    if has_entropy_model {
        let mut patcher = stack(
            c,
            c.entropy_hidden_size,
            c.entropy_num_heads,
            c.entropy_model_layers,
            c.entropy_intermediate_size,
            c.entropy_rope_theta,
        );
        patcher.insert("vocab_size".into(), json!(260));
        patcher.insert("sliding_window".into(), json!(c.entropy_context_size));
        top["patcher_config"] = Value::Object(patcher);
    }
    top
}

/// Writes `dir/config.json` and `dir/model.safetensors` (f32). `dir` is created if needed.
pub fn export_hf<B: Backend>(
    dir: &Path,
    config: &BltConfig,
    model: &Blt<B>,
    entropy_model: Option<&EntropyModel<B>>,
) -> Result<()> {
    export_hf_with(dir, config, model, entropy_model, &())
}

/// [`export_hf`] reporting the tensors written to `progress` (task `"tensors written"`).
pub fn export_hf_with<B: Backend>(
    dir: &Path,
    config: &BltConfig,
    model: &Blt<B>,
    entropy_model: Option<&EntropyModel<B>>,
    progress: &dyn blt_core::Progress,
) -> Result<()> {
    check_exportable(config, entropy_model.is_some())?;
    let mut collector = Collector {
        tensors: Vec::new(),
    };
    // A clone of a parameter that was never read draws its own values: read them all first.
    initialize(model);
    let mut model = model.clone();
    names::blt_body::<B>(&mut collector, &mut model)?;
    Visitor::<B>::projection(&mut collector, names::HEAD, &mut model.decoder.head.weight)?;
    if let Some(entropy) = entropy_model {
        initialize(entropy);
        names::patcher::<B>(&mut collector, &mut entropy.clone())?;
    }
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    write_f32_with(&dir.join(SINGLE_FILE), &collector.tensors, progress)?;
    let text = serde_json::to_string_pretty(&hf_config_json(config, entropy_model.is_some()))
        .expect("the config serialises");
    let path = dir.join(CONFIG_FILE);
    blt_core::fs::write_atomically(&path, (text + "\n").as_bytes())
        .map_err(io_err("writing", &path))
}
