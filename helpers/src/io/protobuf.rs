//! The protobuf wire format, written by hand: enough for TensorBoard events and ONNX
//! models, without a code generator (no `protoc` here) or a dependency.
//! Key = field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

pub(crate) fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_varint(out, field << 3 | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_float(out: &mut Vec<u8>, field: u64, v: f32) {
    put_varint(out, field << 3 | 5);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A packed repeated int64 field (proto3's default for repeated scalars).
pub(crate) fn put_packed_i64(out: &mut Vec<u8>, field: u64, values: &[i64]) {
    let mut packed = Vec::new();
    values
        .iter()
        .for_each(|&v| put_varint(&mut packed, v as u64));
    put_bytes(out, field, &packed);
}

/// A string field.
pub(crate) fn put_str(out: &mut Vec<u8>, field: u64, text: &str) {
    put_bytes(out, field, text.as_bytes());
}
