//! Reading PyTorch checkpoint files — what `torch.save(model.state_dict(), path)` writes —
//! without Python and without running anything from the file.
//!
//! Two layouts exist:
//! - **zip** (the default since torch 1.6): `<archive>/data.pkl` is a pickle whose tensors
//!   point, through persistent ids `('storage', storage_type, key, location, numel)`, at
//!   raw little-endian entries `<archive>/data/<key>`. The `<archive>` folder is named
//!   after the file when it was saved, so it is found, not assumed.
//! - **legacy** (`_use_new_zipfile_serialization=False`, and all files before torch 1.6):
//!   pickles back to back — a magic number, the protocol version, `sys_info`, the
//!   state_dict (persistent ids `('storage', storage_type, root_key, location, numel,
//!   view_metadata)`), the list of storage keys — then, for each key in that order, an
//!   8-byte little-endian element count and the raw bytes.
//!
//! The pickles go through [`super::pickle`], which refuses every global outside
//! [`STATE_DICT_GLOBALS`]: a file that pickles a whole `nn.Module`, or anything that
//! would run code on `torch.load`, is an error naming what it found. Tensors are rebuilt
//! from `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` with the
//! saved strides, checked against the storage before libtorch sees them.
use super::pickle::{self, PickleError, Value};
use crate::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The globals a state_dict pickle may refer to: the ordered dict, the tensor and
/// parameter rebuild functions and the typed storage classes. Anything else is refused.
pub const STATE_DICT_GLOBALS: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.UntypedStorage",
    "torch.storage.UntypedStorage",
];

/// `torch._utils` functions that rebuild a tensor from a storage (v1 predates torch 0.4).
const REBUILD_TENSOR: &[&str] = &[
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
];
/// Wraps a rebuilt tensor into an `nn.Parameter`; unwrapped here.
const REBUILD_PARAMETER: &str = "torch._utils._rebuild_parameter";
/// The first pickle of a legacy file (`torch.serialization.MAGIC_NUMBER`).
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The second pickle of a legacy file (`torch.serialization.PROTOCOL_VERSION`).
const LEGACY_PROTOCOL: i128 = 1001;
/// Keys under which training checkpoints commonly nest their state_dict.
const NESTED_KEYS: &[&str] = &["state_dict", "model"];
/// A tensor that repeats its storage (stride 0) is copied out; beyond this many bytes it
/// is refused, so that a tiny file cannot ask for terabytes.
const MAX_EXPANDED_BYTES: u128 = 1 << 30;
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Reads the tensors of a PyTorch state_dict file, in file order, onto the CPU.
///
/// Accepts the zip and the legacy `torch.save` formats. The file must hold a dict of
/// name → tensor (a `state_dict()`, plain or `OrderedDict`), or a training checkpoint
/// that nests one level down as `{"state_dict": {...}, ...}` or `{"model": {...}, ...}`
/// (the other entries, such as the epoch or the optimizer state, are then ignored).
/// Parameters are unwrapped to their tensors; dtypes float32/64, float16, bfloat16,
/// int64/32/16/8, uint8 and bool are read. Each returned tensor is contiguous and owns
/// its memory, even where the file stored views of one storage.
///
/// Nothing in the file is executed: a whole pickled model (`torch.save(model)`) or any
/// other Python object is an error that names the class or function found.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(ZIP_MAGIC.len());
    (&mut file)
        .take(ZIP_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head == ZIP_MAGIC {
        read_zip(path, file)
    } else {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        read_legacy(path, &bytes)
    }
}

// --- the zip format --------------------------------------------------------------------

