//! The python release's pickles, read as data: dicts of numpy arrays decoded from the
//! pickle VM's values (dtype, shape, C or Fortran order), labels as lists or arrays.
use super::*;

/// A python batch: `data` (uint8 `[N, 3072]`) and the label list of the chosen kind.
pub(super) fn decode_python(path: &Path, bytes: &[u8], r: Reading) -> Result<Part> {
    let root = unpickle(path, bytes)?;
    let dict = as_dict(path, &root)?;
    let data = dict_get(path, dict, "data")?;
    let array = decode_ndarray(data).map_err(|why| Error::data(path, format!("`data`: {why}")))?;
    let n = array.shape.first().copied().unwrap_or(0);
    let per_image: usize = array.shape.iter().skip(1).product();
    if array.dtype.kind != 'u' || array.dtype.size != 1 || per_image != IMAGE_BYTES {
        return Err(Error::data(
            path,
            format!(
                "`data` is a {} array of shape {:?}; CIFAR images are uint8 of shape [N, 3072]",
                array.dtype.name(),
                array.shape
            ),
        ));
    }
    let key = match (r.cifar, r.labels) {
        (Cifar::Cifar10, _) => "labels",
        (Cifar::Cifar100, Cifar100Labels::Fine) => "fine_labels",
        (Cifar::Cifar100, Cifar100Labels::Coarse) => "coarse_labels",
    };
    let labels = decode_labels(dict_get(path, dict, key)?)
        .map_err(|why| Error::data(path, format!("`{key}`: {why}")))?;
    if labels.len() != n {
        return Err(Error::data(
            path,
            format!("{n} images but {} `{key}`", labels.len()),
        ));
    }
    Ok(Part {
        pixels: array.data,
        labels,
    })
}

/// Runs the data-only pickle machine; errors name the file and, for a short file, its size.
pub(super) fn unpickle(path: &Path, bytes: &[u8]) -> Result<Value> {
    pickle::load(bytes, ALLOWED_GLOBALS)
        .map(|(v, _)| v)
        .map_err(|e| match e {
            PickleError::Truncated { .. } => Error::data(
                path,
                format!(
                    "truncated: {e}, but the file ends after {} bytes",
                    bytes.len()
                ),
            )
            .with_hint(format!(
                "the file is incomplete; extract the official archive from {HOMEPAGE} again"
            )),
            other => Error::data(path, format!("not a CIFAR python batch: {other}")),
        })
}

pub(super) fn as_dict<'a>(path: &Path, v: &'a Value) -> Result<&'a [(Value, Value)]> {
    match v {
        Value::Dict(items) => Ok(items),
        other => Err(Error::data(
            path,
            format!("expected a pickled dict, found {}", other.describe()),
        )),
    }
}

/// The value of `key`, whether the pickle stored keys as bytes or as text.
pub(super) fn dict_get<'a>(
    path: &Path,
    dict: &'a [(Value, Value)],
    key: &str,
) -> Result<&'a Value> {
    dict.iter()
        .find(|(k, _)| text_of(k).as_deref() == Some(key))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            let keys: Vec<String> = dict
                .iter()
                .map(|(k, _)| {
                    text_of(k)
                        .map(|t| t.into_owned())
                        .unwrap_or_else(|| k.describe())
                })
                .collect();
            Error::data(
                path,
                format!("no key `{key}`; the dict holds {}", keys.join(", ")),
            )
        })
}

/// Text of a str, of UTF-8 bytes, or of Python 3's protocol-2 spelling of bytes.
pub(super) fn text_of(v: &Value) -> Option<Cow<'_, str>> {
    if let Some(t) = v.as_text() {
        return Some(Cow::Borrowed(t));
    }
    let bytes = bytes_of(v).ok()?;
    String::from_utf8(bytes.into_owned()).ok().map(Cow::Owned)
}

