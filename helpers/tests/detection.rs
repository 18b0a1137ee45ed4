//! The detection track: the four annotation readers on files written here (the same boxes
//! read back from each format), their errors on bad input, the NEON tree-crown set and its
//! split, NMS against `torchvision.ops.nms` and the COCO evaluation against pycocotools
//! (both from the setup venv), and a short training run that detects, saves and reloads.
mod common;

use common::venv_python;
use helpers::data::detection::Annotation;
use helpers::data::detection::{
    coco, masks, neon, voc, yolo, BoundingBox, DetectionSet, ReadOptions,
};
use helpers::rng::Rng;
use helpers::tasks::detection::coco_eval::{coco_json, evaluate};
use helpers::tasks::detection::decode::nms;
use helpers::tasks::detection::{Detection, DetectionConfig, DetectionData, LoadedDetector};
use std::path::{Path, PathBuf};
use std::process::Command;

const BOXES: [(&str, [f32; 4]); 3] = [
    ("tree", [10.0, 12.0, 30.0, 40.0]),
    ("car", [40.0, 5.0, 60.0, 25.0]),
    ("tree", [0.0, 44.0, 16.0, 64.0]),
];

fn write_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 3) as u8, 90]))
        .save(path)
        .unwrap();
}

fn voc_xml(filename: &str, boxes: &[(&str, [f32; 4])]) -> String {
    let objects: String = boxes
        .iter()
        .map(|(n, b)| format!("<object><name>{n}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>", b[0], b[1], b[2], b[3]))
        .collect();
    format!("<annotation><filename>{filename}</filename><size><width>64</width><height>64</height></size>{objects}</annotation>")
}

fn boxes_of(set: &DetectionSet) -> Vec<(String, BoundingBox)> {
    set.images[0]
        .boxes
        .iter()
        .map(|a| (set.classes[a.class].clone(), a.bbox))
        .collect()
}

fn expected() -> Vec<(String, BoundingBox)> {
    BOXES
        .iter()
        .map(|(n, b)| (n.to_string(), BoundingBox::new(b[0], b[1], b[2], b[3])))
        .collect()
}

fn names() -> ReadOptions {
    ReadOptions {
        classes: vec!["car".into(), "tree".into()],
        ..Default::default()
    }
}

#[test]
fn the_same_boxes_read_back_from_voc_coco_yolo_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_png(&d.join("a.png"), 64, 64);
    std::fs::write(d.join("a.xml"), voc_xml("a.png", &BOXES)).unwrap();
    assert_eq!(
        boxes_of(&voc::read_dir(d, d, &names()).unwrap()),
        expected()
    );

    let anns: Vec<_> = BOXES
        .iter()
        .enumerate()
        .map(|(i, (n, b))| {
            serde_json::json!({
        "id": i + 1, "image_id": 7, "category_id": if *n == "car" { 1 } else { 2 },
        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
        })
        .collect();
    let coco_file = serde_json::json!({"images": [{"id": 7, "file_name": "a.png"}], "annotations": anns,
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "tree"}]});
    std::fs::write(d.join("coco.json"), coco_file.to_string()).unwrap();
    assert_eq!(
        boxes_of(&coco::read(&d.join("coco.json"), d, &ReadOptions::default()).unwrap()),
        expected()
    );

    let (images, labels) = (d.join("images"), d.join("labels"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&labels).unwrap();
    write_png(&images.join("a.png"), 64, 64);
    let lines: String = BOXES
        .iter()
        .map(|(n, b)| {
            let c = if *n == "car" { 0 } else { 1 };
            format!(
                "{c} {} {} {} {}\n",
                (b[0] + b[2]) / 128.0,
                (b[1] + b[3]) / 128.0,
                (b[2] - b[0]) / 64.0,
                (b[3] - b[1]) / 64.0
            )
        })
        .collect();
    std::fs::write(labels.join("a.txt"), lines).unwrap();
    let set = yolo::read(
        &images,
        &labels,
        &["car".into(), "tree".into()],
        &ReadOptions::default(),
    )
    .unwrap();
    for ((n, b), (m, e)) in boxes_of(&set).iter().zip(expected()) {
        assert_eq!(*n, m);
        for (p, q) in [(b.x0, e.x0), (b.y0, e.y0), (b.x1, e.x1), (b.y1, e.y1)] {
            assert!((p - q).abs() < 1e-4, "{b:?} vs {e:?}");
        }
    }

    // Penn-Fudan: an 8-bit grey mask whose values 1, 2 are the instances.
    let (pics, mask_dir) = (d.join("PNGImages"), d.join("PedMasks"));
    std::fs::create_dir_all(&pics).unwrap();
    std::fs::create_dir_all(&mask_dir).unwrap();
    write_png(&pics.join("p1.png"), 64, 64);
    let mask = image::GrayImage::from_fn(64, 64, |x, y| {
        image::Luma([if (10..30).contains(&x) && (12..40).contains(&y) {
            1
        } else if (40..60).contains(&x) && (5..25).contains(&y) {
            2
        } else {
            0
        }])
    });
    mask.save(mask_dir.join("p1_mask.png")).unwrap();
    let set = masks::read(
        &pics,
        &mask_dir,
        "_mask",
        "pedestrian",
        &ReadOptions::default(),
    )
    .unwrap();
    let got: Vec<BoundingBox> = set.images[0].boxes.iter().map(|a| a.bbox).collect();
    assert_eq!(
        got,
        vec![
            BoundingBox::new(10.0, 12.0, 30.0, 40.0),
            BoundingBox::new(40.0, 5.0, 60.0, 25.0)
        ]
    );
}

