//! Channels-last (NHWC) memory layout. tch 0.26 has no memory-format API, so we set the
//! strides ourselves; libtorch's oneDNN convolutions, batch norm and pooling then run in
//! NHWC, which is measurably faster on CPU (see environment.md).
use tch::{Device, Tensor};

/// Whether a model on `device` runs channels-last: always on the CPU (oneDNN is faster
/// in NHWC), on CUDA only when asked for (tensor-core convolutions with bf16/fp16 prefer
/// it; fp32 kernels prefer the default layout). The one place this is decided.
pub fn use_channels_last(device: Device, asked_on_cuda: bool) -> bool {
    match device {
        Device::Cpu => true,
        _ => asked_on_cuda,
    }
}

/// The same values as `x` (`[N, C, H, W]`), stored channels-last.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    let s = x.size();
    if s.len() != 4 || is_channels_last(x) {
        return x.shallow_clone();
    }
    let (c, h, w) = (s[1], s[2], s[3]);
    // permute+contiguous lays the data out as NHWC; as_strided then states the NHWC
    // strides explicitly, which matters when C = 1 (the plain permuted view would be
    // judged contiguous NCHW and convolved in the old layout).
    let nhwc = x.permute([0, 2, 3, 1]).contiguous();
    nhwc.as_strided(s.as_slice(), [h * w * c, 1, w * c, c], None)
}

/// True when `x`'s strides are the NHWC ones.
pub fn is_channels_last(x: &Tensor) -> bool {
    let s = x.size();
    s.len() == 4 && x.stride() == vec![s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]]
}

/// Re-lays every convolution weight among `variables` out as channels-last, in place.
pub fn convert_conv_weights(variables: impl IntoIterator<Item = Tensor>) {
    tch::no_grad(|| {
        // Every 4-D weight is a convolution kernel, inside blocks too.
        for var in variables {
            if var.dim() == 4 {
                let mut ws = var.shallow_clone();
                ws.set_data(&to_channels_last(&var));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn layout_changes_values_do_not() {
        for c in [1, 3] {
            let x = Tensor::rand([2, c, 5, 4], (Kind::Float, Device::Cpu));
            let y = to_channels_last(&x);
            assert!(is_channels_last(&y));
            assert_eq!(y.size(), x.size());
            assert!(y.equal(&x));
        }
    }
}
