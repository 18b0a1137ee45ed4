//! ONNX export of a text run's bag of embeddings: token ids in (`ids` `[batch,
//! max_length]` int64, padded with 0 as the vocabulary encodes them), logits out — the
//! masked mean of the embeddings (`Gather`, `Equal`/`Not`/`Cast` for the padding mask,
//! `ReduceSum`, `Div`) and the linear classifier (`Gemm`). Kim's CNN and hashed bigrams
//! have no export yet (refused by name).
use super::model::{TextNet, TextNetKind};
use crate::deploy::onnx::proto::{
    float_tensor, int, int64_tensor, node, opset, typed_value_info, value_info, Dim, INT64,
};
use crate::io::protobuf::{put_bytes, put_str, put_varint_field};
use crate::{Error, Result};
use std::path::Path;
use tch::{Kind, Tensor};

/// Writes the network as an ONNX file, atomically.
pub fn export(net: &TextNet, max_length: i64, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &to_bytes(net, max_length)?)
}

pub fn to_bytes(net: &TextNet, max_length: i64) -> Result<Vec<u8>> {
    if net.config.kind != TextNetKind::Bag || net.config.bigram_buckets > 0 {
        return Err(Error::argument(
            "net",
            "the ONNX export covers the bag of word embeddings (no CNN, no hashed bigrams)",
        ));
    }
    let weights: std::collections::HashMap<String, Tensor> = net.weights().into_iter().collect();
    let get = |n: &str| {
        weights
            .get(n)
            .ok_or_else(|| Error::argument("net", format!("no weight `{n}`")))
    };
    let floats = |t: &Tensor| {
        Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().view([-1])).expect("floats")
    };
    let (emb, w, b) = (get("embedding.weight")?, get("fc.weight")?, get("fc.bias")?);
    let mut inits = vec![
        float_tensor("embedding", &emb.size(), &floats(emb)),
        float_tensor("fc.weight", &w.size(), &floats(w)),
        float_tensor("fc.bias", &b.size(), &floats(b)),
        float_tensor("one", &[], &[1.0]),
        int64_tensor("pad", &[], &[0]),
        int64_tensor("axis1", &[1], &[1]),
        int64_tensor("axis2", &[1], &[2]),
    ];
    let mut n = Vec::new();
    let e = node(
        &mut n,
        ("", "Gather"),
        "embed",
        &["embedding", "ids"],
        &[int("axis", 0)],
    );
    let pad = node(&mut n, ("", "Equal"), "is_pad", &["ids", "pad"], &[]);
    let real = node(&mut n, ("", "Not"), "is_token", &[&pad], &[]);
    let mask = node(&mut n, ("", "Cast"), "mask", &[&real], &[int("to", 1)]);
    let mask3 = node(&mut n, ("", "Unsqueeze"), "mask3", &[&mask, "axis2"], &[]);
    let masked = node(&mut n, ("", "Mul"), "masked", &[&e, &mask3], &[]);
    let summed = node(
        &mut n,
        ("", "ReduceSum"),
        "summed",
        &[&masked, "axis1"],
        &[int("keepdims", 0)],
    );
    let count = node(
        &mut n,
        ("", "ReduceSum"),
        "count",
        &[&mask, "axis1"],
        &[int("keepdims", 1)],
    );
    let count = node(&mut n, ("", "Max"), "count_min1", &[&count, "one"], &[]);
    let mean = node(&mut n, ("", "Div"), "mean", &[&summed, &count], &[]);
    let logits = node(
        &mut n,
        ("", "Gemm"),
        "fc",
        &[&mean, "fc.weight", "fc.bias"],
        &[int("transB", 1)],
    );
    let mut identity = Vec::new();
    put_str(&mut identity, 1, &logits);
    put_str(&mut identity, 2, "logits");
    put_str(&mut identity, 3, "logits");
    put_str(&mut identity, 4, "Identity");
    n.push(identity);
    let mut graph = Vec::new();
    n.iter().for_each(|x| put_bytes(&mut graph, 1, x));
    put_str(&mut graph, 2, "helpers_text_bag");
    inits.drain(..).for_each(|t| put_bytes(&mut graph, 5, &t));
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
    Ok(model)
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
