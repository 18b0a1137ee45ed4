//! The regression track's networks: an MLP over a row's features (widths, batch norm,
//! dropout), and a 1-D CNN over a window of past hours for the series.
use crate::error::in_range;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetKind {
    Mlp,
    /// Convolutions over time (a window's hours), then the MLP head.
    Conv1d,
}

/// The network's shape (the `[net]` table of a regression config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    pub kind: NetKind,
    /// Hidden layer widths of the MLP (its head, for `conv1d`).
    pub widths: Vec<i64>,
    /// Batch normalisation after each hidden linear layer.
    pub batch_norm: bool,
    /// Dropout after each hidden layer, in [0, 1).
    pub dropout: f64,
    /// `conv1d`: channels of its two convolutions, and their kernel size.
    pub channels: i64,
    pub kernel: i64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            kind: NetKind::Mlp,
            widths: vec![256, 128, 64],
            batch_norm: true,
            dropout: 0.1,
            channels: 32,
            kernel: 5,
        }
    }
}

impl NetConfig {
    pub fn validate(&self) -> Result<()> {
        if self.widths.iter().any(|&w| w <= 0) {
            return Err(Error::config(
                "net.widths",
                format!("every width must be > 0, found {:?}", self.widths),
            ));
        }
        in_range("net.dropout", self.dropout, 0.0, 1.0, false)?;
        if self.kind == NetKind::Conv1d && (self.channels <= 0 || self.kernel <= 0) {
            return Err(Error::config(
                "net.channels",
                "conv1d needs channels > 0 and kernel > 0",
            ));
        }
        Ok(())
    }
}

/// What the network reads: a flat row of features, or a window of `steps` × `features`
/// (time-major, flattened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputShape {
    Row { features: i64 },
    Window { steps: i64, features: i64 },
}

impl InputShape {
    pub fn width(self) -> i64 {
        match self {
            InputShape::Row { features } => features,
            InputShape::Window { steps, features } => steps * features,
        }
    }
}

/// A network with its own parameters.
pub struct Net {
    pub vs: nn::VarStore,
    body: nn::SequentialT,
    pub config: NetConfig,
    pub input: InputShape,
    pub outputs: i64,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Net({:?}, {:?} → {})",
            self.config.kind, self.input, self.outputs
        )
    }
}

impl Net {
    /// A freshly initialised network (libtorch's generator: seed it first).
    pub fn new(config: &NetConfig, input: InputShape, outputs: i64, device: Device) -> Result<Net> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut body = nn::seq_t();
        let mut width = input.width();
        if config.kind == NetKind::Conv1d {
            let InputShape::Window { steps, features } = input else {
                return Err(Error::argument(
                    "net.kind",
                    "conv1d needs windows of a series, the data are rows",
                ));
            };
            let (c, k) = (config.channels, config.kernel.min(steps));
            let conv = nn::ConvConfig {
                padding: k / 2,
                ..Default::default()
            };
            body = body
                .add_fn(move |x| x.view([-1, steps, features]).transpose(1, 2))
                .add(nn::conv1d(&root / "conv1", features, c, k, conv))
                .add_fn(|x| x.relu())
                .add(nn::conv1d(&root / "conv2", c, c, k, conv))
                .add_fn(|x| x.relu())
                .add_fn(|x| x.flatten(1, -1));
            width = c * (steps + 2 * (k / 2) - k + 1 + 2 * (k / 2) - k + 1);
        }
        for (i, &w) in config.widths.iter().enumerate() {
            body = body.add(nn::linear(
                &root / format!("fc{i}"),
                width,
                w,
                Default::default(),
            ));
            if config.batch_norm {
                body = body.add(nn::batch_norm1d(
                    &root / format!("bn{i}"),
                    w,
                    Default::default(),
                ));
            }
            body = body.add_fn(|x| x.relu());
            if config.dropout > 0.0 {
                let p = config.dropout;
                body = body.add_fn_t(move |x, train| x.dropout(p, train));
            }
            width = w;
        }
        body = body.add(nn::linear(
            &root / "out",
            width,
            outputs,
            Default::default(),
        ));
        Ok(Net {
            vs,
            body,
            config: config.clone(),
            input,
            outputs,
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.body.forward_t(x, train)
    }

    /// Predictions for `x` in evaluation mode, `batch` rows at a time.
    pub fn predict(&self, x: &Tensor, batch: usize) -> Tensor {
        let _guard = tch::no_grad_guard();
        let n = x.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(batch.max(1))
            .map(|s| self.forward_t(&x.narrow(0, s, (batch as i64).min(n - s)), false))
            .collect();
        Tensor::cat(&parts, 0)
    }

    /// Every parameter and buffer by name, sorted (checkpoints).
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        crate::models::sorted_variables(&self.vs, false)
    }

    /// The trainable parameters by name, sorted (the optimiser's).
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        crate::models::sorted_variables(&self.vs, true)
    }

    pub fn num_parameters(&self) -> i64 {
        self.trainable().iter().map(|(_, t)| t.numel() as i64).sum()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_both_networks() {
        let mlp = Net::new(
            &NetConfig::default(),
            InputShape::Row { features: 13 },
            1,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(
            mlp.predict(&Tensor::zeros([5, 13], (tch::Kind::Float, Device::Cpu)), 2)
                .size(),
            [5, 1]
        );
        let cfg = NetConfig {
            kind: NetKind::Conv1d,
            ..Default::default()
        };
        let input = InputShape::Window {
            steps: 24,
            features: 6,
        };
        let cnn = Net::new(&cfg, input, 2, Device::Cpu).unwrap();
        let y = cnn.predict(&Tensor::zeros([3, 144], (tch::Kind::Float, Device::Cpu)), 8);
        assert_eq!(y.size(), [3, 2]);
        let e = Net::new(&cfg, InputShape::Row { features: 3 }, 1, Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("conv1d needs windows"), "{e}");
    }
}
