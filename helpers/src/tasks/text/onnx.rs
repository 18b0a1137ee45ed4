//! ONNX export of a text run: token ids in (`ids` `[batch, max_length]` int64, padded
//! with 0 as the vocabulary encodes them), logits out. The bag is the masked mean of
//! its word embeddings (`Gather`, `Equal`/`Not`/`Cast` for the padding mask,
//! `ReduceSum`, `Div`) plus, with hashed bigrams, the same mean over the pairs of
//! neighbouring ids hashed as in tch (`Slice`, `Mul`/`Add`/`Mod`, `Where`); Kim's CNN is
//! `Conv` per width, `Relu`, `ReduceMax` over time and `Concat`; both end in the linear
//! classifier (`Gemm`). The Transformer's blocks are written out op by op
//! (`LayerNormalization`, `MatMul`, the heads by `Reshape`/`Transpose`, `Softmax` over
//! scores with the padding as `-inf`, the exact GELU through `Erf`), then the masked mean.
use super::model::{TextNet, TextNetKind, BIGRAM_PRIME};
use crate::deploy::onnx::proto::{
    float_attr, float_tensor, int, int64_tensor, ints, node, opset, typed_value_info, value_info,
    Dim, INT64,
};
use crate::io::protobuf::{put_bytes, put_str, put_varint_field};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// Writes the network as an ONNX file, atomically.
pub fn export(net: &TextNet, max_length: i64, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &to_bytes(net, max_length)?)
}

/// Nodes and initialisers of the graph being built.
struct Graph {
    nodes: Vec<Vec<u8>>,
    inits: Vec<Vec<u8>>,
    weights: HashMap<String, Tensor>,
}

impl Graph {
    fn op(&mut self, op: &str, name: &str, inputs: &[&str], attributes: &[Vec<u8>]) -> String {
        node(&mut self.nodes, ("", op), name, inputs, attributes)
    }

    /// The network's weight `name` as an initialiser of the same name.
    fn weight(&mut self, name: &str) -> Result<String> {
        self.weight_as(name, name)
    }

    /// The network's weight `name` as the initialiser `as_name`.
    fn weight_as(&mut self, name: &str, as_name: &str) -> Result<String> {
        let t = self
            .weights
            .get(name)
            .ok_or_else(|| Error::argument("net", format!("no weight `{name}`")))?;
        let values =
            Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().view([-1])).expect("floats");
        self.inits.push(float_tensor(as_name, &t.size(), &values));
        Ok(as_name.to_string())
    }

    /// A linear layer `prefix` on `[.., in]` inputs: `MatMul` by the stored transpose,
    /// then the bias.
    fn linear(&mut self, x: &str, prefix: &str) -> Result<String> {
        let w = self
            .weights
            .get(&format!("{prefix}.weight"))
            .ok_or_else(|| Error::argument("net", format!("no weight `{prefix}.weight`")))?
            .transpose(0, 1);
        self.weights.insert(format!("{prefix}.weight_t"), w);
        let wt = self.weight(&format!("{prefix}.weight_t"))?;
        let b = self.weight(&format!("{prefix}.bias"))?;
        let m = self.op("MatMul", &format!("{prefix}.matmul"), &[x, &wt], &[]);
        Ok(self.op("Add", &format!("{prefix}.add"), &[&m, &b], &[]))
    }

    /// tch's layer norm `prefix` (ε 1e-5) over the last axis.
    fn layer_norm(&mut self, x: &str, prefix: &str) -> Result<String> {
        let (w, b) = (
            self.weight(&format!("{prefix}.weight"))?,
            self.weight(&format!("{prefix}.bias"))?,
        );
        let attrs = [int("axis", -1), float_attr("epsilon", 1e-5)];
        Ok(self.op("LayerNormalization", prefix, &[x, &w, &b], &attrs))
    }

    fn floats(&mut self, name: &str, values: &[f32]) -> String {
        self.inits.push(float_tensor(name, &[], values));
        name.to_string()
    }

    fn int64s(&mut self, name: &str, dims: &[i64], values: &[i64]) -> String {
        self.inits.push(int64_tensor(name, dims, values));
        name.to_string()
    }

    /// A float mask `[batch, length]` of the positions of `ids` that are not padding.
    fn real_tokens(&mut self, ids: &str, name: &str) -> String {
        let pad = self.op("Equal", &format!("{name}_is_pad"), &[ids, "pad"], &[]);
        self.op("Not", name, &[&pad], &[])
    }

    /// Σ over time of the embeddings of `ids` where `real`, and the count of `real`.
    fn masked_sum(&mut self, ids: &str, real: &str, name: &str) -> (String, String) {
        let e = self.op(
            "Gather",
            &format!("{name}_embed"),
            &["embedding", ids],
            &[int("axis", 0)],
        );
        self.masked_sum_of(&e, real, name)
    }

    /// Σ over time of `h` `[batch, length, dim]` where `real`, and the count of `real`.
    fn masked_sum_of(&mut self, h: &str, real: &str, name: &str) -> (String, String) {
        let mask = self.op("Cast", &format!("{name}_mask"), &[real], &[int("to", 1)]);
        let mask3 = self.op(
            "Unsqueeze",
            &format!("{name}_mask3"),
            &[&mask, "axis2"],
            &[],
        );
        let masked = self.op("Mul", &format!("{name}_masked"), &[h, &mask3], &[]);
        let keep = |k| [int("keepdims", k)];
        let sum = self.op(
            "ReduceSum",
            &format!("{name}_sum"),
            &[&masked, "axis1"],
            &keep(0),
        );
        let count = self.op(
            "ReduceSum",
            &format!("{name}_count"),
            &[&mask, "axis1"],
            &keep(1),
        );
        (sum, count)
    }

    /// `sum / max(count, 1)`: the mean over real tokens, a text of padding only giving 0
    /// (as tch's `clamp_min(1.0)`).
    fn mean(&mut self, sum: &str, count: &str) -> String {
        let count = self.op("Max", "count_min1", &[count, "one"], &[]);
        self.op("Div", "mean", &[sum, &count], &[])
    }
}

