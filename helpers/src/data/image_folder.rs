//! An image-folder dataset (torchvision's `ImageFolder` layout): one sub-folder per class,
//! named after the class, holding JPEG/PNG/BMP/GIF files. Users bring their own images
//! this way. Every image is converted to the requested channels (grey or RGB; alpha is
//! dropped) and resized to one size. Problems are reported by path: unreadable or
//! corrupt images, files that are not images, empty class folders — as one error
//! listing them all, or skipped and counted when asked.
use super::{Dataset, ImageSet, Split};
use crate::{Error, Result};
use image::imageops::FilterType;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Extensions read as images (lower case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "gif"];

/// How to read a folder.
#[derive(Debug, Clone)]
pub struct ImageFolderOptions {
    /// Output size, height × width.
    pub size: (u32, u32),
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Skip bad files and empty class folders (counted in the report) instead of failing.
    pub skip_bad: bool,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions {
            size: (64, 64),
            channels: 3,
            skip_bad: false,
        }
    }
}

/// The images of one folder tree, and what was skipped.
#[derive(Debug)]
pub struct ImageFolder {
    pub set: ImageSet,
    /// Class names (sub-folder names, sorted), index = label.
    pub classes: Vec<String>,
    /// Skipped paths with the reason (only with `skip_bad`).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads `root/<class>/<image>` files.
pub fn read(root: &Path, opts: &ImageFolderOptions) -> Result<ImageFolder> {
    if !(opts.channels == 1 || opts.channels == 3) {
        return Err(Error::config(
            "channels",
            format!("must be 1 (grey) or 3 (RGB), found {}", opts.channels),
        ));
    }
    let class_dirs = class_folders(root)?;
    let mut problems: Vec<(PathBuf, String)> = Vec::new();
    let (mut pixels, mut labels, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    for dir in class_dirs {
        let before = labels.len();
        let label = classes.len() as i64;
        for path in files_in(&dir)? {
            match read_image(&path, opts) {
                Ok(px) => {
                    pixels.extend_from_slice(&px);
                    labels.push(label);
                }
                Err(reason) => problems.push((path, reason)),
            }
        }
        if labels.len() == before {
            problems.push((dir.clone(), "class folder holds no readable image".into()));
        } else {
            classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    if !problems.is_empty() && !opts.skip_bad {
        let list: Vec<String> = problems
            .iter()
            .map(|(p, r)| format!("{}: {r}", p.display()))
            .collect();
        return Err(Error::data(
            root,
            format!("{} problem(s):\n  {}", problems.len(), list.join("\n  ")),
        )
        .with_hint("fix or remove these files, or skip them: set `data.skip_bad_files = true` in the config (`ImageFolderOptions::skip_bad` in code)"));
    }
    if labels.is_empty() {
        return Err(Error::data(root, "no readable image in any class folder"));
    }
    let (h, w) = (opts.size.0 as i64, opts.size.1 as i64);
    let set = ImageSet {
        images: Tensor::from_slice(&pixels).view([labels.len() as i64, opts.channels as i64, h, w]),
        labels: Tensor::from_slice(&labels),
    };
    Ok(ImageFolder {
        set,
        classes,
        skipped: problems,
    })
}

/// A dataset from `root/train/<class>/…` and `root/test/<class>/…` when both exist, else
/// from `root/<class>/…` with a stratified, seeded `test_fraction` held out as the test set.
pub fn load(
    root: &Path,
    opts: &ImageFolderOptions,
    test_fraction: f64,
    seed: u64,
) -> Result<(Dataset, Vec<(PathBuf, String)>)> {
    let name = root
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let (train_dir, test_dir) = (root.join("train"), root.join("test"));
    let (train, test, classes, skipped) = if train_dir.is_dir() && test_dir.is_dir() {
        let (a, b) = (read(&train_dir, opts)?, read(&test_dir, opts)?);
        if a.classes != b.classes {
            return Err(Error::data(
                &test_dir,
                format!(
                    "classes {:?} differ from train/'s {:?}",
                    b.classes, a.classes
                ),
            ));
        }
        (a.set, b.set, a.classes, [a.skipped, b.skipped].concat())
    } else {
        let all = read(root, opts)?;
        let split = Split::stratified(&all.set.label_vec(), test_fraction, 0, seed);
        (
            all.set.select(&split.train),
            all.set.select(&split.val),
            all.classes,
            all.skipped,
        )
    };
    Ok((
        Dataset {
            name,
            classes,
            train,
            test,
            files: vec![],
        },
        skipped,
    ))
}

/// Sub-folders of `root`, sorted by name (the class order).
fn class_folders(root: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        Error::io(root, e).with_hint("expected a folder with one sub-folder per class")
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::data(
            root,
            "no class sub-folders: expected root/<class>/<image files>",
        ));
    }
    Ok(dirs)
}

/// Files of a class folder, sorted (hidden files ignored).
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Decodes, converts and resizes one image to `[C, H, W]` bytes; the error says why not.
fn read_image(path: &Path, opts: &ImageFolderOptions) -> std::result::Result<Vec<u8>, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return Err(format!(
            "not an image file (extension `{ext}`; read: {})",
            IMAGE_EXTENSIONS.join(", ")
        ));
    }
    let img = image::open(path).map_err(|e| format!("corrupt or unreadable image: {e}"))?;
    Ok(to_pixels(img, opts.channels, opts.size))
}

