//! ONNX export of the layer-list models (opset 17, dynamic batch dimension), written
//! from Rust — libtorch's C++ API has no exporter. Every registry model exports: the
//! scratch CNNs, EfficientNet-Lite0 (TensorFlow-"SAME" convolutions as explicit
//! asymmetric pads, ReLU6 as `Clip`, MBConv blocks) and ResNet-18 (basic blocks, the
//! padded max-pool), with the ImageNet input adapter as `Resize` plus one per-channel
//! affine map. Batch norm is folded into the preceding convolution (in f64, with each
//! layer's own epsilon), dropout and drop-connect are dropped, as for inference.
//!
//! The graph has a fixed `C×H×W` (the model's input shape) and a symbolic batch, so
//! spatial sizes — and hence "SAME" padding — are tracked layer by layer at export
//! time. The protobuf messages follow onnx/onnx.proto3 (field numbers in comments).
pub(crate) mod proto;

use crate::io::protobuf::{put_bytes, put_packed_i64, put_str, put_varint_field};
use crate::models::blocks::{
    BasicBlock, InputAdapter, MbConv, SameConv, IMAGENET_MEAN, IMAGENET_STD,
};
use crate::models::layers::{BatchNorm, Conv};
use crate::models::{Layer, Model};
use crate::{Error, Result};
use proto::{int, ints, string, value_info, Dim};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

const OPSET: u64 = 17;
/// IR version 8 goes with opset 17.
const IR_VERSION: u64 = 8;
use proto::FLOAT;
use proto::INT64;

/// Writes `model` as an ONNX file at `path`, atomically.
pub fn export(model: &Model, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &to_onnx_bytes(model)?)
}

/// The serialised ONNX model. The input is `input` `[batch, C, H, W]` (normalised as for
/// training), the output `logits` `[batch, classes]`. A layer the exporter cannot
/// translate gives an error naming it.
pub fn to_onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    tch::no_grad(|| {
        let mut graph = GraphBuilder::default();
        let [c, h, w] = model.input_shape;
        let x = Value::image("input", c, [h, w]);
        let x = graph.add_layers(&model.layers, x, |_, _| {})?;
        Ok(graph.finish(&x.name, model.input_shape, model.num_classes))
    })
}

/// A tensor flowing through the graph: its name and per-sample shape.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub(crate) name: String,
    channels: i64,
    /// `[H, W]` of a `[N, C, H, W]` tensor; `None` once flattened to `[N, C]`.
    size: Option<[i64; 2]>,
}

impl Value {
    /// A graph input `[N, channels, h, w]`.
    pub(crate) fn image(name: &str, channels: i64, size: [i64; 2]) -> Value {
        Value {
            name: name.into(),
            channels,
            size: Some(size),
        }
    }

    /// `[H, W]` (`[1, 1]` once flat).
    pub(crate) fn spatial_size(&self) -> [i64; 2] {
        self.size.unwrap_or([1, 1])
    }

    /// The same shape under another name (element-wise ops).
    pub(crate) fn renamed(&self, name: String) -> Value {
        Value {
            name,
            ..self.clone()
        }
    }

    /// `[H, W]`, or an error naming `layer` when the tensor is already flat.
    fn spatial(&self, layer: &str) -> Result<[i64; 2]> {
        self.size.ok_or_else(|| {
            Error::argument(
                "model",
                format!("layer `{layer}` expects [N, C, H, W] input but follows a flatten; no ONNX export"),
            )
        })
    }
}

fn unsupported(layer: &str, what: impl std::fmt::Display) -> Error {
    Error::argument(
        "model",
        format!("layer `{layer}`: {what} has no ONNX export"),
    )
}

/// A convolution's weights and geometry, whichever layer type holds it.
struct ConvParts<'a> {
    ws: &'a Tensor,
    bs: Option<&'a Tensor>,
    stride: [i64; 2],
    /// ONNX order: top, left, bottom, right.
    pads: [i64; 4],
    dilation: [i64; 2],
    groups: i64,
}