/// The bytes of a `bytes`/`bytearray` value, or of `_codecs.encode(text, "latin1")`,
/// which is how Python 3 writes `bytes` at pickle protocol 2.
pub(super) fn bytes_of(v: &Value) -> std::result::Result<Cow<'_, [u8]>, String> {
    match v {
        Value::Bytes(b) => Ok(Cow::Borrowed(b)),
        Value::Call { callee, args, .. } if callee == "_codecs.encode" => {
            let (Some(text), Some(enc)) = (args.first(), args.get(1)) else {
                return Err("`_codecs.encode` without text and encoding".into());
            };
            let (Value::Str(text), Some("latin1" | "latin-1")) = (text, enc.as_text()) else {
                return Err(format!(
                    "`_codecs.encode` of {} as {}, expected text as latin1",
                    text.describe(),
                    enc.describe()
                ));
            };
            text.chars()
                .map(|c| {
                    u8::try_from(u32::from(c)).map_err(|_| "a non-latin1 character".to_string())
                })
                .collect::<std::result::Result<Vec<u8>, String>>()
                .map(Cow::Owned)
        }
        other => Err(format!("expected bytes, found {}", other.describe())),
    }
}

/// A numpy dtype: kind (`u`, `i`, `f`, …), item size and byte order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dtype {
    kind: char,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn name(&self) -> String {
        format!(
            "{}{}{}",
            if self.big_endian { ">" } else { "" },
            self.kind,
            self.size
        )
    }
}

/// A decoded numpy array, its data in C (row-major) order.
#[derive(Debug)]
pub(super) struct NdArray {
    shape: Vec<usize>,
    dtype: Dtype,
    data: Vec<u8>,
}

/// A pickled numpy array, in either of numpy's spellings: `_reconstruct` + state
/// (protocols 2–4) or `_frombuffer(buffer, dtype, shape, order)` (protocol 5).
pub(super) fn decode_ndarray(v: &Value) -> std::result::Result<NdArray, String> {
    let Value::Call {
        callee,
        args,
        state,
    } = v
    else {
        return Err(format!("expected a numpy array, found {}", v.describe()));
    };
    if callee.ends_with("multiarray._reconstruct") {
        let Some(Value::Tuple(items)) = state.as_deref() else {
            return Err("a numpy array without its state".into());
        };
        // (version, shape, dtype, is_fortran, data); numpy before 1.0 left out version.
        let items = if items.len() == 5 {
            &items[1..]
        } else {
            &items[..]
        };
        let [shape, dtype, fortran, raw] = items else {
            return Err(format!(
                "a numpy array state of {} items, expected 4 or 5",
                items.len()
            ));
        };
        let fortran = matches!(fortran, Value::Bool(true)) || fortran.as_i64() == Some(1);
        build_array(shape_of(shape)?, dtype_of(dtype)?, fortran, &bytes_of(raw)?)
    } else if callee.ends_with("numeric._frombuffer") {
        let [buf, dtype, shape, order] = args.as_slice() else {
            return Err(format!(
                "`_frombuffer` with {} arguments, expected 4",
                args.len()
            ));
        };
        let fortran = order.as_text() == Some("F");
        build_array(shape_of(shape)?, dtype_of(dtype)?, fortran, &bytes_of(buf)?)
    } else {
        Err(format!(
            "expected a numpy array, found a call to `{callee}`"
        ))
    }
}

pub(super) fn shape_of(v: &Value) -> std::result::Result<Vec<usize>, String> {
    let Value::Tuple(dims) = v else {
        return Err(format!("array shape is {}, not a tuple", v.describe()));
    };
    dims.iter()
        .map(|d| {
            d.as_i64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| format!("array dimension {} is not a size", d.describe()))
        })
        .collect()
}

/// `numpy.dtype("u1", False, True)` with state `(3, "|", …)`.
pub(super) fn dtype_of(v: &Value) -> std::result::Result<Dtype, String> {
    let Value::Call {
        callee,
        args,
        state,
    } = v
    else {
        return Err(format!("array dtype is {}", v.describe()));
    };
    let spec = args.first().and_then(text_of);
    let Some(spec) = spec.filter(|_| callee == "numpy.dtype") else {
        return Err(format!("array dtype is {}", v.describe()));
    };
    let spec = spec.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = spec.chars();
    let kind = chars.next().ok_or("empty dtype")?;
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("dtype `{spec}` is not a kind and a size"))?;
    let order = match state.as_deref() {
        Some(Value::Tuple(items)) => items.get(1).and_then(|o| o.as_text().map(str::to_owned)),
        _ => None,
    };
    Ok(Dtype {
        kind,
        size,
        big_endian: order.as_deref() == Some(">"),
    })
}