fn read_zip(path: &Path, file: File) -> Result<Vec<(String, Tensor)>> {
    let archive_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        Error::data(path, format!("not a readable zip archive ({e})"))
            .with_hint("the file may be truncated: save or download it again")
    })?;
    let pickle_name = find_data_pkl(&archive).ok_or_else(|| {
        Error::data(
            path,
            "a zip archive without `<archive>/data.pkl`, so not a torch.save file",
        )
    })?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_owned();
    check_zip_byte_order(path, &mut archive, &prefix, archive_len)?;
    let pickle_bytes = zip_entry(&mut archive, &pickle_name, None, archive_len)
        .map_err(|e| Error::data(path, e))?;
    let (root, _) = pickle::load(&pickle_bytes, STATE_DICT_GLOBALS)
        .map_err(|e| pickle_error(path, &format!("`{pickle_name}`"), e))?;
    let specs = tensor_specs(path, root)?;
    let source = StorageSource::Zip {
        archive,
        prefix,
        archive_len,
    };
    rebuild_all(path, specs, source)
}

/// The shortest `…/data.pkl` name (torch writes exactly one, under the archive folder).
fn find_data_pkl<R: Read + std::io::Seek>(archive: &zip::ZipArchive<R>) -> Option<String> {
    archive
        .file_names()
        .filter(|name| *name == "data.pkl" || name.ends_with("/data.pkl"))
        .min_by_key(|name| (name.len(), name.to_string()))
        .map(str::to_owned)
}

