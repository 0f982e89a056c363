//! The Byte Latent Transformer (Pagnoni et al., 2024, arXiv 2412.09871; reference code
//! facebookresearch/blt `model/blt.py`): embeddings → local encoder → global transformer over
//! patches → local decoder → next-byte logits.

use burn::{
    module::Module,
    nn::{Dropout, DropoutConfig},
    tensor::{Tensor, backend::Backend},
};

use crate::{
    config::BltConfig, decoder::LocalDecoder, embedding::ByteEmbedding, encoder::LocalEncoder,
    error::Result, global::GlobalTransformer, input::BltInput,
};

/// The model's named output.
#[derive(Debug, Clone)]
pub struct BltOutput<B: Backend> {
    /// Next-byte logits, `[batch, seq, 260]`; position `i` predicts byte `i + 1`.
    pub logits: Tensor<B, 3>,
}

/// A stage of [`Blt::forward`], as [`Blt::forward_observed`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardStage {
    /// Byte and hash n-gram embeddings.
    Embedding,
    /// The local encoder's layers over bytes.
    LocalEncoder,
    /// Pooling bytes into patches.
    Pooling,
    /// The global transformer over patches.
    Global,
    /// The local decoder and the output head.
    LocalDecoder,
}

impl ForwardStage {
    /// Every stage, in the order the forward pass runs them.
    pub const ALL: [ForwardStage; 5] = [
        ForwardStage::Embedding,
        ForwardStage::LocalEncoder,
        ForwardStage::Pooling,
        ForwardStage::Global,
        ForwardStage::LocalDecoder,
    ];

    /// A snake-case name (`embedding`, `local_encoder`, `pooling`, `global`, `local_decoder`).
    pub fn name(self) -> &'static str {
        match self {
            ForwardStage::Embedding => "embedding",
            ForwardStage::LocalEncoder => "local_encoder",
            ForwardStage::Pooling => "pooling",
            ForwardStage::Global => "global",
            ForwardStage::LocalDecoder => "local_decoder",
        }
    }
}

/// A Byte Latent Transformer. Build it with [`Blt::new`].
#[derive(Module, Debug)]
pub struct Blt<B: Backend> {
    /// Byte + hash n-gram embeddings.
    pub embedding: ByteEmbedding<B>,
    /// Dropout on the embeddings (`resid_dropout`).
    pub embedding_dropout: Dropout,
    /// Local encoder and patch pooling.
    pub encoder: LocalEncoder<B>,
    /// Global transformer over patches.
    pub global: GlobalTransformer<B>,
    /// Local decoder and output head.
    pub decoder: LocalDecoder<B>,
}

impl<B: Backend> Blt<B> {
    /// Builds a freshly initialised model (reference §8 initialisation); validates `config`.
    pub fn new(config: &BltConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            embedding: ByteEmbedding::new(
                config.hidden_size,
                config.ngram_sizes.len(),
                config.ngram_vocab_size,
                device,
            ),
            embedding_dropout: DropoutConfig::new(config.resid_dropout).init(),
            encoder: config.encoder_config().init(device),
            global: config.global_config().init(device),
            decoder: config.decoder_config().init(device),
        })
    }

    /// Full forward pass.
    ///
    /// # Shapes
    /// - input: see [`BltInput`]
    /// - output: logits `[batch, seq, 260]`
    pub fn forward(&self, input: &BltInput<B>) -> BltOutput<B> {
        self.forward_observed(input, |_| {})
    }

    /// [`Blt::forward`], calling `done` with each stage as soon as its ops are issued, in the
    /// order of [`ForwardStage::ALL`]. A profiler syncs the device and reads a clock there.
    pub fn forward_observed(
        &self,
        input: &BltInput<B>,
        mut done: impl FnMut(ForwardStage),
    ) -> BltOutput<B> {
        let h = self.embedding_dropout.forward(
            self.embedding
                .forward(input.ids.clone(), input.ngram_ids.clone()),
        );
        done(ForwardStage::Embedding);
        let bytes = self.encoder.encode_bytes(h, input.local_mask.clone());
        done(ForwardStage::LocalEncoder);
        let patches = self.encoder.pool(bytes.clone(), &input.pooling);
        done(ForwardStage::Pooling);
        let global = self.global.forward(patches, input.global_mask.clone());
        done(ForwardStage::Global);
        let slots = self.decoder.patch_slots(global);
        let logits = self.decoder.forward(
            bytes,
            slots,
            input.decoder_patch_ids.clone(),
            input.local_mask.clone(),
        );
        done(ForwardStage::LocalDecoder);
        BltOutput { logits }
    }
}
