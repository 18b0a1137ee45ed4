//! ONNX export of a tabular regression run with its preprocessing inside the graph: raw
//! rows in, the target's units out, so a serving stack needs nothing but the `.onnx` file.
//!
//! Inputs: `numeric` `[batch, k]` float, the numeric columns in [`Preprocessor::numeric`]
//! order with NaN for a missing cell; one `[batch, 1]` string input per categorical
//! column, named after it. Graph: `IsNaN` + `Where` impute the training medians, `Sub` and
//! `Div` standardise, `ai.onnx.ml.OneHotEncoder` encodes each category (unseen → zeros, as
//! in training), `Concat`, then the MLP as `Gemm`/`Relu` with batch norm folded into each
//! `Gemm` (dropout is the identity at inference), and the target transform inverted
//! (`Mul`, `Add`, `Exp` − 1 for a log target). Output: `prediction` `[batch, outputs]`.
use super::model::{Net, NetKind};
use crate::data::tabular::preprocess::TargetTransform;
use crate::data::tabular::Preprocessor;
use crate::deploy::onnx::proto::{
    float_tensor, int, node, opset, strings, typed_value_info, value_info, Dim, STRING,
};
use crate::io::protobuf::{put_bytes, put_str, put_varint_field};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// tch's default batch-norm epsilon (the regression nets use the default config).
const BN_EPS: f64 = 1e-5;

/// Writes the run's network and preprocessing as one ONNX file, atomically.
pub fn export(
    net: &Net,
    pre: &Preprocessor,
    targets: &[TargetTransform],
    path: &Path,
) -> Result<()> {
    crate::io::write_atomic(path, &to_bytes(net, pre, targets)?)
}

/// The serialised model (see the module notes).
pub fn to_bytes(net: &Net, pre: &Preprocessor, targets: &[TargetTransform]) -> Result<Vec<u8>> {
    if net.config.kind != NetKind::Mlp {
        return Err(Error::argument(
            "net",
            "the ONNX export of a tabular run covers the MLP",
        ));
    }
    let weights: HashMap<String, Tensor> = net.weights().into_iter().collect();
    let mut g = Graph::default();
    let features = g.preprocessing(pre);
    let mut x = features;
    for i in 0..net.config.widths.len() {
        let (w, b) = folded(&weights, i, net.config.batch_norm)?;
        x = g.gemm(&format!("fc{i}"), &x, &w, &b);
        x = node(&mut g.nodes, ("", "Relu"), &format!("relu{i}"), &[&x], &[]);
    }
    let (w, b) = (param(&weights, "out.weight")?, param(&weights, "out.bias")?);
    x = g.gemm("out", &x, &w, &b);
    let y = g.invert_targets(&x, targets);
    Ok(g.finish(pre, &y, targets.len() as i64))
}

fn param(weights: &HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    weights
        .get(name)
        .map(|t| t.to_kind(Kind::Double))
        .ok_or_else(|| Error::argument("net", format!("no weight `{name}`")))
}

/// Layer `i`'s linear weights with its batch norm folded in (in f64):
/// W' = W·γ/√(σ²+ε) row-wise, b' = (b − μ)·γ/√(σ²+ε) + β.
fn folded(
    weights: &HashMap<String, Tensor>,
    i: usize,
    batch_norm: bool,
) -> Result<(Tensor, Tensor)> {
    let (w, b) = (
        param(weights, &format!("fc{i}.weight"))?,
        param(weights, &format!("fc{i}.bias"))?,
    );
    if !batch_norm {
        return Ok((w, b));
    }
    let bn = |p: &str| param(weights, &format!("bn{i}.{p}"));
    let scale = bn("weight")? / (bn("running_var")? + BN_EPS).sqrt();
    let w = &w * scale.unsqueeze(1);
    let b = (b - bn("running_mean")?) * &scale + bn("bias")?;
    Ok((w, b))
}

fn f32s(t: &Tensor) -> Vec<f32> {
    let flat = t.to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&flat).expect("a float tensor")
}

#[derive(Default)]
struct Graph {
    nodes: Vec<Vec<u8>>,
    initializers: Vec<Vec<u8>>,
}

impl Graph {
    fn constant(&mut self, name: &str, dims: &[i64], values: &[f32]) -> String {
        self.initializers.push(float_tensor(name, dims, values));
        name.to_string()
    }

