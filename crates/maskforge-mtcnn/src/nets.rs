//! MTCNN's three networks as plain functions over their weights, read from
//! facenet-pytorch's `pnet.pt`, `rnet.pt` and `onet.pt` (torch `state_dict`
//! pickles, read by maskforge-weights without Python). Layer for layer
//! facenet-pytorch's `PNet`, `RNet` and `ONet`.

use maskforge_face::detector::MTCNN_MODEL_FILES;
use maskforge_weights::{read_pth, DType, StateDict};
use std::collections::HashMap;
use tch::{Device, Kind, TchError, Tensor};

/// The tensors a network's file must hold: (name, shape).
pub type TensorSpec = &'static [(&'static str, &'static [i64])];

/// The three networks' files and every tensor each must hold.
pub const NETS: [(&str, TensorSpec); 3] = [
    (
        MTCNN_MODEL_FILES[0],
        &[
            ("conv1.weight", &[10, 3, 3, 3]),
            ("conv1.bias", &[10]),
            ("prelu1.weight", &[10]),
            ("conv2.weight", &[16, 10, 3, 3]),
            ("conv2.bias", &[16]),
            ("prelu2.weight", &[16]),
            ("conv3.weight", &[32, 16, 3, 3]),
            ("conv3.bias", &[32]),
            ("prelu3.weight", &[32]),
            ("conv4_1.weight", &[2, 32, 1, 1]),
            ("conv4_1.bias", &[2]),
            ("conv4_2.weight", &[4, 32, 1, 1]),
            ("conv4_2.bias", &[4]),
        ],
    ),
    (
        MTCNN_MODEL_FILES[1],
        &[
            ("conv1.weight", &[28, 3, 3, 3]),
            ("conv1.bias", &[28]),
            ("prelu1.weight", &[28]),
            ("conv2.weight", &[48, 28, 3, 3]),
            ("conv2.bias", &[48]),
            ("prelu2.weight", &[48]),
            ("conv3.weight", &[64, 48, 2, 2]),
            ("conv3.bias", &[64]),
            ("prelu3.weight", &[64]),
            ("dense4.weight", &[128, 576]),
            ("dense4.bias", &[128]),
            ("prelu4.weight", &[128]),
            ("dense5_1.weight", &[2, 128]),
            ("dense5_1.bias", &[2]),
            ("dense5_2.weight", &[4, 128]),
            ("dense5_2.bias", &[4]),
        ],
    ),
    (
        MTCNN_MODEL_FILES[2],
        &[
            ("conv1.weight", &[32, 3, 3, 3]),
            ("conv1.bias", &[32]),
            ("prelu1.weight", &[32]),
            ("conv2.weight", &[64, 32, 3, 3]),
            ("conv2.bias", &[64]),
            ("prelu2.weight", &[64]),
            ("conv3.weight", &[64, 64, 3, 3]),
            ("conv3.bias", &[64]),
            ("prelu3.weight", &[64]),
            ("conv4.weight", &[128, 64, 2, 2]),
            ("conv4.bias", &[128]),
            ("prelu4.weight", &[128]),
            ("dense5.weight", &[256, 1152]),
            ("dense5.bias", &[256]),
            ("prelu5.weight", &[256]),
            ("dense6_1.weight", &[2, 256]),
            ("dense6_1.bias", &[2]),
            ("dense6_2.weight", &[4, 256]),
            ("dense6_2.bias", &[4]),
            ("dense6_3.weight", &[10, 256]),
            ("dense6_3.bias", &[10]),
        ],
    ),
];