/// The error of reading `xml` (written as `a.xml` beside a 64×64 `a.png`), and the
/// skipped count when the same file is read with `skip_bad`.
fn voc_error(xml: &str) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 64, 64);
    std::fs::write(dir.path().join("a.xml"), xml).unwrap();
    let err = voc::read_dir(dir.path(), dir.path(), &names())
        .unwrap_err()
        .to_string();
    let skipping = ReadOptions {
        skip_bad: true,
        ..names()
    };
    let skipped = voc::read_dir(dir.path(), dir.path(), &skipping)
        .map(|s| s.skipped.len())
        .unwrap_or(usize::MAX);
    (err, skipped)
}

#[test]
fn bad_annotations_are_named_by_file_and_element_or_skipped_and_counted() {
    let (err, skipped) = voc_error(&voc_xml(
        "a.png",
        &[
            ("tree", [10.0, 10.0, 20.0, 20.0]),
            ("tree", [50.0, 10.0, 70.0, 20.0]),
        ],
    ));
    assert!(
        err.contains("a.xml")
            && err.contains("<object> #2")
            && err.contains("outside the 64×64 image"),
        "{err}"
    );
    assert_eq!(skipped, 1);
    let (err, _) = voc_error(&voc_xml("a.png", &[("tree", [10.0, 10.0, 10.0, 20.0])]));
    assert!(
        err.contains("<object> #1") && err.contains("zero area"),
        "{err}"
    );
    let (err, skipped) = voc_error(&voc_xml("a.png", &[("bus", [1.0, 1.0, 9.0, 9.0])]));
    assert!(
        err.contains("unknown class name `bus`") && err.contains("car, tree"),
        "{err}"
    );
    assert_eq!(skipped, 1);
    let (err, _) = voc_error("<annotation><object>");
    assert!(
        err.contains("a.xml") && err.contains("not well-formed XML"),
        "{err}"
    );
    let (err, _) = voc_error("");
    assert!(err.contains("a.xml") && err.contains("is empty"), "{err}");

    // An image that is missing for its annotation (no a.png, no sibling).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.xml"), voc_xml("b.png", &[])).unwrap();
    let err = voc::read_dir(dir.path(), dir.path(), &names())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("b.xml") && err.contains("b.png") && err.contains("neither"),
        "{err}"
    );

    // COCO: JSON that does not parse, and an annotation of an unknown image.
    std::fs::write(dir.path().join("bad.json"), "{\"images\": [").unwrap();
    let err = coco::read(
        &dir.path().join("bad.json"),
        dir.path(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad.json") && err.contains("line 1"), "{err}");
    write_png(&dir.path().join("c.png"), 32, 32);
    let f = serde_json::json!({"images": [{"id": 1, "file_name": "c.png"}], "categories": [{"id": 1, "name": "tree"}],
        "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 4]}]});
    std::fs::write(dir.path().join("c.json"), f.to_string()).unwrap();
    let err = coco::read(
        &dir.path().join("c.json"),
        dir.path(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("annotation id 5") && err.contains("image_id 2"),
        "{err}"
    );
}

#[test]
fn the_neon_set_splits_by_image_and_region() {
    let dir = repo().join(neon::DEFAULT_DIR);
    let set = neon::load(&dir, false).expect("run scripts/setup packaged-data");
    assert_eq!(set.images.len(), 4);
    assert_eq!(set.num_boxes(), 951);
    assert_eq!(set.classes, vec!["Tree".to_string()]);
    let split = neon::split(&set, (neon::TEST_IMAGE, neon::SPLIT_IMAGE), 0.25).unwrap();
    let image = |regions: &[(usize, helpers::data::detection::tiles::Region)]| {
        regions.iter().map(|r| r.0).collect::<Vec<_>>()
    };
    let test = image(&split.test);
    assert!(
        image(&split.train).iter().all(|i| !test.contains(i))
            && image(&split.val).iter().all(|i| !test.contains(i))
    );
    // The cut row crosses few crowns; every box centre lies in exactly one region.
    assert!(
        split.crossing <= 8,
        "{} boxes cross the cut",
        split.crossing
    );
    let s = &set.images[split.val[0].0];
    for a in &s.boxes {
        let (_, cy) = a.bbox.center();
        let in_val = cy >= split.cut_y as f32;
        let train_region = split.train[0].1;
        assert_eq!(in_val, cy >= train_region.y1 as f32);
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn random_boxes(rng: &mut Rng, n: usize, span: f32) -> Vec<BoundingBox> {
    (0..n)
        .map(|_| {
            let (x, y) = (rng.uniform() as f32 * span, rng.uniform() as f32 * span);
            let (w, h) = (
                4.0 + rng.uniform() as f32 * 60.0,
                4.0 + rng.uniform() as f32 * 60.0,
            );
            BoundingBox::new(x, y, x + w, y + h)
        })
        .collect()
}

fn python(args: &[&str]) -> String {
    let out = Command::new(venv_python())
        .args(args)
        .output()
        .expect("run scripts/setup (venv)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn nms_keeps_what_torchvision_keeps() {
    let mut rng = Rng::new(3, 0);
    let boxes = random_boxes(&mut rng, 300, 120.0);
    let scores: Vec<f32> = (0..boxes.len()).map(|_| rng.uniform() as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("boxes.json");
    let flat: Vec<[f32; 4]> = boxes.iter().map(|b| [b.x0, b.y0, b.x1, b.y1]).collect();
    std::fs::write(
        &input,
        serde_json::json!({"boxes": flat, "scores": scores}).to_string(),
    )
    .unwrap();
    let script = "import json, sys, torch, torchvision\nd = json.load(open(sys.argv[1]))\nfor t in (0.3, 0.5, 0.7):\n    print(json.dumps(torchvision.ops.nms(torch.tensor(d['boxes']), torch.tensor(d['scores']), t).tolist()))";
    let out = python(&["-c", script, input.to_str().unwrap()]);
    for (line, t) in out.lines().zip([0.3, 0.5, 0.7]) {
        let theirs: Vec<usize> = serde_json::from_str(line).unwrap();
        assert_eq!(nms(&boxes, &scores, t), theirs, "IoU threshold {t}");
    }
}

#[test]
fn coco_metrics_equal_pycocotools() {
    let classes = vec!["tree".to_string(), "snag".to_string()];
    let mut rng = Rng::new(11, 0);
    let (mut truth, mut found) = (Vec::new(), Vec::new());
    for image in 0..12 {
        let n = 3 + rng.below(8);
        let gts = random_boxes(&mut rng, n, 150.0);
        let gt: Vec<Annotation> = gts
            .iter()
            .map(|&b| Annotation {
                class: rng.below(2),
                bbox: b,
            })
            .collect();
        // Jittered copies of most boxes, some misses, false alarms, and an image
        // with detections but no truth.
        let mut dets: Vec<Detection> = Vec::new();
        for a in &gt {
            if rng.uniform() >= 0.8 {
                continue;
            }
            let mut j = |v: f32| v + (rng.uniform() as f32 - 0.5) * 8.0;
            let b = BoundingBox::new(j(a.bbox.x0), j(a.bbox.y0), j(a.bbox.x1), j(a.bbox.y1));
            let class = if rng.uniform() < 0.9 {
                a.class
            } else {
                1 - a.class
            };
            dets.push(Detection {
                class,
                score: rng.uniform() as f32,
                bbox: b,
            });
        }
        for b in random_boxes(&mut rng, 4, 150.0) {
            dets.push(Detection {
                class: rng.below(2),
                score: rng.uniform() as f32 * 0.6,
                bbox: b,
            });
        }
        truth.push(if image == 5 { Vec::new() } else { gt });
        found.push(dets);
    }
    let ours = evaluate(&truth, &found, &classes);
    let (gt_json, dt_json) = coco_json(&truth, &found, &classes, 256);
    let dir = tempfile::tempdir().unwrap();
    let (g, d) = (dir.path().join("gt.json"), dir.path().join("dt.json"));
    std::fs::write(&g, gt_json.to_string()).unwrap();
    std::fs::write(&d, dt_json.to_string()).unwrap();
    let script = repo().join("scripts/coco_reference.py");
    let reference: serde_json::Value = serde_json::from_str(&python(&[
        script.to_str().unwrap(),
        g.to_str().unwrap(),
        d.to_str().unwrap(),
    ]))
    .unwrap();
    let stats: Vec<f64> = reference["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let pairs = [
        ("mAP", ours.map, stats[0]),
        ("mAP50", ours.map50, stats[1]),
        ("mAP75", ours.map75, stats[2]),
        ("small", ours.map_small, stats[3]),
        ("medium", ours.map_medium, stats[4]),
        ("large", ours.map_large, stats[5]),
        ("AR100", ours.ar100, stats[8]),
    ];
    for (name, a, b) in pairs {
        assert!((a - b).abs() <= 1e-6, "{name}: ours {a} vs pycocotools {b}");
    }
    assert!(
        ours.map50 > 0.3 && ours.map50 < 0.95,
        "a test that can tell: mAP50 {}",
        ours.map50
    );
    for (k, (_, ap, ap50)) in ours.per_class.iter().enumerate() {
        let r = &reference["per_class"][k];
        assert!(
            (ap - r[0].as_f64().unwrap()).abs() <= 1e-6
                && (ap50 - r[1].as_f64().unwrap()).abs() <= 1e-6,
            "class {k}"
        );
        let curve: Vec<f64> = reference["pr_curve50"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(ours.pr_curve50[k].len(), curve.len());
        assert!(
            ours.pr_curve50[k]
                .iter()
                .zip(&curve)
                .all(|(a, b)| (a - b).abs() <= 1e-6),
            "PR curve of class {k}"
        );
    }
}

#[test]
fn a_short_run_trains_detects_and_reloads() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = DetectionConfig::default().variant("trees_test", |c| {
        c.data.dir = repo().join(neon::DEFAULT_DIR);
        c.train.epochs = 1;
        c.net.pretrained = true;
    });
    cfg.tiles.overlap = 0;
    let data = DetectionData::prepare(&cfg).unwrap();
    {
        use helpers::train::Task;
        let net =
            helpers::tasks::detection::Detector::for_checkpoint(&cfg.net, 1, tch::Device::Cpu)
                .unwrap();
        let task = helpers::tasks::detection::DetectionTask::of_config(
            &cfg,
            &net,
            &data.train,
            None,
            data.classes(),
        );
        for batch_size in [1, 2, 7, 8, 13] {
            let t = helpers::tasks::detection::DetectionTask {
                batch_size,
                ..task.clone()
            };
            assert_eq!(
                t.steps_per_epoch(),
                t.train_batches(0).count(),
                "batch size {batch_size}"
            );
        }
    }
    let opts = helpers::run::FitOptions {
        root: root.path().into(),
        existing: helpers::run::Existing::Refuse,
        stop_after_epochs: None,
    };
    let trained =
        helpers::tasks::detection::fit(&cfg, &data, &opts, &mut helpers::train::Silent).unwrap();
    assert_eq!(trained.history.epochs.len(), 1);
    assert!(trained.test.map50 >= 0.0 && trained.test.images == data.test.len());
    for f in [
        "detection.toml",
        "classes.json",
        "split.json",
        "meta.json",
        "metrics.json",
        "history.csv",
        "model_checkpoint.safetensors",
    ] {
        assert!(trained.run.file(f).is_file(), "{f} missing");
    }
    // A written reading of the worst tiles holds with this run's counts, not with others.
    let (worst, false_alarms, missed) =
        helpers::tasks::detection::analysis::worst_tiles(&trained, &data.test)[0];
    let crowns = data.test.tiles[worst].boxes.len();
    let reading = |found: usize| {
        let text = format!("{worst}: {crowns} crowns, {found} found, {false_alarms} false alarms");
        helpers::report::readings::check_tile_reading(&trained, &data.test, 3, &text)
            .unwrap()
            .0
    };
    assert!(
        reading(crowns - missed).starts_with('✓'),
        "{}",
        reading(crowns - missed)
    );
    let withdrawn = reading(crowns - missed + 1);
    assert!(
        withdrawn.starts_with('✗') && withdrawn.contains(&format!("{} found", crowns - missed)),
        "{withdrawn}"
    );
    // Exported to ONNX, ONNX Runtime computes the same maps and hence the same boxes.
    let check = helpers::tasks::detection::onnx::export_checked(&trained, &data).unwrap();
    assert!(
        check.heatmap_gap < 1e-3 && check.boxes_gap < 1e-3,
        "{check:?}"
    );
    assert_eq!(check.identical_tiles, check.tiles, "{check:?}");
    // Reloaded, the run finds on a test tile exactly what it found in training's evaluation.
    let loaded = LoadedDetector::load(&trained.run.path).unwrap();
    let tile = &data.test.tiles[0];
    let pixels = data.test.pixels.get(0).permute([1, 2, 0]).contiguous();
    let raw = Vec::<u8>::try_from(pixels.flatten(0, -1)).unwrap();
    let img = image::RgbImage::from_raw(tile.size, tile.size, raw).unwrap();
    let again = loaded.detect(&img).unwrap();
    assert_eq!(again.len(), trained.test_detections[0].len());
    for (a, b) in again.iter().zip(&trained.test_detections[0]) {
        assert!((a.score - b.score).abs() < 1e-5 && a.bbox.iou(&b.bbox) > 0.999);
    }
    // `lab predict --image` writes the drawing and the JSON of the same detections.
    let png = root.path().join("tile.png");
    img.save(&png).unwrap();
    let out = root.path().join("predictions");
    let run = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["predict", "--run"])
        .arg(&trained.run.path)
        .arg("--image")
        .arg(&png)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tile.json")).unwrap()).unwrap();
    let shown = again.iter().filter(|d| d.score >= 0.3).count();
    assert_eq!(json["detections"].as_array().unwrap().len(), shown);
    assert!(out.join("tile_boxes.png").is_file());
}

#[test]
fn test_time_flips_are_equivariant_to_a_flipped_input() {
    tch::manual_seed(0);
    let cfg = helpers::tasks::detection::DetectorConfig {
        backbone: helpers::tasks::detection::BackboneKind::Scratch,
        pretrained: false,
        freeze_bn: false,
        channels: 16,
    };
    let net = helpers::tasks::detection::Detector::new(&cfg, 1, tch::Device::Cpu).unwrap();
    let x = tch::Tensor::rand([2, 3, 64, 64], (tch::Kind::Float, tch::Device::Cpu));
    let (a, b) = tch::no_grad(|| (net.forward_flips(&x), net.forward_flips(&x.flip([3]))));
    let close = |p: &tch::Tensor, q: &tch::Tensor| (p - q).abs().max().double_value(&[]) < 1e-4;
    // Flipping the input left-right flips the averaged heatmap and mirrors the x offsets.
    assert!(close(&b.heatmap, &a.heatmap.flip([3])));
    assert!(close(
        &b.boxes.narrow(1, 0, 1),
        &(a.boxes.narrow(1, 0, 1).flip([3]).neg() + 1.0)
    ));
    assert!(close(
        &b.boxes.narrow(1, 1, 3),
        &a.boxes.narrow(1, 1, 3).flip([3])
    ));
}