    /// Imputed, standardised numeric columns and one-hot categories, concatenated.
    fn preprocessing(&mut self, pre: &Preprocessor) -> String {
        let k = pre.numeric.len() as i64;
        let col = |f: fn(&crate::data::tabular::preprocess::NumericFeature) -> f64| {
            pre.numeric
                .iter()
                .map(|n| f(n) as f32)
                .collect::<Vec<f32>>()
        };
        let mut parts = Vec::new();
        if k > 0 {
            let medians = self.constant("medians", &[k], &col(|n| n.median));
            let nan = node(&mut self.nodes, ("", "IsNaN"), "missing", &["numeric"], &[]);
            let mut x = node(
                &mut self.nodes,
                ("", "Where"),
                "imputed",
                &[&nan, &medians, "numeric"],
                &[],
            );
            if pre.options.standardize {
                let means = self.constant("means", &[k], &col(|n| n.mean));
                let stds = self.constant("stds", &[k], &col(|n| n.std));
                x = node(&mut self.nodes, ("", "Sub"), "centred", &[&x, &means], &[]);
                x = node(
                    &mut self.nodes,
                    ("", "Div"),
                    "standardised",
                    &[&x, &stds],
                    &[],
                );
            }
            parts.push(x);
        }
        for c in &pre.categorical {
            let attrs = [strings("cats_strings", &c.categories), int("zeros", 1)];
            let hot = node(
                &mut self.nodes,
                ("ai.onnx.ml", "OneHotEncoder"),
                &format!("{}.onehot", c.name),
                &[&c.name],
                &attrs,
            );
            parts.push(node(
                &mut self.nodes,
                ("", "Flatten"),
                &format!("{}.flat", c.name),
                &[&hot],
                &[int("axis", 1)],
            ));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        node(
            &mut self.nodes,
            ("", "Concat"),
            "features",
            &refs,
            &[int("axis", 1)],
        )
    }

    fn gemm(&mut self, name: &str, x: &str, w: &Tensor, b: &Tensor) -> String {
        let w_name = self.constant(&format!("{name}.weight"), &w.size(), &f32s(w));
        let b_name = self.constant(&format!("{name}.bias"), &b.size(), &f32s(b));
        node(
            &mut self.nodes,
            ("", "Gemm"),
            name,
            &[x, &w_name, &b_name],
            &[int("transB", 1)],
        )
    }

    /// Model units → target units: ·std + mean, then exp(·) − 1 for a log target.
    fn invert_targets(&mut self, x: &str, targets: &[TargetTransform]) -> String {
        let n = targets.len() as i64;
        let std: Vec<f32> = targets.iter().map(|t| t.std as f32).collect();
        let mean: Vec<f32> = targets.iter().map(|t| t.mean as f32).collect();
        let std = self.constant("target.std", &[n], &std);
        let mean = self.constant("target.mean", &[n], &mean);
        let scaled = node(
            &mut self.nodes,
            ("", "Mul"),
            "target.scaled",
            &[x, &std],
            &[],
        );
        let y = node(
            &mut self.nodes,
            ("", "Add"),
            "target.shifted",
            &[&scaled, &mean],
            &[],
        );
        if !targets.iter().any(|t| t.log) {
            return y;
        }
        // A log target for every output (one table target; a mix is not produced).
        let one = self.constant("one", &[], &[1.0]);
        let e = node(&mut self.nodes, ("", "Exp"), "target.exp", &[&y], &[]);
        node(
            &mut self.nodes,
            ("", "Sub"),
            "target.expm1",
            &[&e, &one],
            &[],
        )
    }

    fn finish(mut self, pre: &Preprocessor, output: &str, outputs: i64) -> Vec<u8> {
        let mut identity = Vec::new();
        put_str(&mut identity, 1, output);
        put_str(&mut identity, 2, "prediction");
        put_str(&mut identity, 3, "prediction");
        put_str(&mut identity, 4, "Identity");
        self.nodes.push(identity);
        let mut graph = Vec::new();
        self.nodes.iter().for_each(|n| put_bytes(&mut graph, 1, n));
        put_str(&mut graph, 2, "helpers_tabular_regression");
        self.initializers
            .iter()
            .for_each(|t| put_bytes(&mut graph, 5, t));
        let batch = Dim::Param("batch");
        if !pre.numeric.is_empty() {
            let dims = [Dim::Param("batch"), Dim::Value(pre.numeric.len() as i64)];
            put_bytes(&mut graph, 11, &value_info("numeric", &dims));
        }
        for c in &pre.categorical {
            put_bytes(
                &mut graph,
                11,
                &typed_value_info(&c.name, STRING, &[Dim::Param("batch"), Dim::Value(1)]),
            );
        }
        put_bytes(
            &mut graph,
            12,
            &value_info("prediction", &[batch, Dim::Value(outputs)]),
        );
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8); // ir_version 8 (opset 17)
        put_str(&mut model, 2, "helpers");
        put_str(&mut model, 3, env!("CARGO_PKG_VERSION"));
        put_bytes(&mut model, 7, &graph);
        put_bytes(&mut model, 8, &opset("", 17));
        put_bytes(&mut model, 8, &opset("ai.onnx.ml", 3));
        model
    }
}