/// Refuses big-endian archives (recent torch versions write a `byteorder` entry; older
/// ones, which have none, only wrote little-endian files).
fn check_zip_byte_order(
    path: &Path,
    archive: &mut zip::ZipArchive<File>,
    prefix: &str,
    archive_len: u64,
) -> Result<()> {
    let name = format!("{prefix}byteorder");
    if archive.by_name(&name).is_err() {
        return Ok(());
    }
    let order = zip_entry(archive, &name, None, archive_len).map_err(|e| Error::data(path, e))?;
    match order.as_slice() {
        b"little" => Ok(()),
        other => Err(Error::data(
            path,
            format!(
                "storages are stored in `{}` byte order; this reader reads little-endian \
                 files only",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

/// The bytes of one archive entry, which must be stored uncompressed (torch never
/// compresses) and, when `expected_len` is given, hold exactly that many bytes.
fn zip_entry(
    archive: &mut zip::ZipArchive<File>,
    name: &str,
    expected_len: Option<usize>,
    archive_len: u64,
) -> std::result::Result<Vec<u8>, String> {
    let mut entry = archive
        .by_name(name)
        .map_err(|e| format!("archive entry `{name}`: {e}"))?;
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(format!(
            "archive entry `{name}` is compressed ({}); torch.save stores entries uncompressed",
            entry.compression()
        ));
    }
    let size = entry.size();
    // A stored entry cannot be larger than the archive: checked before allocating.
    if size > archive_len {
        return Err(format!(
            "archive entry `{name}` claims {size} bytes, more than the whole file"
        ));
    }
    if let Some(expected) = expected_len {
        if size != expected as u64 {
            return Err(format!(
                "archive entry `{name}` holds {size} bytes, the pickle says {expected}"
            ));
        }
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("archive entry `{name}`: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!(
            "archive entry `{name}` ends after {} of {size} bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

// --- the legacy format -----------------------------------------------------------------

fn read_legacy(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    // Every torch.save pickle starts with PROTO (0x80); anything else is another format.
    if bytes.first() != Some(&0x80) {
        return Err(not_a_checkpoint(path, bytes));
    }
    let mut pos = 0;
    let magic = next_pickle(path, bytes, &mut pos, &[], "the first pickle")?;
    if magic != Value::Int(LEGACY_MAGIC) {
        return Err(Error::data(
            path,
            format!(
                "a pickle, but not a torch.save file: it starts with {} where torch writes \
                 its magic number",
                magic.describe()
            ),
        ));
    }
    let protocol = next_pickle(path, bytes, &mut pos, &[], "the protocol version")?;
    if protocol != Value::Int(LEGACY_PROTOCOL) {
        return Err(Error::data(
            path,
            format!(
                "legacy torch.save protocol {}; this reader knows {LEGACY_PROTOCOL}",
                protocol
                    .as_i64()
                    .map_or_else(|| protocol.describe(), |n| n.to_string())
            ),
        ));
    }
    let sys_info = next_pickle(path, bytes, &mut pos, &[], "sys_info")?;
    check_little_endian(path, &sys_info)?;
    let root = next_pickle(
        path,
        bytes,
        &mut pos,
        STATE_DICT_GLOBALS,
        "the state_dict pickle",
    )?;
    let storage_kinds = storage_kinds(path, &root)?;
    let keys = next_pickle(path, bytes, &mut pos, &[], "the storage key list")?;
    let specs = tensor_specs(path, root)?;
    let storages = split_storage_area(path, &bytes[pos..], &keys, &storage_kinds)?;
    rebuild_all(path, specs, StorageSource::Legacy { storages })
}

/// Reads the pickle at `*pos` and moves `*pos` past it.
fn next_pickle(
    path: &Path,
    bytes: &[u8],
    pos: &mut usize,
    globals: &[&str],
    what: &str,
) -> Result<Value> {
    let rest = bytes.get(*pos..).unwrap_or_default();
    let (value, used) = pickle::load(rest, globals).map_err(|e| pickle_error(path, what, e))?;
    *pos += used;
    Ok(value)
}

fn check_little_endian(path: &Path, sys_info: &Value) -> Result<()> {
    let Value::Dict(items) = sys_info else {
        return Ok(());
    };
    let little = items
        .iter()
        .find(|(key, _)| key.as_text() == Some("little_endian"))
        .map(|(_, value)| value);
    match little {
        Some(Value::Bool(false)) => Err(Error::data(
            path,
            "saved on a big-endian machine; this reader reads little-endian files only",
        )),
        _ => Ok(()),
    }
}

/// The element type of every storage the pickle refers to (also those outside the
/// state_dict, such as an optimizer's): the storage area can only be walked knowing them.
fn storage_kinds(path: &Path, root: &Value) -> Result<HashMap<String, Kind>> {
    let mut kinds = HashMap::new();
    let mut pending = vec![root];
    while let Some(value) = pending.pop() {
        match value {
            Value::Persistent(pid) => {
                let storage = parse_persistent_id(pid).map_err(|e| Error::data(path, e))?;
                kinds.insert(storage.key, storage.kind);
            }
            Value::Tuple(items) | Value::List(items) | Value::Set(items) => pending.extend(items),
            Value::Dict(pairs) => pending.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            Value::Call { args, state, .. } => {
                pending.extend(args);
                pending.extend(state.as_deref());
            }
            _ => {}
        }
    }
    Ok(kinds)
}

/// Splits the bytes after the key list into one slice per storage key.
fn split_storage_area<'a>(
    path: &Path,
    mut area: &'a [u8],
    keys: &Value,
    kinds: &HashMap<String, Kind>,
) -> Result<HashMap<String, &'a [u8]>> {
    let Value::List(keys) = keys else {
        return Err(Error::data(
            path,
            format!("the storage key list is {}, not a list", keys.describe()),
        ));
    };
    let mut storages = HashMap::new();
    for key in keys {
        let key = key.as_text().ok_or_else(|| {
            Error::data(path, format!("a storage key that is {}", key.describe()))
        })?;
        let kind = *kinds.get(key).ok_or_else(|| {
            Error::data(
                path,
                format!("storage `{key}` is listed but no tensor uses it"),
            )
        })?;
        let truncated = || {
            Error::data(path, format!("the file ends inside storage `{key}`"))
                .with_hint("the file is truncated: save or download it again")
        };
        let (count, rest) = area.split_first_chunk::<8>().ok_or_else(truncated)?;
        let nbytes = usize::try_from(u64::from_le_bytes(*count))
            .ok()
            .and_then(|n| n.checked_mul(kind.elt_size_in_bytes()))
            .filter(|&n| n <= rest.len())
            .ok_or_else(truncated)?;
        let (data, rest) = rest.split_at(nbytes);
        storages.insert(key.to_owned(), data);
        area = rest;
    }
    Ok(storages)
}

// --- from pickled values to tensor descriptions ----------------------------------------

/// A storage as a persistent id names it.
#[derive(Debug, Clone)]
struct StorageRef {
    key: String,
    kind: Kind,
    numel: usize,
    /// Legacy files may point at a slice of a storage: (element offset, element count).
    view: Option<(usize, usize)>,
}

/// A tensor to rebuild: which storage, and where in it.
#[derive(Debug)]
struct TensorSpec {
    storage: StorageRef,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

/// The state_dict's entries, described but not yet read.
fn tensor_specs(path: &Path, root: Value) -> Result<Vec<(String, TensorSpec)>> {
    let entries = state_dict_entries(root).map_err(|reason| {
        Error::data(path, reason)
            .with_hint("save the weights with torch.save(model.state_dict(), path)")
    })?;
    entries
        .into_iter()
        .map(|(name, value)| match tensor_spec(&value) {
            Ok(spec) => Ok((name, spec)),
            Err(reason) => Err(Error::data(path, format!("tensor `{name}`: {reason}"))),
        })
        .collect()
}

/// The name → value pairs of the state_dict in `root`: `root` itself when it is a dict
/// of tensors, else its `state_dict` or `model` entry. A name set twice keeps its first
/// place and its last value, as in a Python dict.
fn state_dict_entries(root: Value) -> std::result::Result<Vec<(String, Value)>, String> {
    let Value::Dict(pairs) = root else {
        return Err(format!(
            "the file holds {}, not a state_dict (a dict of name → tensor)",
            root.describe()
        ));
    };
    let first_non_tensor = pairs
        .iter()
        .find(|(_, value)| !is_tensor(value))
        .map(|(key, value)| {
            format!(
                "entry `{}` is {}, not a tensor",
                key.as_text().unwrap_or("?"),
                value.describe()
            )
        });
    let Some(complaint) = first_non_tensor else {
        return named_entries(pairs);
    };
    let nested = pairs.into_iter().find(|(key, value)| {
        matches!(value, Value::Dict(_)) && key.as_text().is_some_and(|k| NESTED_KEYS.contains(&k))
    });
    match nested {
        Some((_, Value::Dict(inner))) if inner.iter().all(|(_, value)| is_tensor(value)) => {
            named_entries(inner)
        }
        Some((key, Value::Dict(inner))) => {
            let (name, value) = inner
                .iter()
                .find(|(_, value)| !is_tensor(value))
                .map(|(k, v)| (k.as_text().unwrap_or("?"), v.describe()))
                .unwrap_or(("?", String::new()));
            Err(format!(
                "entry `{}` → `{name}` is {value}, not a tensor",
                key.as_text().unwrap_or("?")
            ))
        }
        _ => Err(format!(
            "{complaint}; expected a state_dict (a dict of name → tensor), possibly under a \
             `state_dict` or `model` key"
        )),
    }
}

fn named_entries(pairs: Vec<(Value, Value)>) -> std::result::Result<Vec<(String, Value)>, String> {
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(pairs.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (key, value) in pairs {
        let name = key
            .as_text()
            .ok_or_else(|| format!("a key that is {}, not a str", key.describe()))?
            .to_owned();
        match index.get(&name) {
            Some(&at) => entries[at].1 = value,
            None => {
                index.insert(name.clone(), entries.len());
                entries.push((name, value));
            }
        }
    }
    Ok(entries)
}

fn is_tensor(value: &Value) -> bool {
    matches!(value, Value::Call { callee, .. }
        if REBUILD_TENSOR.contains(&callee.as_str()) || callee == REBUILD_PARAMETER)
}

/// Where the tensor pickled as `value` lives: `_rebuild_tensor_v2(storage, offset, size,
/// stride, …)`, possibly wrapped in `_rebuild_parameter(tensor, requires_grad, hooks)`.
fn tensor_spec(value: &Value) -> std::result::Result<TensorSpec, String> {
    let Value::Call { callee, args, .. } = value else {
        return Err(format!("{} is not a tensor", value.describe()));
    };
    if callee == REBUILD_PARAMETER {
        let data = args.first().ok_or("a parameter without data")?;
        return tensor_spec(data);
    }
    let [storage, offset, size, stride, ..] = args.as_slice() else {
        return Err(format!(
            "`{callee}` with {} arguments (expected at least 4)",
            args.len()
        ));
    };
    let Value::Persistent(pid) = storage else {
        return Err(format!(
            "the storage is {}, not a persistent id",
            storage.describe()
        ));
    };
    Ok(TensorSpec {
        storage: parse_persistent_id(pid)?,
        offset: offset.as_i64().ok_or("the storage offset is not an int")?,
        size: int_tuple(size, "size")?,
        stride: int_tuple(stride, "stride")?,
    })
}

fn int_tuple(value: &Value, what: &str) -> std::result::Result<Vec<i64>, String> {
    let Value::Tuple(items) = value else {
        return Err(format!("the {what} is {}, not a tuple", value.describe()));
    };
    items
        .iter()
        .map(|item| {
            item.as_i64()
                .ok_or_else(|| format!("the {what} holds {}", item.describe()))
        })
        .collect()
}

/// `('storage', storage_type, key, location, numel[, view_metadata])`; the location
/// (the device it was saved from) is ignored: tensors are read onto the CPU.
fn parse_persistent_id(pid: &Value) -> std::result::Result<StorageRef, String> {
    let Value::Tuple(items) = pid else {
        return Err(format!(
            "a persistent id that is {}, not a tuple",
            pid.describe()
        ));
    };
    let [tag, storage_type, key, _location, numel, rest @ ..] = items.as_slice() else {
        return Err(format!("a persistent id with {} items", items.len()));
    };
    if tag.as_text() != Some("storage") || rest.len() > 1 {
        return Err("a persistent id that is not a tensor storage".into());
    }
    let Value::Global(storage_type) = storage_type else {
        return Err(format!(
            "a storage type that is {}",
            storage_type.describe()
        ));
    };
    let kind = storage_kind(storage_type)
        .ok_or_else(|| format!("unsupported storage type `{storage_type}`"))?;
    let key = key
        .as_text()
        .ok_or("a storage key that is not a str")?
        .to_owned();
    let numel = count(numel).ok_or("a storage size that is not a non-negative int")?;
    let view = match rest.first() {
        None | Some(Value::None) => None,
        Some(Value::Tuple(view)) => match view.as_slice() {
            [_view_key, offset, size] => Some((
                count(offset).ok_or("a storage view offset that is not a count")?,
                count(size).ok_or("a storage view size that is not a count")?,
            )),
            _ => return Err("a storage view that is not (key, offset, size)".into()),
        },
        Some(other) => {
            return Err(format!(
                "storage view metadata that is {}",
                other.describe()
            ))
        }
    };
    Ok(StorageRef {
        key,
        kind,
        numel,
        view,
    })
}

fn count(value: &Value) -> Option<usize> {
    value.as_i64().and_then(|n| usize::try_from(n).ok())
}

fn storage_kind(storage_type: &str) -> Option<Kind> {
    Some(match storage_type {
        "torch.FloatStorage" => Kind::Float,
        "torch.DoubleStorage" => Kind::Double,
        "torch.HalfStorage" => Kind::Half,
        "torch.BFloat16Storage" => Kind::BFloat16,
        "torch.LongStorage" => Kind::Int64,
        "torch.IntStorage" => Kind::Int,
        "torch.ShortStorage" => Kind::Int16,
        "torch.CharStorage" => Kind::Int8,
        "torch.ByteStorage" | "torch.UntypedStorage" | "torch.storage.UntypedStorage" => {
            Kind::Uint8
        }
        "torch.BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

// --- from descriptions to tensors ------------------------------------------------------

/// Where storage bytes come from.
enum StorageSource<'a> {
    Zip {
        archive: zip::ZipArchive<File>,
        prefix: String,
        archive_len: u64,
    },
    Legacy {
        storages: HashMap<String, &'a [u8]>,
    },
}

impl<'a> StorageSource<'a> {
    /// The raw bytes of storage `key`, which must be exactly `nbytes` long.
    fn bytes(&mut self, key: &str, nbytes: usize) -> std::result::Result<Cow<'a, [u8]>, String> {
        match self {
            StorageSource::Zip {
                archive,
                prefix,
                archive_len,
            } => {
                let name = format!("{prefix}data/{key}");
                zip_entry(archive, &name, Some(nbytes), *archive_len).map(Cow::Owned)
            }
            StorageSource::Legacy { storages } => {
                let data: &'a [u8] = storages.get(key).copied().ok_or_else(|| {
                    format!("storage `{key}` is missing from the file's key list")
                })?;
                if data.len() != nbytes {
                    return Err(format!(
                        "storage `{key}` holds {} bytes, the pickle says {nbytes}",
                        data.len()
                    ));
                }
                Ok(Cow::Borrowed(data))
            }
        }
    }
}

/// A storage read once and shared by the tensors that view it.
struct LoadedStorage {
    tensor: Tensor,
    kind: Kind,
    numel: usize,
}

fn rebuild_all(
    path: &Path,
    specs: Vec<(String, TensorSpec)>,
    mut source: StorageSource<'_>,
) -> Result<Vec<(String, Tensor)>> {
    let mut loaded: HashMap<String, LoadedStorage> = HashMap::new();
    let mut tensors = Vec::with_capacity(specs.len());
    for (name, spec) in specs {
        let tensor = rebuild(&spec, &mut source, &mut loaded)
            .map_err(|reason| Error::data(path, format!("tensor `{name}`: {reason}")))?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

fn rebuild(
    spec: &TensorSpec,
    source: &mut StorageSource<'_>,
    loaded: &mut HashMap<String, LoadedStorage>,
) -> std::result::Result<Tensor, String> {
    let storage_ref = &spec.storage;
    if !loaded.contains_key(&storage_ref.key) {
        let storage = load_storage(storage_ref, source)?;
        loaded.insert(storage_ref.key.clone(), storage);
    }
    let storage = loaded
        .get(&storage_ref.key)
        .ok_or("storage vanished from the cache")?;
    if storage.kind != storage_ref.kind || storage.numel != storage_ref.numel {
        return Err(format!(
            "storage `{}` is described twice, differently",
            storage_ref.key
        ));
    }
    // A legacy view shifts the tensor into a window of the storage.
    let (window_start, window_len) = storage_ref.view.unwrap_or((0, storage.numel));
    if window_start
        .checked_add(window_len)
        .is_none_or(|end| end > storage.numel)
    {
        return Err(format!(
            "a view beyond the end of storage `{}`",
            storage_ref.key
        ));
    }
    let layout = Layout {
        offset: spec.offset,
        size: &spec.size,
        stride: &spec.stride,
    };
    layout.check(window_len, storage.kind)?;
    copy_out(
        &storage.tensor,
        storage.kind,
        window_start as i64 + layout.offset,
        &layout,
    )
}

fn load_storage(
    storage_ref: &StorageRef,
    source: &mut StorageSource<'_>,
) -> std::result::Result<LoadedStorage, String> {
    let kind = storage_ref.kind;
    let nbytes = storage_ref
        .numel
        .checked_mul(kind.elt_size_in_bytes())
        .ok_or("a storage size that overflows")?;
    let mut bytes = source.bytes(&storage_ref.key, nbytes)?;
    // libtorch expects bools to be 0 or 1; any other byte would read as an odd value.
    if kind == Kind::Bool && bytes.iter().any(|&b| b > 1) {
        bytes = Cow::Owned(bytes.iter().map(|&b| u8::from(b != 0)).collect());
    }
    let numel = i64::try_from(storage_ref.numel).map_err(|_| "a storage too large")?;
    let tensor = Tensor::f_from_data_size(&bytes, &[numel], kind).map_err(|e| e.to_string())?;
    Ok(LoadedStorage {
        tensor,
        kind,
        numel: storage_ref.numel,
    })
}

/// A tensor's position in its storage, as pickled.
struct Layout<'s> {
    offset: i64,
    size: &'s [i64],
    stride: &'s [i64],
}

impl Layout<'_> {
    /// Checks that every element lies inside a storage of `storage_numel` elements, so
    /// libtorch never reads out of bounds.
    fn check(&self, storage_numel: usize, kind: Kind) -> std::result::Result<(), String> {
        let (size, stride) = (self.size, self.stride);
        if size.len() != stride.len() || size.len() > 64 {
            return Err(format!(
                "size {size:?} and stride {stride:?} do not fit together"
            ));
        }
        if self.offset < 0 || size.iter().chain(stride).any(|&n| n < 0) {
            return Err(format!(
                "negative offset, size or stride ({}, {size:?}, {stride:?})",
                self.offset
            ));
        }
        let numel = size
            .iter()
            .try_fold(1u128, |acc, &n| acc.checked_mul(n as u128))
            .ok_or("a size that overflows")?;
        if numel == 0 {
            return Ok(());
        }
        // Every size is at least 1 here, so `n - 1` cannot wrap.
        let last = size
            .iter()
            .zip(stride)
            .try_fold(self.offset as u128, |acc, (&n, &s)| {
                acc.checked_add((n as u128 - 1).checked_mul(s as u128)?)
            })
            .ok_or("a stride that overflows")?;
        if last >= storage_numel as u128 {
            return Err(format!(
                "size {size:?}, stride {stride:?} at offset {} reach element {last} of a \
                 storage of {storage_numel}",
                self.offset
            ));
        }
        let bytes = numel.saturating_mul(kind.elt_size_in_bytes() as u128);
        if numel > storage_numel as u128 && bytes > MAX_EXPANDED_BYTES {
            return Err(format!(
                "size {size:?} repeats a storage of {storage_numel} elements into {bytes} bytes"
            ));
        }
        Ok(())
    }
}

/// A contiguous copy of the strided view at `offset` of `storage`.
fn copy_out(
    storage: &Tensor,
    kind: Kind,
    offset: i64,
    layout: &Layout,
) -> std::result::Result<Tensor, String> {
    let mut out = Tensor::f_empty(layout.size, (kind, Device::Cpu)).map_err(|e| e.to_string())?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let view = storage
        .f_as_strided(layout.size, layout.stride, offset)
        .map_err(|e| e.to_string())?;
    out.f_copy_(&view).map_err(|e| e.to_string())?;
    Ok(out)
}

// --- errors ----------------------------------------------------------------------------

fn pickle_error(path: &Path, part: &str, error: PickleError) -> Error {
    match error {
        PickleError::Refused { global, .. } => refused(path, &global),
        other => Error::data(path, format!("{part}: {other}"))
            .with_hint("the file may be truncated or damaged: save or download it again"),
    }
}

/// The error for a global outside [`STATE_DICT_GLOBALS`]: a pickled class or function
/// (a whole model, or code), or tensor machinery this reader does not handle (complex or
/// quantized dtypes, sparse tensors).
fn refused(path: &Path, global: &str) -> Error {
    let torch_machinery = global.starts_with("torch.") && !global.starts_with("torch.nn.");
    if torch_machinery {
        return Error::data(
            path,
            format!(
                "the file uses `{global}`, which this reader does not support: it reads \
                 state_dicts of dense float, integer and bool tensors"
            ),
        );
    }
    Error::data(
        path,
        format!(
            "the file pickles `{global}`, which this reader refuses: it reads only \
             state_dicts of tensors and never runs code from a file"
        ),
    )
    .with_hint(
        "if this is a whole model saved with torch.save(model), save `model.state_dict()` instead",
    )
}

fn not_a_checkpoint(path: &Path, bytes: &[u8]) -> Error {
    if bytes.is_empty() {
        return Error::data(path, "the file is empty, not a PyTorch checkpoint");
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Error::data(
        path,
        format!(
            "not a PyTorch checkpoint: neither a zip archive (torch.save since torch 1.6) nor a \
             legacy torch.save pickle (the file starts with bytes {})",
            head.join(" ")
        ),
    )
    .with_hint("the file should come from torch.save(model.state_dict(), path)")
}
