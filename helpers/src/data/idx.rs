//! IDX files, the format of MNIST and Fashion-MNIST (<http://yann.lecun.com/exdb/mnist/>):
//! two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then one
//! big-endian u32 per dimension and the values in row-major order. Files may be gzipped.
use crate::io::hex;
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Type code of unsigned-byte IDX data, the only one MNIST-style files use.
const IDX_U8: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decoded IDX array of bytes.
#[derive(Debug, Clone)]
pub struct IdxArray {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// Values in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
    /// SHA-256 of the decompressed file, hex; independent of gzip settings.
    pub sha256: String,
}

/// Reads an IDX file (gzipped or not) and checks header, dimensions and length.
/// `expected_ndims` guards against swapping an image file with a label file.
pub fn read_idx(path: &Path, expected_ndims: usize) -> Result<IdxArray> {
    let raw = read_maybe_gzipped(path)?;
    let sha256 = hex(&Sha256::digest(&raw));
    let (dims, header_len) = parse_header(path, &raw, expected_ndims)?;
    let expected: usize = dims.iter().product();
    let found = raw.len() - header_len;
    if found < expected {
        return Err(Error::data(
            path,
            format!("truncated: dimensions {dims:?} need {expected} bytes of data, found {found}"),
        )
        .with_hint("the file is incomplete; rerun `scripts/setup` to reinstall the dataset"));
    }
    if found > expected {
        return Err(Error::data(
            path,
            format!("{} unexpected trailing bytes after the {expected} bytes of data of dimensions {dims:?}", found - expected),
        ));
    }
    let mut data = raw;
    data.drain(..header_len);
    Ok(IdxArray { dims, data, sha256 })
}

/// Reads the whole file, decompressing it when it starts with the gzip magic bytes.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::io(path, e)
            .with_hint("run `scripts/setup` to install the dataset, or check the path")
    })?;
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if !bytes.starts_with(&GZIP_MAGIC) {
        if named_gz {
            // Not an IDX file either: saying "wrong magic number" would send the user
            // looking at the wrong format.
            return Err(Error::data(
                path,
                format!(
                    "named .gz but not gzip: starts with {:02x?}, expected the gzip magic bytes 1f 8b",
                    &bytes[..bytes.len().min(4)]
                ),
            )
            .with_hint("delete the file and rerun `scripts/setup` to reinstall the dataset"));
        }
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 2);
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::data(path, format!("corrupt or truncated gzip stream: {e}"))
                .with_hint("delete the file and rerun `scripts/setup` to reinstall the dataset")
        })?;
    Ok(out)
}

/// Parses magic number and dimensions; returns them with the header length in bytes.
fn parse_header(path: &Path, raw: &[u8], expected_ndims: usize) -> Result<(Vec<usize>, usize)> {
    if raw.len() < 4 {
        return Err(Error::data(
            path,
            format!(
                "{} bytes is too short for an IDX header (4 bytes of magic number)",
                raw.len()
            ),
        ));
    }
    let magic = &raw[..4];
    if magic[0] != 0 || magic[1] != 0 || magic[2] != IDX_U8 {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}: expected 0000 08 0N (IDX of unsigned bytes)",
                magic[0], magic[1], magic[2], magic[3]
            ),
        )
        .with_hint("this is not an IDX file; check that it is the Fashion-MNIST/MNIST file it claims to be"));
    }
    let ndims = magic[3] as usize;
    if ndims != expected_ndims {
        return Err(Error::data(
            path,
            format!("IDX array has {ndims} dimensions, expected {expected_ndims} (images have 3, labels 1)"),
        ));
    }
    let header_len = 4 + 4 * ndims;
    if raw.len() < header_len {
        return Err(Error::data(
            path,
            format!("truncated header: {} bytes, need {header_len}", raw.len()),
        ));
    }
    let dims = raw[4..header_len]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    Ok((dims, header_len))
}

/// Writes `data` as an IDX file of unsigned bytes; used by tests and for exporting subsets.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let mut out = vec![0u8, 0, IDX_U8, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    crate::io::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_plain_and_gzipped() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.idx");
        write_idx(&p, &[2, 3], &[1, 2, 3, 4, 5, 6])?;
        let a = read_idx(&p, 2)?;
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        let gz = dir.path().join("a.idx.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(&p).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let b = read_idx(&gz, 2)?;
        assert_eq!(b.data, a.data);
        assert_eq!(b.sha256, a.sha256, "hash is of the decompressed content");
        Ok(())
    }

    #[test]
    fn rejects_bad_files_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let bad_magic = write(
            dir.path(),
            "magic.idx",
            &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        );
        let e = read_idx(&bad_magic, 1).unwrap_err().to_string();
        assert!(
            e.contains("magic.idx") && e.contains("wrong magic number"),
            "{e}"
        );

        let not_gzip = write(dir.path(), "images.idx.gz", &[0x42, 0x9c, 0x07, 0x11, 3, 4]);
        let e = read_idx(&not_gzip, 1).unwrap_err().to_string();
        assert!(
            e.contains("images.idx.gz") && e.contains("not gzip") && !e.contains("magic number"),
            "{e}"
        );

        let truncated = write(dir.path(), "short.idx", &[0, 0, 8, 1, 0, 0, 0, 5, 1, 2]);
        let e = read_idx(&truncated, 1).unwrap_err().to_string();
        assert!(
            e.contains("short.idx") && e.contains("truncated") && e.contains("need 5 bytes"),
            "{e}"
        );

        let wrong_rank = write(dir.path(), "rank.idx", &[0, 0, 8, 1, 0, 0, 0, 1, 7]);
        let e = read_idx(&wrong_rank, 3).unwrap_err().to_string();
        assert!(e.contains("1 dimensions, expected 3"), "{e}");

        let corrupt_gz = write(dir.path(), "c.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
        let e = read_idx(&corrupt_gz, 1).unwrap_err().to_string();
        assert!(
            e.contains("c.gz") && e.contains("gzip") && e.contains("scripts/setup"),
            "{e}"
        );

        let missing = dir.path().join("none.idx");
        let e = read_idx(&missing, 1).unwrap_err().to_string();
        assert!(e.contains("none.idx") && e.contains("scripts/setup"), "{e}");
    }
}