pub fn to_bytes(net: &TextNet, max_length: i64) -> Result<Vec<u8>> {
    let mut g = Graph {
        nodes: Vec::new(),
        inits: Vec::new(),
        weights: net.weights().into_iter().collect(),
    };
    let features = match net.config.kind {
        TextNetKind::Bag => bag(&mut g, net, max_length)?,
        TextNetKind::Cnn => cnn(&mut g, net)?,
        TextNetKind::Transformer => transformer(&mut g, net, max_length)?,
    };
    let (w, b) = (g.weight("fc.weight")?, g.weight("fc.bias")?);
    let logits = g.op("Gemm", "fc", &[&features, &w, &b], &[int("transB", 1)]);
    let mut identity = Vec::new();
    put_str(&mut identity, 1, &logits);
    put_str(&mut identity, 2, "logits");
    put_str(&mut identity, 3, "logits");
    put_str(&mut identity, 4, "Identity");
    g.nodes.push(identity);
    Ok(model_bytes(g, net, max_length))
}

/// The embedding table under the name the graph's `Gather`s use.
fn embedding(g: &mut Graph) -> Result<()> {
    g.weight_as("embedding.weight", "embedding").map(drop)
}

/// The masked mean of the word embeddings and, with buckets, of the hashed bigrams.
fn bag(g: &mut Graph, net: &TextNet, max_length: i64) -> Result<String> {
    embedding(g)?;
    g.inits.push(float_tensor("one", &[], &[1.0]));
    g.int64s("pad", &[], &[0]);
    g.int64s("axis1", &[1], &[1]);
    g.int64s("axis2", &[1], &[2]);
    let real = g.real_tokens("ids", "is_token");
    let (mut sum, mut count) = g.masked_sum("ids", &real, "words");
    let buckets = net.config.bigram_buckets;
    if buckets > 0 && max_length > 1 {
        g.int64s("zero", &[1], &[0]);
        g.int64s("one_i", &[1], &[1]);
        g.int64s("last", &[1], &[max_length - 1]);
        g.int64s("end", &[1], &[max_length]);
        g.int64s("prime", &[], &[BIGRAM_PRIME]);
        g.int64s("buckets", &[], &[buckets]);
        g.int64s("vocab", &[], &[net.vocab_size]);
        let a = g.op("Slice", "first", &["ids", "zero", "last", "one_i"], &[]);
        let b = g.op("Slice", "second", &["ids", "one_i", "end", "one_i"], &[]);
        let scaled = g.op("Mul", "scaled", &[&a, "prime"], &[]);
        let pair = g.op("Add", "pair", &[&scaled, &b], &[]);
        let bucket = g.op("Mod", "bucket", &[&pair, "buckets"], &[]);
        let hashed = g.op("Add", "hashed", &[&bucket, "vocab"], &[]);
        let (ra, rb) = (
            g.real_tokens(&a, "first_real"),
            g.real_tokens(&b, "second_real"),
        );
        let real_pair = g.op("And", "real_pair", &[&ra, &rb], &[]);
        let bigrams = g.op("Where", "bigrams", &[&real_pair, &hashed, &a], &[]);
        let (bsum, bcount) = g.masked_sum(&bigrams, &real_pair, "bigrams");
        sum = g.op("Add", "sum", &[&sum, &bsum], &[]);
        count = g.op("Add", "count", &[&count, &bcount], &[]);
    }
    Ok(g.mean(&sum, &count))
}

