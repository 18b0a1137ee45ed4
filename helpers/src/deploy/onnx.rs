//! ONNX export of the layer-list models (opset 17, dynamic batch dimension), written
//! from Rust — libtorch's C++ API has no exporter. Batch norm is folded into the
//! preceding convolution and dropout is dropped, as for inference. The protobuf
//! messages follow onnx/onnx.proto3 (field numbers in the comments).
use crate::models::{Layer, Model};
use crate::proto::{put_bytes, put_packed_i64, put_str, put_varint_field};
use crate::{fsx, Error, Result};
use std::path::Path;
use tch::{Kind, Tensor};

const OPSET: u64 = 17;
/// IR version 8 goes with opset 17.
const IR_VERSION: u64 = 8;
/// tch's default batch-norm epsilon, which every registry model uses.
const BN_EPS: f64 = 1e-5;
const FLOAT: u64 = 1; // TensorProto.DataType.FLOAT

/// Writes `model` as an ONNX file at `path`, atomically.
pub fn export(model: &Model, path: &Path) -> Result<()> {
    fsx::write_atomic(path, &to_onnx_bytes(model)?)
}

/// The serialised ONNX model. The input is `input` `[batch, C, H, W]` (normalised as for
/// training), the output `logits` `[batch, classes]`.
pub fn to_onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    let mut graph = GraphBuilder::default();
    let mut current = "input".to_string();
    let mut layers = model.layers.iter().peekable();
    while let Some((name, layer)) = layers.next() {
        current = match layer {
            Layer::Conv(conv) => {
                let bn = match layers.peek() {
                    Some((_, Layer::BatchNorm(bn))) => {
                        layers.next();
                        Some(bn)
                    }
                    _ => None,
                };
                graph.conv(name, &current, conv, bn)?
            }
            Layer::BatchNorm(_) => {
                return Err(Error::config(
                    name.clone(),
                    "BatchNorm not directly after a convolution cannot be folded for export",
                ))
            }
            Layer::Relu => graph.node("Relu", name, &[&current], vec![]),
            Layer::MaxPool(k) => graph.node(
                "MaxPool",
                name,
                &[&current],
                vec![ints("kernel_shape", &[*k, *k]), ints("strides", &[*k, *k])],
            ),
            Layer::GlobalAvgPool => {
                let pooled = graph.node("GlobalAveragePool", name, &[&current], vec![]);
                graph.node(
                    "Flatten",
                    &format!("{name}.flatten"),
                    &[&pooled],
                    vec![int("axis", 1)],
                )
            }
            Layer::Flatten => graph.node("Flatten", name, &[&current], vec![int("axis", 1)]),
            Layer::Dropout(_) => current, // identity at inference
            Layer::Linear(lin) => {
                let w = graph.initializer(&format!("{name}.weight"), &lin.ws)?;
                let b = match &lin.bs {
                    Some(b) => graph.initializer(&format!("{name}.bias"), b)?,
                    None => graph.initializer(
                        &format!("{name}.bias"),
                        &Tensor::zeros([lin.ws.size()[0]], (Kind::Float, tch::Device::Cpu)),
                    )?,
                };
                graph.node("Gemm", name, &[&current, &w, &b], vec![int("transB", 1)])
            }
            other => {
                return Err(Error::config(
                    name.clone(),
                    format!("layer `{}` has no ONNX export", other.kind()),
                ))
            }
        };
    }
    let [c, h, w] = model.input_shape;
    Ok(graph.finish(&current, [c, h, w], model.num_classes))
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<Vec<u8>>,
    initializers: Vec<Vec<u8>>,
}