/// One network's weights by name.
pub struct Net(HashMap<&'static str, Tensor>);

// SAFETY: the tensors are written once, when loaded, and afterwards only
// read as inputs of libtorch operators (under `no_grad`), which never
// mutate their inputs; libtorch allows such reads from many threads at
// once (as tch's own `CModule` relies on).
unsafe impl Sync for Net {}

impl Net {
    /// The tensors of `spec` from a checkpoint file's bytes, checked: every
    /// name present, float32, with its shape; nothing else required.
    pub fn from_checkpoint(bytes: &[u8], spec: &[(&'static str, &[i64])], device: Device) -> Result<Net, String> {
        let sd: StateDict = read_pth(bytes)?;
        let mut tensors = HashMap::new();
        for &(name, shape) in spec {
            let t = sd.get(name).ok_or_else(|| format!("it has no tensor {name}: not MTCNN's weights"))?;
            let want: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            if t.dtype != DType::F32 || t.shape != want {
                return Err(format!("{name} is {} {:?}, MTCNN's is float32 {want:?}", t.dtype.name(), t.shape));
            }
            let values = t.to_f32().ok_or_else(|| format!("{name}: not float32"))?;
            let tensor = Tensor::f_from_slice(&values)
                .and_then(|v| v.f_reshape(shape))
                .and_then(|v| v.f_to_device(device))
                .map_err(|e| format!("{name}: {e}"))?;
            tensors.insert(name, tensor);
        }
        Ok(Net(tensors))
    }

    fn w(&self, name: &str) -> &Tensor {
        // Every name used below is in NETS and was checked at load time.
        &self.0[name]
    }

    fn conv(&self, x: &Tensor, layer: &str) -> Result<Tensor, TchError> {
        x.f_conv2d(
            self.w(&format!("{layer}.weight")),
            Some(self.w(&format!("{layer}.bias"))),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
    }

    fn dense(&self, x: &Tensor, layer: &str) -> Result<Tensor, TchError> {
        x.f_linear(self.w(&format!("{layer}.weight")), Some(self.w(&format!("{layer}.bias"))))
    }

    fn prelu(&self, x: &Tensor, layer: &str) -> Result<Tensor, TchError> {
        x.f_prelu(self.w(&format!("{layer}.weight")))
    }

    /// conv → PReLU, then the max-pool (kernel, stride) if any.
    fn block(&self, x: &Tensor, n: u32, pool: Option<(i64, i64)>) -> Result<Tensor, TchError> {
        let x = self.prelu(&self.conv(x, &format!("conv{n}"))?, &format!("prelu{n}"))?;
        match pool {
            Some((k, s)) => x.f_max_pool2d([k, k], [s, s], [0, 0], [1, 1], true),
            None => Ok(x),
        }
    }

    /// P-Net on a normalised image batch: (offsets `[N,4,h,w]`, face
    /// probability `[N,h,w]`).
    pub fn pnet(&self, x: &Tensor) -> Result<(Tensor, Tensor), TchError> {
        let x = self.block(x, 1, Some((2, 2)))?;
        let x = self.block(&x, 2, None)?;
        let x = self.block(&x, 3, None)?;
        let prob = self.conv(&x, "conv4_1")?.f_softmax(1, Kind::Float)?.f_select(1, 1)?;
        Ok((self.conv(&x, "conv4_2")?, prob))
    }

    /// R-Net on 24×24 crops: (offsets `[N,4]`, face probability `[N]`).
    pub fn rnet(&self, x: &Tensor) -> Result<(Tensor, Tensor), TchError> {
        let x = self.block(x, 1, Some((3, 2)))?;
        let x = self.block(&x, 2, Some((3, 2)))?;
        let x = self.block(&x, 3, None)?;
        // Caffe's flattening order (channels last, width before height).
        let x = x.f_permute([0, 3, 2, 1])?.f_contiguous()?.f_flatten(1, -1)?;
        let x = self.prelu(&self.dense(&x, "dense4")?, "prelu4")?;
        let prob = self.dense(&x, "dense5_1")?.f_softmax(1, Kind::Float)?.f_select(1, 1)?;
        Ok((self.dense(&x, "dense5_2")?, prob))
    }

    /// O-Net on 48×48 crops: (offsets `[N,4]`, five points `[N,10]` (x's
    /// then y's, fractions of the box), face probability `[N]`).
    pub fn onet(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor), TchError> {
        let x = self.block(x, 1, Some((3, 2)))?;
        let x = self.block(&x, 2, Some((3, 2)))?;
        let x = self.block(&x, 3, Some((2, 2)))?;
        let x = self.block(&x, 4, None)?;
        let x = x.f_permute([0, 3, 2, 1])?.f_contiguous()?.f_flatten(1, -1)?;
        let x = self.prelu(&self.dense(&x, "dense5")?, "prelu5")?;
        let prob = self.dense(&x, "dense6_1")?.f_softmax(1, Kind::Float)?.f_select(1, 1)?;
        Ok((self.dense(&x, "dense6_2")?, self.dense(&x, "dense6_3")?, prob))
    }
}