/// Kim's CNN: per width, a 1-D convolution over the embeddings, ReLU, max over time.
fn cnn(g: &mut Graph, net: &TextNet) -> Result<String> {
    embedding(g)?;
    let e = g.op("Gather", "embed", &["embedding", "ids"], &[int("axis", 0)]);
    let x = g.op("Transpose", "channels", &[&e], &[ints("perm", &[0, 2, 1])]);
    let mut pooled = Vec::new();
    for &w in &net.config.widths {
        let (weight, bias) = (
            g.weight(&format!("conv{w}.weight"))?,
            g.weight(&format!("conv{w}.bias"))?,
        );
        let c = g.op(
            "Conv",
            &format!("conv{w}"),
            &[&x, &weight, &bias],
            &[ints("kernel_shape", &[w])],
        );
        let r = g.op("Relu", &format!("relu{w}"), &[&c], &[]);
        let attrs = [ints("axes", &[2]), int("keepdims", 0)];
        pooled.push(g.op("ReduceMax", &format!("max{w}"), &[&r], &attrs));
    }
    let inputs: Vec<&str> = pooled.iter().map(String::as_str).collect();
    Ok(g.op("Concat", "features", &inputs, &[int("axis", 1)]))
}

/// The pre-norm Transformer encoder, then the mean over real tokens.
fn transformer(g: &mut Graph, net: &TextNet, max_length: i64) -> Result<String> {
    embedding(g)?;
    let positions = g
        .weights
        .get("encoder.positions.weight")
        .map(|p| p.narrow(0, 0, max_length));
    let positions = positions.ok_or_else(|| Error::argument("net", "no position embeddings"))?;
    g.weights.insert("positions".into(), positions);
    g.weight("positions")?;
    let (d, heads) = (net.config.embedding_dim, net.config.heads);
    let constants: [(&str, &[i64], &[i64]); 6] = [
        ("pad", &[], &[0]),
        ("axis1", &[1], &[1]),
        ("axis2", &[1], &[2]),
        ("axes12", &[2], &[1, 2]),
        ("split_heads", &[4], &[0, 0, heads, d / heads]),
        ("merge_heads", &[3], &[0, 0, d]),
    ];
    for (n, dims, v) in constants {
        g.int64s(n, dims, v);
    }
    let ids_range: Vec<i64> = (0..max_length).collect();
    g.int64s("position_ids", &[max_length], &ids_range);
    for (n, v) in [
        ("one", 1.0),
        ("half", 0.5),
        ("sqrt2", std::f32::consts::SQRT_2),
    ] {
        g.floats(n, &[v]);
    }
    g.floats("scale", &[1.0 / ((d / heads) as f32).sqrt()]);
    g.floats("zero_f", &[0.0]);
    g.floats("neg_inf", &[f32::NEG_INFINITY]);
    let e = g.op("Gather", "embed", &["embedding", "ids"], &[int("axis", 0)]);
    let mut h = g.op("Add", "with_positions", &[&e, "positions"], &[]);
    let real = g.real_tokens("ids", "is_token");
    // As in tch: the first slot stays open, so a text of padding only attends to something.
    let first = g.op("Equal", "first_slot", &["position_ids", "pad"], &[]);
    let attend = g.op("Or", "attend", &[&real, &first], &[]);
    let bias = g.op("Where", "mask_bias", &[&attend, "zero_f", "neg_inf"], &[]);
    let bias = g.op("Unsqueeze", "mask_bias4", &[&bias, "axes12"], &[]);
    for i in 0..net.config.layers {
        h = block(g, &h, &bias, &format!("encoder.block{i}"), d)?;
    }
    let h = g.layer_norm(&h, "encoder.norm")?;
    let (sum, count) = g.masked_sum_of(&h, &real, "mean");
    Ok(g.mean(&sum, &count))
}