impl<'a> ConvParts<'a> {
    /// A convolution with symmetric zero padding.
    fn of_conv(layer: &str, conv: &'a Conv) -> Result<ConvParts<'a>> {
        if !conv.zero_padding {
            return Err(unsupported(
                layer,
                "a convolution with non-zero padding mode",
            ));
        }
        let (p, s, d) = (conv.padding, conv.stride, conv.dilation);
        Ok(ConvParts {
            ws: &conv.ws,
            bs: conv.bs.as_ref(),
            stride: [s, s],
            pads: [p, p, p, p],
            dilation: [d, d],
            groups: conv.groups,
        })
    }

    /// A "SAME" convolution on `[h, w]` inputs: the odd padding pixel goes bottom/right,
    /// as in [`SameConv::forward`].
    fn same(conv: &'a SameConv, [h, w]: [i64; 2]) -> ConvParts<'a> {
        let k = conv.ws.size();
        let total = |size: i64, kernel: i64| {
            let out = (size + conv.stride - 1) / conv.stride;
            ((out - 1) * conv.stride + kernel - size).max(0)
        };
        let (ph, pw) = (total(h, k[2]), total(w, k[3]));
        ConvParts {
            ws: &conv.ws,
            bs: conv.bs.as_ref(),
            stride: [conv.stride, conv.stride],
            pads: [ph / 2, pw / 2, ph - ph / 2, pw - pw / 2],
            dilation: [1, 1],
            groups: conv.groups,
        }
    }

    /// Output `[H, W]` for an input of `[h, w]`.
    fn output_size(&self, [h, w]: [i64; 2]) -> [i64; 2] {
        let k = self.ws.size();
        let out = |size: i64, axis: usize| {
            let padded = size + self.pads[axis] + self.pads[axis + 2];
            (padded - self.dilation[axis] * (k[2 + axis] - 1) - 1) / self.stride[axis] + 1
        };
        [out(h, 0), out(w, 1)]
    }
}

/// Per-channel `(scale, shift)` of an inference-mode batch norm, in f64:
/// y = x · γ/√(σ² + ε) + (β − μ · γ/√(σ² + ε)).
fn bn_affine(bn: &BatchNorm) -> (Tensor, Tensor) {
    let f64_of = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Double);
    let var = f64_of(&bn.running_var);
    let gamma = bn.ws.as_ref().map_or_else(|| var.ones_like(), f64_of);
    let beta = bn.bs.as_ref().map_or_else(|| var.zeros_like(), f64_of);
    let scale = gamma / (var + bn.eps).sqrt();
    let shift = beta - f64_of(&bn.running_mean) * &scale;
    (scale, shift)
}

/// Weight and bias of a convolution with `bn` folded in: w' = w · s, b' = b · s + t.
fn fold(conv: &ConvParts, bn: Option<&BatchNorm>) -> (Tensor, Tensor) {
    let w = conv.ws.to_device(Device::Cpu).to_kind(Kind::Double);
    let b = conv.bs.map_or_else(
        || Tensor::zeros([w.size()[0]], (Kind::Double, Device::Cpu)),
        |b| b.to_device(Device::Cpu).to_kind(Kind::Double),
    );
    let Some(bn) = bn else {
        return (w, b);
    };
    let (scale, shift) = bn_affine(bn);
    (&w * scale.view([-1, 1, 1, 1]), b * scale + shift)
}

/// A float tensor's values in f64.
fn values_f64(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous();
    Ok(Vec::<f64>::try_from(flat.view([-1]))?)
}

#[derive(Default)]
pub(crate) struct GraphBuilder {
    nodes: Vec<Vec<u8>>,
    initializers: Vec<Vec<u8>>,
    /// Whether the shared `Clip` bounds (0 and 6) are initialisers yet.
    clip_bounds: bool,
}

impl GraphBuilder {
    /// Adds `layers` in order after `x`, a batch norm right after a convolution folded
    /// into it; `tap(i, v)` sees the output `v` of layer `i` (of the batch norm, when
    /// folded). Returns the last output.
    pub(crate) fn add_layers(
        &mut self,
        layers: &[(String, Layer)],
        mut x: Value,
        mut tap: impl FnMut(usize, &Value),
    ) -> Result<Value> {
        let mut i = 0;
        while i < layers.len() {
            let (name, layer) = &layers[i];
            let bn = match (layer, layers.get(i + 1)) {
                (Layer::Conv(_) | Layer::SameConv(_), Some((_, Layer::BatchNorm(bn)))) => {
                    i += 1;
                    Some(bn)
                }
                _ => None,
            };
            x = self.layer(name, layer, bn, x)?;
            tap(i, &x);
            i += 1;
        }
        Ok(x)
    }

