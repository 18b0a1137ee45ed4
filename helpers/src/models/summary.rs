//! A model summary table: each layer's name, type, output shape and parameter count,
//! measured by running one example through the network.
use super::Model;
use crate::render::Table;
use crate::Result;
use polars::prelude::Column;
use tch::{Kind, Tensor};

/// One row per layer, plus a total.
pub fn summary(model: &Model) -> Result<Table> {
    let [c, h, w] = model.input_shape;
    let mut x = Tensor::zeros([1, c, h, w], (Kind::Float, model.device()));
    let (mut names, mut kinds, mut shapes, mut params) = (vec![], vec![], vec![], vec![]);
    tch::no_grad(|| {
        for (name, layer) in &model.layers {
            x = layer.forward_t(&x, false);
            names.push(name.clone());
            kinds.push(layer.kind());
            shapes.push(format!("{:?}", &x.size()[1..]));
            params.push(layer.num_parameters());
        }
    });
    names.push("total".into());
    kinds.push(String::new());
    shapes.push(String::new());
    params.push(model.num_parameters());
    Table::from_columns(
        "Model summary (output shape without the batch dimension)",
        vec![
            Column::new("layer".into(), names),
            Column::new("type".into(), kinds),
            Column::new("output".into(), shapes),
            Column::new("parameters".into(), params),
        ],
    )
}
