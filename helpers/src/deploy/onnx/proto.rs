//! The ONNX protobuf messages the exporters write (this module's and the regression
//! track's, `tasks::regression::onnx`) (onnx/onnx.proto3; field numbers in
//! comments): value infos, attributes, and the tensor type codes.
use crate::io::protobuf::{put_bytes, put_float, put_packed_i64, put_str, put_varint_field};

pub(crate) const FLOAT: u64 = 1; // TensorProto.DataType.FLOAT
pub(crate) const STRING: u64 = 8; // TensorProto.DataType.STRING
pub(crate) const INT64: u64 = 7; // TensorProto.DataType.INT64

pub(crate) enum Dim<'a> {
    Value(i64),
    Param(&'a str),
}

/// ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1, shape 2: {dim 1: {dim_value 1 | dim_param 2}}}}}.
pub(crate) fn value_info(name: &str, dims: &[Dim]) -> Vec<u8> {
    typed_value_info(name, FLOAT, dims)
}

/// [`value_info`] of a tensor of element type `elem_type`.
pub(crate) fn typed_value_info(name: &str, elem_type: u64, dims: &[Dim]) -> Vec<u8> {
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
    put_varint_field(&mut tensor, 1, elem_type);
    put_bytes(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_str(&mut vi, 1, name);
    put_bytes(&mut vi, 2, &ty);
    vi
}

/// AttributeProto{name 1, type 20 = INT (2), i 3}.
pub(crate) fn int(name: &str, v: i64) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_varint_field(&mut a, 3, v as u64);
    put_varint_field(&mut a, 20, 2);
    a
}

/// AttributeProto{name 1, type 20 = FLOAT (1), f 2}.
pub(crate) fn float_attr(name: &str, v: f32) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_float(&mut a, 2, v);
    put_varint_field(&mut a, 20, 1);
    a
}

/// AttributeProto{name 1, type 20 = INTS (7), ints 8}.
pub(crate) fn ints(name: &str, v: &[i64]) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_packed_i64(&mut a, 8, v);
    put_varint_field(&mut a, 20, 7);
    a
}

/// AttributeProto{name 1, type 20 = STRING (3), s 4}.
pub(crate) fn string(name: &str, v: &str) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    put_str(&mut a, 4, v);
    put_varint_field(&mut a, 20, 3);
    a
}

/// AttributeProto{name 1, type 20 = STRINGS (8), strings 9}.
pub(crate) fn strings(name: &str, v: &[String]) -> Vec<u8> {
    let mut a = Vec::new();
    put_str(&mut a, 1, name);
    v.iter().for_each(|s| put_str(&mut a, 9, s));
    put_varint_field(&mut a, 20, 8);
    a
}

/// A NodeProto{input 1, output 2, name 3, op_type 4, attribute 5, domain 7} with one output
/// `<name>.out`; returns it.
pub(crate) fn node(
    nodes: &mut Vec<Vec<u8>>,
    (domain, op): (&str, &str),
    name: &str,
    inputs: &[&str],
    attributes: &[Vec<u8>],
) -> String {
    let output = format!("{name}.out");
    let mut node = Vec::new();
    inputs.iter().for_each(|i| put_str(&mut node, 1, i));
    put_str(&mut node, 2, &output);
    put_str(&mut node, 3, name);
    put_str(&mut node, 4, op);
    attributes.iter().for_each(|a| put_bytes(&mut node, 5, a));
    if !domain.is_empty() {
        put_str(&mut node, 7, domain);
    }
    nodes.push(node);
    output
}

/// A float TensorProto{dims 1, data_type 2, name 8, raw_data 9 (little endian)}.
pub(crate) fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> Vec<u8> {
    let mut proto = Vec::new();
    if !dims.is_empty() {
        put_packed_i64(&mut proto, 1, dims);
    }
    put_varint_field(&mut proto, 2, FLOAT);
    put_str(&mut proto, 8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(&mut proto, 9, &raw);
    proto
}

/// An int64 TensorProto (raw little-endian data).
pub(crate) fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> Vec<u8> {
    let mut proto = Vec::new();
    if !dims.is_empty() {
        put_packed_i64(&mut proto, 1, dims);
    }
    put_varint_field(&mut proto, 2, INT64);
    put_str(&mut proto, 8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(&mut proto, 9, &raw);
    proto
}

/// OperatorSetIdProto{domain 1, version 2}.
pub(crate) fn opset(domain: &str, version: u64) -> Vec<u8> {
    let mut o = Vec::new();
    put_str(&mut o, 1, domain);
    put_varint_field(&mut o, 2, version);
    o
}
