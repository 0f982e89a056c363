//! Import: checkpoint tensors into our parameters, each checked against the shape that the
//! module built from the translated config already has.

use burn::{
    module::Param,
    tensor::{Tensor, TensorData, backend::Backend},
};

use super::{
    names::{self, Visitor},
    safetensors::{Checkpoint, HostTensor},
};
use crate::{
    blt::Blt,
    entropy::EntropyModel,
    error::{ModelError, Result},
};

/// Reads tensors into modules on one device.
pub(super) struct Loader<'a, B: Backend> {
    pub ckpt: &'a mut Checkpoint,
    pub device: &'a B::Device,
    /// Sees the tensors read so far.
    pub progress: &'a dyn blt_core::Progress,
    pub read: usize,
}

impl<B: Backend> Loader<'_, B> {
    /// `name` with exactly `shape`.
    fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        if let Some(found) = self.ckpt.shape(name)
            && found != shape
        {
            return Err(ModelError::Weights {
                path: self.ckpt.path().to_path_buf(),
                message: format!(
                    "tensor {name} has shape {found:?}, the config asks for {shape:?}"
                ),
            });
        }
        let tensor = self.ckpt.take(name)?;
        self.read += 1;
        self.progress.update(self.read);
        Ok(tensor)
    }

    fn matrix(&self, t: HostTensor) -> Tensor<B, 2> {
        let shape = [t.shape[0], t.shape[1]];
        Tensor::from_data(TensorData::new(t.values, shape), self.device)
    }

    /// torch `[out, in]` read as Burn `[in, out]`.
    fn transposed(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Tensor<B, 2>> {
        let t = self.host(name, &[d_out, d_in])?;
        Ok(self.matrix(t).transpose())
    }

    /// Every BLT tensor. With `tied` and no `lm_head.weight` in the checkpoint, the output
    /// head is the byte embedding (`[260, d]`, torch's `[out, in]` for the head).
    pub fn blt(&mut self, model: &mut Blt<B>, tied: bool) -> Result<()> {
        names::blt_body(self, model)?;
        if tied && !self.ckpt.contains(&format!("{}.weight", names::HEAD)) {
            let head = model.embedding.bytes.weight.val().transpose();
            model.decoder.head.weight = Param::from_tensor(head);
            Ok(())
        } else {
            self.projection(names::HEAD, &mut model.decoder.head.weight)
        }
    }

    /// The patcher onto our entropy model.
    pub fn entropy(&mut self, model: &mut EntropyModel<B>) -> Result<()> {
        names::patcher(self, model)
    }
}

impl<B: Backend> Visitor<B> for Loader<'_, B> {
    fn projection(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let [d_in, d_out] = weight.dims();
        *weight = Param::from_tensor(self.transposed(&format!("{name}.weight"), d_in, d_out)?);
        Ok(())
    }

    fn qkv(&mut self, names: [&str; 3], weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let [d, three_w] = weight.dims();
        let parts = names
            .into_iter()
            .map(|n| self.transposed(&format!("{n}.weight"), d, three_w / 3))
            .collect::<Result<Vec<_>>>()?;
        *weight = Param::from_tensor(Tensor::cat(parts, 1));
        Ok(())
    }

    fn table(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()> {
        let t = self.host(name, &weight.dims())?;
        *weight = Param::from_tensor(self.matrix(t));
        Ok(())
    }

    fn vector(&mut self, name: &str, gain: &mut Param<Tensor<B, 1>>) -> Result<()> {
        let [d] = gain.dims();
        let t = self.host(name, &[d])?;
        *gain = Param::from_tensor(Tensor::from_data(
            TensorData::new(t.values, [d]),
            self.device,
        ));
        Ok(())
    }
}