/// One pre-norm block: h + attention(norm(h)), then h + feed-forward(norm(h)).
fn block(g: &mut Graph, h: &str, bias: &str, p: &str, d: i64) -> Result<String> {
    let x = g.layer_norm(h, &format!("{p}.norm_attention"))?;
    let qkv = g.linear(&x, &format!("{p}.qkv"))?;
    let heads: Vec<String> = (0..3)
        .map(|k| {
            let (start, end) = (format!("{p}.start{k}"), format!("{p}.end{k}"));
            g.int64s(&start, &[1], &[k * d]);
            g.int64s(&end, &[1], &[(k + 1) * d]);
            let part = g.op(
                "Slice",
                &format!("{p}.part{k}"),
                &[&qkv, &start, &end, "axis2"],
                &[],
            );
            let split = g.op(
                "Reshape",
                &format!("{p}.split{k}"),
                &[&part, "split_heads"],
                &[],
            );
            g.op(
                "Transpose",
                &format!("{p}.heads{k}"),
                &[&split],
                &[ints("perm", &[0, 2, 1, 3])],
            )
        })
        .collect();
    let kt = g.op(
        "Transpose",
        &format!("{p}.keys_t"),
        &[&heads[1]],
        &[ints("perm", &[0, 1, 3, 2])],
    );
    let scores = g.op("MatMul", &format!("{p}.scores"), &[&heads[0], &kt], &[]);
    let scores = g.op("Mul", &format!("{p}.scaled"), &[&scores, "scale"], &[]);
    let scores = g.op("Add", &format!("{p}.masked"), &[&scores, bias], &[]);
    let weights = g.op(
        "Softmax",
        &format!("{p}.softmax"),
        &[&scores],
        &[int("axis", -1)],
    );
    let o = g.op(
        "MatMul",
        &format!("{p}.attended"),
        &[&weights, &heads[2]],
        &[],
    );
    let o = g.op(
        "Transpose",
        &format!("{p}.merge_t"),
        &[&o],
        &[ints("perm", &[0, 2, 1, 3])],
    );
    let o = g.op("Reshape", &format!("{p}.merged"), &[&o, "merge_heads"], &[]);
    let a = g.linear(&o, &format!("{p}.out"))?;
    let h = g.op("Add", &format!("{p}.residual_attention"), &[h, &a], &[]);
    let x = g.layer_norm(&h, &format!("{p}.norm_ff"))?;
    let f = g.linear(&x, &format!("{p}.ff_in"))?;
    let f = gelu(g, &f, &format!("{p}.gelu"));
    let f = g.linear(&f, &format!("{p}.ff_out"))?;
    Ok(g.op("Add", &format!("{p}.residual_ff"), &[&h, &f], &[]))
}

/// The exact GELU: x · ½ (1 + erf(x / √2)).
fn gelu(g: &mut Graph, x: &str, name: &str) -> String {
    let scaled = g.op("Div", &format!("{name}.scaled"), &[x, "sqrt2"], &[]);
    let erf = g.op("Erf", &format!("{name}.erf"), &[&scaled], &[]);
    let shifted = g.op("Add", &format!("{name}.shifted"), &[&erf, "one"], &[]);
    let halved = g.op("Mul", &format!("{name}.halved"), &[&shifted, "half"], &[]);
    g.op("Mul", name, &[x, &halved], &[])
}