/// Checks the data length against shape × item size and reorders Fortran arrays.
pub(super) fn build_array(
    shape: Vec<usize>,
    dtype: Dtype,
    fortran: bool,
    raw: &[u8],
) -> std::result::Result<NdArray, String> {
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("array shape overflows")?;
    let need = count
        .checked_mul(dtype.size)
        .ok_or("array size overflows")?;
    if raw.len() != need {
        return Err(format!(
            "array data holds {} bytes, but shape {shape:?} of {} needs {need} (truncated?)",
            raw.len(),
            dtype.name()
        ));
    }
    let data = if fortran && shape.len() > 1 {
        fortran_to_c(raw, &shape, dtype.size)
    } else {
        raw.to_vec()
    };
    Ok(NdArray { shape, dtype, data })
}

/// Column-major data to row-major, for any number of dimensions.
pub(super) fn fortran_to_c(raw: &[u8], shape: &[usize], item: usize) -> Vec<u8> {
    let count: usize = shape.iter().product();
    let mut out = vec![0u8; raw.len()];
    let mut index = vec![0usize; shape.len()];
    for c in 0..count {
        // Fortran offset of the current (row-major) multi-index.
        let mut f = 0;
        for d in (0..shape.len()).rev() {
            f = f * shape[d] + index[d];
        }
        out[c * item..(c + 1) * item].copy_from_slice(&raw[f * item..(f + 1) * item]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// Labels as a list of ints (the originals) or as a 1-D integer numpy array.
pub(super) fn decode_labels(v: &Value) -> std::result::Result<Vec<i64>, String> {
    match v {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .map(|l| {
                l.as_i64()
                    .ok_or_else(|| format!("a label is {}, not an int", l.describe()))
            })
            .collect(),
        Value::Call { .. } => {
            let a = decode_ndarray(v)?;
            if !matches!(a.dtype.kind, 'i' | 'u') || ![1, 2, 4, 8].contains(&a.dtype.size) {
                return Err(format!(
                    "labels of dtype {}, expected integers",
                    a.dtype.name()
                ));
            }
            Ok(a.data
                .chunks_exact(a.dtype.size)
                .map(|b| int_of(b, a.dtype))
                .collect())
        }
        other => Err(format!(
            "expected a list of ints, found {}",
            other.describe()
        )),
    }
}

/// One integer of 1, 2, 4 or 8 bytes in the dtype's byte order and signedness.
pub(super) fn int_of(b: &[u8], d: Dtype) -> i64 {
    let mut buf = [0u8; 8];
    let n = b.len();
    if d.big_endian {
        buf[8 - n..].copy_from_slice(b);
        buf.reverse();
    } else {
        buf[..n].copy_from_slice(b);
    }
    let unsigned = u64::from_le_bytes(buf);
    if d.kind == 'i' && n < 8 {
        let shift = 64 - 8 * n as u32;
        ((unsigned << shift) as i64) >> shift
    } else {
        unsigned as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_arrays_come_back_row_major() {
        // [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f = [0u8, 3, 1, 4, 2, 5];
        assert_eq!(fortran_to_c(&f, &[2, 3], 1), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn integers_of_every_width_and_order() {
        let le = |kind, size| Dtype {
            kind,
            size,
            big_endian: false,
        };
        assert_eq!(int_of(&[0xff], le('u', 1)), 255);
        assert_eq!(int_of(&[0xff], le('i', 1)), -1);
        assert_eq!(int_of(&[7, 0, 0, 0, 0, 0, 0, 0], le('i', 8)), 7);
        let be = Dtype {
            kind: 'i',
            size: 4,
            big_endian: true,
        };
        assert_eq!(int_of(&[0, 0, 1, 2], be), 258);
    }

    #[test]
    fn latin1_text_is_bytes() {
        let v = Value::Call {
            callee: "_codecs.encode".into(),
            args: vec![
                Value::Str("\u{0}\u{ff}a".into()),
                Value::Str("latin1".into()),
            ],
            state: None,
        };
        assert_eq!(bytes_of(&v).unwrap().as_ref(), &[0u8, 255, b'a']);
        assert_eq!(
            text_of(&Value::Bytes(b"data".to_vec())).as_deref(),
            Some("data")
        );
    }
}
