//! Hugging Face BLT tensor names onto our modules.
//!
//! torch stores a linear layer's weight as `[out, in]` and Burn as `[in, out]`, so every
//! projection is transposed; the separate `q_proj`, `k_proj` and `v_proj` of a self-attention
//! become the columns of our fused `qkv` (queries, then keys, then values); norms' `weight` is
//! our `gamma`. Every tensor's shape is checked against the module built from the translated
//! config before it replaces the parameter.

use blt_core::{CrossAttention, RmsNorm, SwiGlu, TransformerBlock};
use burn::{
    module::Param,
    nn::{Embedding, Linear},
    tensor::{Tensor, TensorData, backend::Backend},
};

use super::safetensors::{Checkpoint, HostTensor};
use crate::{
    blt::Blt,
    decoder::LocalDecoder,
    embedding::ByteEmbedding,
    encoder::LocalEncoder,
    entropy::EntropyModel,
    error::{ModelError, Result},
    global::GlobalTransformer,
};

/// Reads tensors into modules on one device.
pub(super) struct Loader<'a, B: Backend> {
    pub ckpt: &'a mut Checkpoint,
    pub device: &'a B::Device,
}

impl<B: Backend> Loader<'_, B> {
    fn mismatch(&self, name: &str, found: &[usize], expected: &[usize]) -> ModelError {
        ModelError::Weights {
            path: self.ckpt.path().to_path_buf(),
            message: format!("tensor {name} has shape {found:?}, the config asks for {expected:?}"),
        }
    }

    /// `name` with exactly `shape`.
    fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        if let Some(found) = self.ckpt.shape(name)
            && found != shape
        {
            return Err(self.mismatch(name, found, shape));
        }
        self.ckpt.take(name)
    }

    fn matrix(&self, t: HostTensor) -> Tensor<B, 2> {
        let [rows, cols] = [t.shape[0], t.shape[1]];
        Tensor::from_data(TensorData::new(t.values, [rows, cols]), self.device)
    }

    /// torch `[out, in]` as Burn `[in, out]`.
    fn projection(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Tensor<B, 2>> {
        let t = self.host(name, &[d_out, d_in])?;
        Ok(self.matrix(t).transpose())
    }

    fn linear(&mut self, name: &str, linear: &mut Linear<B>) -> Result<()> {
        let [d_in, d_out] = linear.weight.dims();
        let w = self.projection(&format!("{name}.weight"), d_in, d_out)?;
        linear.weight = Param::from_tensor(w);
        Ok(())
    }

    fn norm(&mut self, name: &str, norm: &mut RmsNorm<B>) -> Result<()> {
        let [d] = norm.gamma.dims();
        let t = self.host(&format!("{name}.weight"), &[d])?;
        norm.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(t.values, [d]),
            self.device,
        ));
        Ok(())
    }

    fn embedding(&mut self, name: &str, embedding: &mut Embedding<B>) -> Result<()> {
        let [rows, d] = embedding.weight.dims();
        let t = self.host(&format!("{name}.weight"), &[rows, d])?;
        embedding.weight = Param::from_tensor(self.matrix(t));
        Ok(())
    }

    fn ffn(&mut self, name: &str, ffn: &mut SwiGlu<B>) -> Result<()> {
        self.linear(&format!("{name}.gate_proj"), &mut ffn.gate)?;
        self.linear(&format!("{name}.up_proj"), &mut ffn.up)?;
        self.linear(&format!("{name}.down_proj"), &mut ffn.down)
    }

    /// `{prefix}.layers.{i}` onto a pre-norm block.
    fn block(&mut self, name: &str, block: &mut TransformerBlock<B>) -> Result<()> {
        let [d, three_d] = block.attention.qkv.weight.dims();
        let width = three_d / 3;
        let parts = ["q_proj", "k_proj", "v_proj"]
            .into_iter()
            .map(|p| self.projection(&format!("{name}.self_attn.{p}.weight"), d, width))
            .collect::<Result<Vec<_>>>()?;
        block.attention.qkv.weight = Param::from_tensor(Tensor::cat(parts, 1));
        self.linear(
            &format!("{name}.self_attn.o_proj"),
            &mut block.attention.output,
        )?;
        self.norm(
            &format!("{name}.input_layernorm"),
            &mut block.attention_norm,
        )?;
        self.norm(
            &format!("{name}.post_attention_layernorm"),
            &mut block.ffn_norm,
        )?;
        self.ffn(&format!("{name}.mlp"), &mut block.ffn)
    }

    fn blocks(&mut self, prefix: &str, blocks: &mut [TransformerBlock<B>]) -> Result<()> {
        for (i, block) in blocks.iter_mut().enumerate() {
            self.block(&format!("{prefix}.layers.{i}"), block)?;
        }
        Ok(())
    }

    fn cross(&mut self, name: &str, cross: &mut CrossAttention<B>) -> Result<()> {
        self.linear(&format!("{name}.q_proj"), &mut cross.wq)?;
        self.linear(&format!("{name}.k_proj"), &mut cross.wk)?;
        self.linear(&format!("{name}.v_proj"), &mut cross.wv)?;
        self.linear(&format!("{name}.o_proj"), &mut cross.wo)?;
        self.norm(&format!("{name}.q_norm"), &mut cross.query_norm)?;
        self.norm(&format!("{name}.k_norm"), &mut cross.kv_norm)
    }

    fn byte_embedding(&mut self, embedding: &mut ByteEmbedding<B>) -> Result<()> {
        self.embedding("model.local_encoder.embed_tokens", &mut embedding.bytes)?;
        match &mut embedding.ngrams {
            Some(table) => self.embedding("model.encoder_hash_tok_embedding", table),
            None => Ok(()),
        }
    }

    fn encoder(&mut self, encoder: &mut LocalEncoder<B>) -> Result<()> {
        let p = "model.local_encoder";
        self.blocks(p, &mut encoder.blocks)?;
        self.linear(
            &format!("{p}.patch_embedding_projection"),
            &mut encoder.patch_projection,
        )?;
        match &mut encoder.cross_attention {
            Some(cross) => self.cross(&format!("{p}.cross_attn_layers.0"), cross),
            None => Ok(()),
        }
    }

    fn global(&mut self, global: &mut GlobalTransformer<B>) -> Result<()> {
        let p = "model.global_transformer";
        if let Some(projection) = &mut global.input_projection {
            self.linear(&format!("{p}.token_embedding_projection"), projection)?;
        }
        self.blocks(p, &mut global.blocks)
    }

    /// The decoder without its output head.
    fn decoder(&mut self, decoder: &mut LocalDecoder<B>) -> Result<()> {
        let p = "model.local_decoder";
        self.linear(
            &format!("{p}.patch_embedding_projection"),
            &mut decoder.patch_projection,
        )?;
        for (i, cross) in decoder.cross_attentions.iter_mut().enumerate() {
            self.cross(&format!("{p}.cross_attn_layers.{i}"), cross)?;
        }
        self.blocks(p, &mut decoder.blocks)?;
        self.norm(&format!("{p}.norm"), &mut decoder.norm)
    }

    /// Every BLT tensor. With `tied` and no `lm_head.weight` in the checkpoint, the output
    /// head is the byte embedding (`[260, d]`, torch's `[out, in]` for the head).
    pub fn blt(&mut self, model: &mut Blt<B>, tied: bool) -> Result<()> {
        self.byte_embedding(&mut model.embedding)?;
        self.encoder(&mut model.encoder)?;
        self.global(&mut model.global)?;
        self.decoder(&mut model.decoder)?;
        if tied && !self.ckpt.contains("lm_head.weight") {
            let head = model.embedding.bytes.weight.val().transpose();
            model.decoder.head.weight = Param::from_tensor(head);
            Ok(())
        } else {
            self.linear("lm_head", &mut model.decoder.head)
        }
    }

    /// The patcher (`model.patcher.*`) onto our entropy model.
    pub fn entropy(&mut self, model: &mut EntropyModel<B>) -> Result<()> {
        let p = "model.patcher";
        self.embedding(&format!("{p}.embed_tokens"), &mut model.embedding)?;
        self.blocks(p, &mut model.blocks)?;
        self.norm(&format!("{p}.norm"), &mut model.norm)?;
        self.linear(&format!("{p}.lm_head"), &mut model.head)
    }
}