    /// A convolution of the crate's `Conv` type, without batch norm.
    pub(crate) fn plain_conv(&mut self, name: &str, x: &Value, conv: &Conv) -> Result<Value> {
        self.conv(name, x, &ConvParts::of_conv(name, conv)?, None)
    }

    /// Nearest-neighbour resize to `[h, w]`, as `upsample_nearest2d` (the source pixel
    /// `floor(i · in / out)`: "asymmetric" coordinates, "floor" rounding).
    pub(crate) fn resize_nearest(&mut self, name: &str, x: &str, size: [i64; 2]) -> String {
        let attrs = vec![
            string("mode", "nearest"),
            string("coordinate_transformation_mode", "asymmetric"),
            string("nearest_mode", "floor"),
        ];
        self.resize_to(name, x, size, attrs)
    }

    /// Group norm over `groups` groups with `eps`, then its per-channel scale and shift:
    /// `Reshape` to `[N, groups, -1]`, `InstanceNormalization` (each group normalised
    /// over its channels and pixels), `Reshape` back, `Mul`, `Add`.
    pub(crate) fn group_norm(
        &mut self,
        name: &str,
        x: &Value,
        groups: i64,
        eps: f32,
        scale: &Tensor,
        shift: &Tensor,
    ) -> Result<Value> {
        let [h, w] = x.spatial(name)?;
        let grouped = self.initializer_i64(&format!("{name}.grouped"), &[0, groups, -1]);
        let back = self.initializer_i64(&format!("{name}.back"), &[0, x.channels, h, w]);
        let r = self.node(
            "Reshape",
            &format!("{name}.reshape"),
            &[&x.name, &grouped],
            vec![],
        );
        let ones = self.initializer(
            &format!("{name}.ones"),
            &Tensor::ones([groups], (Kind::Float, Device::Cpu)),
        )?;
        let zeros = self.initializer(
            &format!("{name}.zeros"),
            &Tensor::zeros([groups], (Kind::Float, Device::Cpu)),
        )?;
        let normed = self.node(
            "InstanceNormalization",
            &format!("{name}.norm"),
            &[&r, &ones, &zeros],
            vec![proto::float_attr("epsilon", eps)],
        );
        let restored = self.node(
            "Reshape",
            &format!("{name}.restore"),
            &[&normed, &back],
            vec![],
        );
        let out = self.affine(
            name,
            &restored,
            &scale.view([1, -1, 1, 1]),
            &shift.view([1, -1, 1, 1]),
        )?;
        Ok(x.renamed(out))
    }

    /// Adds `layer` after `x` (with `bn` folded into it when given); returns its output.
    fn layer(
        &mut self,
        name: &str,
        layer: &Layer,
        bn: Option<&BatchNorm>,
        x: Value,
    ) -> Result<Value> {
        match layer {
            Layer::Conv(conv) => self.conv(name, &x, &ConvParts::of_conv(name, conv)?, bn),
            Layer::SameConv(conv) => {
                let parts = ConvParts::same(conv, x.spatial(name)?);
                self.conv(name, &x, &parts, bn)
            }
            Layer::BatchNorm(bn) => self.batch_norm(name, &x, bn),
            Layer::Relu => Ok(x.renamed(self.node("Relu", name, &[&x.name], vec![]))),
            Layer::Relu6 => Ok(self.relu6(name, &x)),
            Layer::MaxPool(k) => self.max_pool(name, &x, *k, *k, 0),
            Layer::MaxPoolPadded {
                kernel,
                stride,
                padding,
            } => self.max_pool(name, &x, *kernel, *stride, *padding),
            Layer::GlobalAvgPool => {
                x.spatial(name)?;
                let pooled = self.node("GlobalAveragePool", name, &[&x.name], vec![]);
                let flat_name = format!("{name}.flatten");
                let out = self.node("Flatten", &flat_name, &[&pooled], vec![int("axis", 1)]);
                Ok(Value {
                    name: out,
                    channels: x.channels,
                    size: None,
                })
            }
            Layer::Flatten => {
                let [h, w] = x.size.unwrap_or([1, 1]);
                Ok(Value {
                    name: self.node("Flatten", name, &[&x.name], vec![int("axis", 1)]),
                    channels: x.channels * h * w,
                    size: None,
                })
            }
            Layer::Dropout(_) => Ok(x), // identity at inference
            Layer::Linear(lin) => self.linear(name, &x, lin),
            Layer::MbConv(block) => self.mb_conv(name, &x, block),
            Layer::BasicBlock(block) => self.basic_block(name, &x, block),
            Layer::Adapt(adapter) => self.adapt(name, &x, adapter),
            // Reachable once the model code grows a layer this exporter does not know.
            #[allow(unreachable_patterns)]
            other => Err(unsupported(name, format!("layer `{}`", other.kind()))),
        }
    }

