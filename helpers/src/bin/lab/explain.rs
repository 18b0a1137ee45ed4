//! `lab explain`: Grad-CAM of test images of a run, as files other tools read.
use anyhow::{bail, Context, Result};
use clap::Args;
use helpers::explain::{cam, overlay, CamMethod};
use helpers::io::npy;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExplainArgs {
    /// Run directory, e.g. saved_models/fashion_cnn.
    #[arg(long)]
    run: PathBuf,
    /// Test-set indices, comma-separated: --indices 0,1,2.
    #[arg(long, value_delimiter = ',', required = true)]
    indices: Vec<usize>,
    /// Output folder for `<index>_overlay.png` and `<index>_cam.npy` (float32, H×W).
    #[arg(long)]
    out: PathBuf,
    /// Grad-CAM++ instead of Grad-CAM.
    #[arg(long)]
    plus_plus: bool,
    /// Layer to explain (default: the end of the last convolutional block).
    #[arg(long)]
    layer: Option<String>,
}

pub fn explain(args: ExplainArgs) -> Result<()> {
    let (data, trained) = crate::open_run(&args.run)?;
    let test = &trained.loaders.test;
    if let Some(&bad) = args.indices.iter().find(|&&i| i >= test.len()) {
        bail!(
            "index {bad} is out of range: the run's test set has {} images (0..{})",
            test.len(),
            test.len()
        );
    }
    let images = test.normalized(&args.indices);
    let method = if args.plus_plus {
        CamMethod::GradCamPlusPlus
    } else {
        CamMethod::GradCam
    };
    let maps = cam(&trained.model, &images, None, args.layer.as_deref(), method)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let [_, h, w] = trained.model.input_shape;
    for (n, &index) in args.indices.iter().enumerate() {
        let blended = overlay::blend(
            &images.get(n as i64),
            &maps.maps.get(n as i64),
            &test.norm,
            0.5,
        );
        let png = args.out.join(format!("{index}_overlay.png"));
        helpers::io::write_atomic(&png, &helpers::plot::png_bytes(&blended)?)?;
        let values = Vec::<f32>::try_from(maps.maps.get(n as i64).contiguous().view([-1]))?;
        npy::write_f32(
            &args.out.join(format!("{index}_cam.npy")),
            &[h as usize, w as usize],
            &values,
        )?;
        let class = &data.classes[maps.targets[n] as usize];
        println!(
            "{index}: explained class {class} (p {:.3}, true {}) → {}",
            maps.probs[n],
            data.classes[test.labels()[index] as usize],
            png.display()
        );
    }
    Ok(())
}