/// The ModelProto around the graph: `ids` in, `logits` out, opset 17.
fn model_bytes(g: Graph, net: &TextNet, max_length: i64) -> Vec<u8> {
    let mut graph = Vec::new();
    g.nodes.iter().for_each(|x| put_bytes(&mut graph, 1, x));
    put_str(
        &mut graph,
        2,
        &format!("helpers_text_{:?}", net.config.kind).to_lowercase(),
    );
    g.inits.iter().for_each(|t| put_bytes(&mut graph, 5, t));
    put_bytes(
        &mut graph,
        11,
        &typed_value_info("ids", INT64, &[Dim::Param("batch"), Dim::Value(max_length)]),
    );
    put_bytes(
        &mut graph,
        12,
        &value_info("logits", &[Dim::Param("batch"), Dim::Value(net.classes)]),
    );
    let mut model = Vec::new();
    put_varint_field(&mut model, 1, 8);
    put_str(&mut model, 2, "helpers");
    put_str(&mut model, 3, env!("CARGO_PKG_VERSION"));
    put_bytes(&mut model, 7, &graph);
    put_bytes(&mut model, 8, &opset("", 17));
    model
}

/// Exports `run` to `<run>/model.onnx` and checks it in ONNX Runtime on `data`'s test
/// ids against tch's logits; `scripts` is the repository's `scripts/` folder.
pub fn export_checked(
    run: &super::fit::TrainedText,
    data: &super::data::TextData,
    scripts: &Path,
) -> Result<crate::deploy::check::OnnxCheck> {
    let path = run.run.file("model.onnx");
    let max_length = data.tokens.max_length as i64;
    export(&run.net, max_length, &path)?;
    let n = data.test.len();
    let ids: Vec<Vec<i64>> = data
        .test
        .encoded
        .ids
        .chunks(max_length as usize)
        .map(<[i64]>::to_vec)
        .collect();
    let logits = run.net.predict(&data.test.ids, 1024).to_kind(Kind::Double);
    let expected: Vec<Vec<f64>> = (0..n as i64)
        .map(|i| Vec::<f64>::try_from(&logits.get(i)).expect("a row"))
        .collect();
    let inputs = serde_json::json!({ "ids": ids });
    crate::deploy::check::check_named(
        &path,
        &inputs,
        &expected,
        scripts,
        "token ids in, logits out",
    )
}

/// Each named run exported and checked ([`export_checked`]), one row per run: file size,
/// operators, and how closely ONNX Runtime agrees with tch on the test ids.
pub fn export_table(
    runs: &[(&str, &super::fit::TrainedText)],
    data: &super::data::TextData,
    scripts: &Path,
) -> Result<crate::render::Table> {
    use polars::prelude::Column;
    let checks = runs
        .iter()
        .map(|(_, run)| export_checked(run, data, scripts))
        .collect::<Result<Vec<_>>>()?;
    let column = |name: &str, f: &dyn Fn(&crate::deploy::check::OnnxCheck) -> String| {
        Column::new(name.into(), checks.iter().map(f).collect::<Vec<_>>())
    };
    crate::render::Table::from_columns(
        format!(
            "ONNX exports checked by ONNX Runtime {} on the {} test texts (token ids in, logits out)",
            checks.first().map_or("", |c| c.onnxruntime.as_str()),
            data.test.len()
        ),
        vec![
            Column::new(
                "model".into(),
                runs.iter().map(|r| r.0.to_string()).collect::<Vec<_>>(),
            ),
            column("file", &|c| c.path.display().to_string()),
            column("KB", &|c| format!("{:.0}", c.bytes as f64 / 1024.0)),
            column("max rel. diff", &|c| format!("{:.1e}", c.max_rel_diff)),
            column("max abs. diff", &|c| format!("{:.1e}", c.max_abs_diff)),
            column("operators", &|c| c.ops.join(", ")),
        ],
    )
}