impl GraphBuilder {
    /// Adds a node; returns the name of its output.
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], attributes: Vec<Vec<u8>>) -> String {
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

    /// A convolution, with the following batch norm folded into its weight and bias:
    /// w' = w · γ/√(σ² + ε), b' = (b − μ) · γ/√(σ² + ε) + β.
    fn conv(
        &mut self,
        name: &str,
        input: &str,
        conv: &tch::nn::Conv2D,
        bn: Option<&tch::nn::BatchNorm>,
    ) -> Result<String> {
        let (w, b) = tch::no_grad(|| {
            let w = conv.ws.to_kind(Kind::Float).contiguous();
            let out_channels = w.size()[0];
            let b = conv.bs.as_ref().map_or_else(
                || Tensor::zeros([out_channels], (Kind::Float, w.device())),
                |b| b.shallow_clone(),
            );
            match bn {
                None => (w, b),
                Some(bn) => {
                    let gamma = bn
                        .ws
                        .as_ref()
                        .map_or_else(|| b.ones_like(), |g| g.shallow_clone());
                    let beta = bn
                        .bs
                        .as_ref()
                        .map_or_else(|| b.zeros_like(), |x| x.shallow_clone());
                    let scale = gamma / (&bn.running_var + BN_EPS).sqrt();
                    let folded_w = &w * scale.view([-1, 1, 1, 1]);
                    let folded_b = (b - &bn.running_mean) * &scale + beta;
                    (folded_w, folded_b)
                }
            }
        });
        let size = w.size();
        let (kh, kw) = (size[2], size[3]);
        let w_name = self.initializer(&format!("{name}.weight"), &w)?;
        let b_name = self.initializer(&format!("{name}.bias"), &b)?;
        // Registry convolutions are stride 1 with "same" padding (k / 2 per side).
        let attrs = vec![
            ints("kernel_shape", &[kh, kw]),
            ints("pads", &[kh / 2, kw / 2, kh / 2, kw / 2]),
            ints("strides", &[1, 1]),
        ];
        Ok(self.node("Conv", name, &[input, &w_name, &b_name], attrs))
    }

    /// Adds a float tensor as an initializer; returns its name.
    fn initializer(&mut self, name: &str, t: &Tensor) -> Result<String> {
        let t = t
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let values = Vec::<f32>::try_from(t.view([-1]))?;
        let mut proto = Vec::new();
        put_packed_i64(&mut proto, 1, &t.size()); // dims
        put_varint_field(&mut proto, 2, FLOAT); // data_type
        put_str(&mut proto, 8, name); // name
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes(&mut proto, 9, &raw); // raw_data (little endian)
        self.initializers.push(proto);
        Ok(name.to_string())
    }

    /// Wraps nodes, initializers, input and output into a ModelProto.
    fn finish(self, output: &str, [c, h, w]: [i64; 3], classes: i64) -> Vec<u8> {
        let mut graph = Vec::new();
        self.nodes.iter().for_each(|n| put_bytes(&mut graph, 1, n)); // node
        put_str(&mut graph, 2, "helpers_model"); // name
        self.initializers
            .iter()
            .for_each(|t| put_bytes(&mut graph, 5, t)); // initializer
        put_bytes(
            &mut graph,
            11,
            &value_info(
                "input",
                &[
                    Dim::Param("batch"),
                    Dim::Value(c),
                    Dim::Value(h),
                    Dim::Value(w),
                ],
            ),
        );
        // The last node's output is renamed by an Identity so the graph output is `logits`.
        let mut identity = Vec::new();
        put_str(&mut identity, 1, output);
        put_str(&mut identity, 2, "logits");
        put_str(&mut identity, 3, "logits");
        put_str(&mut identity, 4, "Identity");
        put_bytes(&mut graph, 1, &identity);
        put_bytes(
            &mut graph,
            12,
            &value_info("logits", &[Dim::Param("batch"), Dim::Value(classes)]),
        );
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

enum Dim<'a> {
    Value(i64),
    Param(&'a str),
}

/// ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1, shape 2: {dim 1: {dim_value 1 | dim_param 2}}}}}.
fn value_info(name: &str, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Value(v) => put_varint_field(&mut dim, 1, *v as u64),
            Dim::Param(p) => put_str(&mut dim, 2, p),
        }
        put_bytes(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, FLOAT);
    put_bytes(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_str(&mut vi, 1, name);
    put_bytes(&mut vi, 2, &ty);
    vi
}

/// AttributeProto{name 1, type 20 = INT (2), i 3}.
fn int(name: &str, v: i64) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_varint_field(&mut a, 3, v as u64);
    put_varint_field(&mut a, 20, 2);
    a
}

/// AttributeProto{name 1, type 20 = INTS (7), ints 8}.
fn ints(name: &str, v: &[i64]) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_packed_i64(&mut a, 8, v);
    put_varint_field(&mut a, 20, 7);
    a
}