    /// Adds a node; returns the name of its output.
    pub(crate) fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attributes: Vec<Vec<u8>>,
    ) -> String {
        let output = format!("{name}.out");
        let mut node = Vec::new();
        inputs.iter().for_each(|i| put_str(&mut node, 1, i)); // input
        put_str(&mut node, 2, &output); // output
        put_str(&mut node, 3, name); // name
        put_str(&mut node, 4, op); // op_type
        attributes.iter().for_each(|a| put_bytes(&mut node, 5, a)); // attribute
        self.nodes.push(node);
        output
    }

    /// A convolution, with the following batch norm (if any) folded into it.
    fn conv(
        &mut self,
        name: &str,
        x: &Value,
        conv: &ConvParts,
        bn: Option<&BatchNorm>,
    ) -> Result<Value> {
        let size = x.spatial(name)?;
        let (w, b) = fold(conv, bn);
        let k = w.size();
        let w_name = self.initializer(&format!("{name}.weight"), &w)?;
        let b_name = self.initializer(&format!("{name}.bias"), &b)?;
        let attrs = vec![
            ints("kernel_shape", &[k[2], k[3]]),
            ints("pads", &conv.pads),
            ints("strides", &conv.stride),
            ints("dilations", &conv.dilation),
            int("group", conv.groups),
        ];
        let out_size = conv.output_size(size);
        if out_size.iter().any(|&s| s < 1) {
            return Err(Error::argument(
                "images",
                format!("input {size:?} is too small for the convolution `{name}`"),
            ));
        }
        Ok(Value {
            name: self.node("Conv", name, &[&x.name, &w_name, &b_name], attrs),
            channels: k[0],
            size: Some(out_size),
        })
    }

    /// A batch norm that follows no convolution, as a per-channel `Mul` and `Add`.
    fn batch_norm(&mut self, name: &str, x: &Value, bn: &BatchNorm) -> Result<Value> {
        let (scale, shift) = bn_affine(bn);
        let shape: Vec<i64> = match x.size {
            Some(_) => vec![1, -1, 1, 1],
            None => vec![1, -1],
        };
        let out = self.affine(
            name,
            &x.name,
            &scale.view(&shape[..]),
            &shift.view(&shape[..]),
        )?;
        Ok(x.renamed(out))
    }

    /// `x · scale + shift` with broadcasting initialisers; returns the output name.
    fn affine(&mut self, name: &str, x: &str, scale: &Tensor, shift: &Tensor) -> Result<String> {
        let s = self.initializer(&format!("{name}.scale"), scale)?;
        let t = self.initializer(&format!("{name}.shift"), shift)?;
        let scaled = self.node("Mul", &format!("{name}.mul"), &[x, &s], vec![]);
        Ok(self.node("Add", &format!("{name}.add"), &[&scaled, &t], vec![]))
    }

    /// `min(max(x, 0), 6)`: opset 11+ `Clip` takes its bounds as inputs.
    fn relu6(&mut self, name: &str, x: &Value) -> Value {
        if !self.clip_bounds {
            self.clip_bounds = true;
            self.scalar("relu6.min", 0.0);
            self.scalar("relu6.max", 6.0);
        }
        x.renamed(self.node("Clip", name, &[&x.name, "relu6.min", "relu6.max"], vec![]))
    }