/// A decoded image as `[C, H, W]` bytes: resized to `size` (height, width) with the
/// triangle filter when it differs, converted to grey (`channels` 1) or RGB. What the
/// image-folder reader trains on and what `lab serve` feeds the model.
pub fn to_pixels(img: image::DynamicImage, channels: usize, size: (u32, u32)) -> Vec<u8> {
    let (h, w) = size;
    let img = if (img.height(), img.width()) == (h, w) {
        img
    } else {
        img.resize_exact(w, h, FilterType::Triangle)
    };
    if channels == 1 {
        img.to_luma8().into_raw()
    } else {
        // HWC → CHW.
        let rgb = img.to_rgb8().into_raw();
        (0..3)
            .flat_map(|c| rgb.iter().skip(c).step_by(3).copied().collect::<Vec<_>>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
    use tch::Kind;

    fn write_tree(root: &Path) {
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(root.join(class)).unwrap();
        }
        RgbImage::from_pixel(10, 6, Rgb([255, 0, 0]))
            .save(root.join("cat/a.png"))
            .unwrap();
        GrayImage::from_pixel(4, 4, Luma([128]))
            .save(root.join("cat/b.jpg"))
            .unwrap();
        RgbaImage::from_pixel(8, 8, Rgba([0, 0, 255, 10]))
            .save(root.join("dog/c.png"))
            .unwrap();
    }

    #[test]
    fn reads_rgb_grey_and_rgba_into_one_shape() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path());
        let f = read(
            dir.path(),
            &ImageFolderOptions {
                size: (8, 8),
                channels: 3,
                skip_bad: false,
            },
        )?;
        assert_eq!(f.classes, ["cat", "dog"]);
        assert_eq!(f.set.images.size(), vec![3, 3, 8, 8]);
        assert_eq!(f.set.label_vec(), vec![0, 0, 1]);
        let red = Vec::<u8>::try_from(
            f.set
                .images
                .get(0)
                .mean_dim([1i64, 2].as_slice(), false, Kind::Float)
                .to_kind(Kind::Uint8),
        )?;
        assert_eq!(red, vec![255, 0, 0], "channels first, RGB order");
        let blue = Vec::<u8>::try_from(
            f.set
                .images
                .get(2)
                .mean_dim([1i64, 2].as_slice(), false, Kind::Float)
                .to_kind(Kind::Uint8),
        )?;
        assert_eq!(blue, vec![0, 0, 255], "alpha dropped");
        let grey = read(
            dir.path(),
            &ImageFolderOptions {
                size: (4, 4),
                channels: 1,
                skip_bad: false,
            },
        )?;
        assert_eq!(grey.set.images.size(), vec![3, 1, 4, 4]);
        Ok(())
    }

    #[test]
    fn bad_files_and_empty_classes_are_reported_by_path_or_skipped() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path());
        std::fs::write(dir.path().join("cat/broken.png"), b"not a png at all").unwrap();
        std::fs::write(dir.path().join("dog/notes.txt"), b"hello").unwrap();
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let opts = ImageFolderOptions {
            size: (8, 8),
            channels: 3,
            skip_bad: false,
        };
        let e = read(dir.path(), &opts).unwrap_err().to_string();
        assert!(
            e.contains("3 problem(s)")
                && e.contains("broken.png: corrupt")
                && e.contains("notes.txt: not an image")
                && e.contains("empty: class folder holds no readable image"),
            "{e}"
        );
        let skipped = read(
            dir.path(),
            &ImageFolderOptions {
                skip_bad: true,
                ..opts
            },
        )?;
        assert_eq!((skipped.skipped.len(), skipped.set.len()), (3, 3));
        assert_eq!(
            skipped.classes,
            ["cat", "dog"],
            "an empty class is left out"
        );
        Ok(())
    }

    #[test]
    fn a_single_tree_is_split_into_train_and_test() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            for i in 0..10 {
                GrayImage::from_pixel(5, 5, Luma([i * 20]))
                    .save(dir.path().join(format!("{class}/{i}.png")))
                    .unwrap();
            }
        }
        let (data, skipped) = load(
            dir.path(),
            &ImageFolderOptions {
                size: (5, 5),
                channels: 1,
                skip_bad: false,
            },
            0.2,
            1,
        )?;
        assert!(skipped.is_empty());
        assert_eq!((data.train.len(), data.test.len()), (16, 4));
        assert_eq!(data.test.class_counts(2), vec![2, 2]);
        Ok(())
    }
}