    fn max_pool(
        &mut self,
        name: &str,
        x: &Value,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> Result<Value> {
        let [h, w] = x.spatial(name)?;
        let out = |s: i64| (s + 2 * padding - kernel) / stride + 1;
        let attrs = vec![
            ints("kernel_shape", &[kernel, kernel]),
            ints("strides", &[stride, stride]),
            ints("pads", &[padding; 4]),
        ];
        Ok(Value {
            name: self.node("MaxPool", name, &[&x.name], attrs),
            channels: x.channels,
            size: Some([out(h), out(w)]),
        })
    }

    /// `Gemm` with the weight transposed, as `nn::Linear` stores it.
    fn linear(&mut self, name: &str, x: &Value, lin: &nn::Linear) -> Result<Value> {
        if x.size.is_some() {
            return Err(unsupported(name, "a linear layer on [N, C, H, W] input"));
        }
        let out = lin.ws.size()[0];
        let w = self.initializer(&format!("{name}.weight"), &lin.ws)?;
        let bias = match &lin.bs {
            Some(b) => b.shallow_clone(),
            None => Tensor::zeros([out], (Kind::Float, Device::Cpu)),
        };
        let b = self.initializer(&format!("{name}.bias"), &bias)?;
        Ok(Value {
            name: self.node("Gemm", name, &[&x.name, &w, &b], vec![int("transB", 1)]),
            channels: out,
            size: None,
        })
    }

    /// MBConv: [1×1 expansion, ReLU6,] depthwise "SAME", ReLU6, 1×1 projection [+ x].
    /// Drop-connect only acts while training.
    fn mb_conv(&mut self, name: &str, x: &Value, block: &MbConv) -> Result<Value> {
        let mut h = x.clone();
        if let Some(parts) = block.expand_parts() {
            h = self.conv_bn(name, "_expand_conv", &h, parts)?;
            h = self.relu6(&format!("{name}.relu6_expand"), &h);
        }
        let (depthwise, bn1) = block.depthwise_parts();
        let parts = ConvParts::same(depthwise, h.spatial(name)?);
        h = self.conv(&format!("{name}._depthwise_conv"), &h, &parts, Some(bn1))?;
        h = self.relu6(&format!("{name}.relu6_depthwise"), &h);
        h = self.conv_bn(name, "_project_conv", &h, block.project_parts())?;
        if !block.has_residual() {
            return Ok(h);
        }
        let sum = self.node("Add", &format!("{name}.add"), &[&h.name, &x.name], vec![]);
        Ok(h.renamed(sum))
    }

    /// A tch convolution at `{block}.{part}` with its batch norm folded in.
    fn conv_bn(
        &mut self,
        block: &str,
        part: &str,
        x: &Value,
        (conv, bn): (&Conv, &BatchNorm),
    ) -> Result<Value> {
        let layer = format!("{block}.{part}");
        let parts = ConvParts::of_conv(&layer, conv)?;
        self.conv(&layer, x, &parts, Some(bn))
    }

    /// Basic block: ReLU(bn2(conv2(ReLU(bn1(conv1 x)))) + shortcut(x)).
    fn basic_block(&mut self, name: &str, x: &Value, block: &BasicBlock) -> Result<Value> {
        let h = self.conv_bn(name, "conv1", x, block.first_parts())?;
        let h = h.renamed(self.node("Relu", &format!("{name}.relu1"), &[&h.name], vec![]));
        let h = self.conv_bn(name, "conv2", &h, block.second_parts())?;
        let shortcut = match block.downsample_parts() {
            Some(parts) => self.conv_bn(name, "downsample", x, parts)?,
            None => x.clone(),
        };
        let sum = self.node(
            "Add",
            &format!("{name}.add"),
            &[&h.name, &shortcut.name],
            vec![],
        );
        Ok(h.renamed(self.node("Relu", &format!("{name}.relu"), &[&sum], vec![])))
    }

    /// The input adapter: bilinear resize (if the size changes), then one per-channel
    /// affine map that undoes the dataset normalisation and applies ImageNet's. Resizing
    /// first is exact — bilinear weights sum to 1, so resizing commutes with per-channel
    /// affine maps — and cheaper on 1-channel inputs, which the `[1, 3, 1, 1]` scale
    /// then broadcasts to three channels (what `expand` does in tch).
    fn adapt(&mut self, name: &str, x: &Value, adapter: &InputAdapter) -> Result<Value> {
        let size = x.spatial(name)?;
        let channels = adapter.in_channels();
        if !(channels == 1 || channels == 3) || x.channels != channels {
            return Err(unsupported(
                name,
                format!("an input adapter for {} channels", x.channels),
            ));
        }
        let mut input = x.name.clone();
        let target = [adapter.size, adapter.size];
        let out_size = if adapter.size > 0 && size != target {
            input = self.resize(name, &input, target);
            target
        } else {
            size
        };
        let (mean, std) = (
            values_f64(adapter.data_mean())?,
            values_f64(adapter.data_std())?,
        );
        let src = |c: usize| if channels == 1 { 0 } else { c };
        let scale: Vec<f64> = (0..3).map(|c| std[src(c)] / IMAGENET_STD[c]).collect();
        let shift: Vec<f64> = (0..3)
            .map(|c| (mean[src(c)] - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
            .collect();
        let as_tensor = |v: &[f64]| Tensor::from_slice(v).view([1, 3, 1, 1]);
        let out = self.affine(name, &input, &as_tensor(&scale), &as_tensor(&shift))?;
        Ok(Value {
            name: out,
            channels: 3,
            size: Some(out_size),
        })
    }

    /// Bilinear resize to `[h, w]` matching `upsample_bilinear2d(align_corners=false)`
    /// ("half_pixel" coordinates). The `sizes` input needs all four dimensions, so the
    /// dynamic batch and channels come from `Shape`.
    fn resize(&mut self, name: &str, x: &str, size: [i64; 2]) -> String {
        let attrs = vec![
            string("mode", "linear"),
            string("coordinate_transformation_mode", "half_pixel"),
        ];
        self.resize_to(name, x, size, attrs)
    }

    /// A `Resize` of `x` to `[h, w]` with `attrs` (mode and coordinates). The `sizes`
    /// input needs all four dimensions, so the dynamic batch and channels come from `Shape`.
    fn resize_to(&mut self, name: &str, x: &str, [h, w]: [i64; 2], attrs: Vec<Vec<u8>>) -> String {
        let shape_attrs = vec![int("start", 0), int("end", 2)];
        let n_c = self.node("Shape", &format!("{name}.shape"), &[x], shape_attrs);
        let hw = self.initializer_i64(&format!("{name}.hw"), &[h, w]);
        let sizes = self.node(
            "Concat",
            &format!("{name}.sizes"),
            &[&n_c, &hw],
            vec![int("axis", 0)],
        );
        // Inputs: X, roi, scales, sizes (the unused optional ones are empty names).
        let inputs = [x, "", "", sizes.as_str()];
        self.node("Resize", &format!("{name}.resize"), &inputs, attrs)
    }

    /// Adds a float tensor as an initializer; returns its name.
    fn initializer(&mut self, name: &str, t: &Tensor) -> Result<String> {
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let values = Vec::<f32>::try_from(t.view([-1]))?;
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, &t.size(), FLOAT, &raw);
        Ok(name.to_string())
    }

    /// A 1-D int64 initializer; returns its name.
    fn initializer_i64(&mut self, name: &str, values: &[i64]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, &[values.len() as i64], INT64, &raw);
        name.to_string()
    }

    /// A rank-0 float initializer.
    fn scalar(&mut self, name: &str, value: f32) {
        self.push_initializer(name, &[], FLOAT, &value.to_le_bytes());
    }

    /// TensorProto{dims 1, data_type 2, name 8, raw_data 9 (little endian)}.
    fn push_initializer(&mut self, name: &str, dims: &[i64], data_type: u64, raw: &[u8]) {
        let mut proto = Vec::new();
        if !dims.is_empty() {
            put_packed_i64(&mut proto, 1, dims);
        }
        put_varint_field(&mut proto, 2, data_type);
        put_str(&mut proto, 8, name);
        put_bytes(&mut proto, 9, raw);
        self.initializers.push(proto);
    }

    /// Wraps nodes, initializers, input and output into a ModelProto.
    fn finish(self, output: &str, [c, h, w]: [i64; 3], classes: i64) -> Vec<u8> {
        self.finish_graph(
            (
                "input",
                &[
                    Dim::Param("batch"),
                    Dim::Value(c),
                    Dim::Value(h),
                    Dim::Value(w),
                ],
            ),
            &[(
                output,
                "logits",
                &[Dim::Param("batch"), Dim::Value(classes)],
            )],
        )
    }

    /// Wraps nodes and initializers with one `[batch, C, H, W]` input and named
    /// `[batch, C, H, W]` outputs (each `(node output, graph output name, [C, H, W])`).
    pub(crate) fn finish_with(
        self,
        (input, [c, h, w]): (&str, [i64; 3]),
        outputs: &[(&str, &str, [i64; 3])],
    ) -> Vec<u8> {
        let dims = |[c, h, w]: [i64; 3]| {
            vec![
                Dim::Param("batch"),
                Dim::Value(c),
                Dim::Value(h),
                Dim::Value(w),
            ]
        };
        let out_dims: Vec<Vec<Dim>> = outputs.iter().map(|o| dims(o.2)).collect();
        let named: Vec<(&str, &str, &[Dim])> = outputs
            .iter()
            .zip(&out_dims)
            .map(|(o, d)| (o.0, o.1, &d[..]))
            .collect();
        self.finish_graph((input, &dims([c, h, w])), &named)
    }

    fn finish_graph(
        self,
        (input, input_dims): (&str, &[Dim]),
        outputs: &[(&str, &str, &[Dim])],
    ) -> Vec<u8> {
        let mut graph = Vec::new();
        self.nodes.iter().for_each(|n| put_bytes(&mut graph, 1, n)); // node
        put_str(&mut graph, 2, "helpers_model"); // name
        self.initializers
            .iter()
            .for_each(|t| put_bytes(&mut graph, 5, t)); // initializer
        put_bytes(&mut graph, 11, &value_info(input, input_dims));
        // Each output is the Identity of a node's output, so the graph names it.
        for (node_output, name, dims) in outputs {
            let mut identity = Vec::new();
            put_str(&mut identity, 1, node_output);
            put_str(&mut identity, 2, name);
            put_str(&mut identity, 3, name);
            put_str(&mut identity, 4, "Identity");
            put_bytes(&mut graph, 1, &identity);
            put_bytes(&mut graph, 12, &value_info(name, dims));
        }
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, IR_VERSION); // ir_version
        put_str(&mut model, 2, "helpers"); // producer_name
        put_str(&mut model, 3, env!("CARGO_PKG_VERSION")); // producer_version
        put_bytes(&mut model, 7, &graph); // graph
        let mut opset = Vec::new();
        put_str(&mut opset, 1, ""); // domain: the default ONNX operator set
        put_varint_field(&mut opset, 2, OPSET);
        put_bytes(&mut model, 8, &opset); // opset_import
        model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::blocks::{batch_norm, conv};

    #[test]
    fn conv_and_batch_norm_geometry_comes_from_the_layer_types() -> Result<()> {
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = batch_norm(vs.root() / "bn", 4, 1e-3, 0.01);
        assert_eq!(bn.eps, 1e-3);
        let default_bn = BatchNorm::new(vs.root() / "bn2", 4, Default::default());
        assert_eq!(default_bn.eps, 1e-5);
        let c = conv(vs.root() / "c", 3, 8, 7, 2, 3);
        let parts = ConvParts::of_conv("c", &c)?;
        assert_eq!(
            (parts.stride, parts.pads, parts.groups),
            ([2, 2], [3, 3, 3, 3], 1)
        );
        assert_eq!(parts.dilation, [1, 1]);
        assert_eq!(parts.output_size([224, 224]), [112, 112]);
        let grouped = Conv::new(
            vs.root() / "g",
            8,
            8,
            3,
            nn::ConvConfig {
                groups: 8,
                padding: 1,
                ..Default::default()
            },
        );
        assert_eq!(ConvParts::of_conv("g", &grouped)?.groups, 8);
        let reflect = Conv::new(
            vs.root() / "r",
            3,
            3,
            3,
            nn::ConvConfig {
                padding_mode: nn::PaddingMode::Reflect,
                ..Default::default()
            },
        );
        let e = ConvParts::of_conv("r", &reflect)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("padding mode")));
        Ok(())
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_bottom_right() {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = SameConv::new(vs.root() / "s", 3, 8, 3, 2, 1, false);
        // 64 → 32 needs 1 pixel of padding in total: none before, one after.
        assert_eq!(ConvParts::same(&c, [64, 64]).pads, [0, 0, 1, 1]);
        assert_eq!(ConvParts::same(&c, [65, 65]).pads, [1, 1, 1, 1]);
        let c5 = SameConv::new(vs.root() / "t", 8, 8, 5, 2, 8, false);
        assert_eq!(ConvParts::same(&c5, [16, 16]).pads, [1, 1, 2, 2]);
    }
}
