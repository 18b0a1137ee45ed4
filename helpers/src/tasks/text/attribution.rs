//! Which words made the text model decide: integrated gradients (Sundararajan et al.,
//! 2017) on the word embeddings, from the all-zero embedding as the baseline, with the
//! midpoint rule over `steps` points of the straight path. The bag's logit is linear in
//! its word embeddings, so there the attributions are exact and equal gradient × input;
//! for the CNN and the Transformer, completeness (the attributions sum to
//! logit(text) − logit(baseline)) measures how good `steps` was.
use super::analysis::mistakes;
use super::data::TextData;
use super::fit::TrainedText;
use super::model::TextNet;
use crate::data::text::vocab::UNK;
use crate::render::{escape, evcxr_emit};
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// One text's per-token attributions towards one class.
#[derive(Debug, Clone)]
pub struct TokenAttribution {
    /// The text's tokens as written (after truncation to `max_length`).
    pub tokens: Vec<String>,
    /// Whether each token was out of vocabulary (the model saw `<unk>`).
    pub unknown: Vec<bool>,
    /// Per token: its share of logit(text) − logit(baseline) for `class`.
    pub scores: Vec<f64>,
    pub class: usize,
    pub logit: f64,
    pub baseline_logit: f64,
}

impl TokenAttribution {
    /// |Σ scores − (logit − baseline logit)|: zero for exact attributions.
    pub fn completeness_gap(&self) -> f64 {
        let sum: f64 = self.scores.iter().sum();
        (sum - (self.logit - self.baseline_logit)).abs()
    }
}

/// Integrated gradients of `class`'s logit over the unpadded `ids` of one text.
pub fn integrated_gradients(
    net: &TextNet,
    ids: &[i64],
    class: usize,
    steps: usize,
) -> Result<(Vec<f64>, f64, f64)> {
    if ids.is_empty() || steps == 0 {
        return Err(Error::argument(
            "ids",
            "need at least one token and one step to attribute",
        ));
    }
    let length = ids.len() as i64;
    let ids = Tensor::from_slice(ids).view([1, length]);
    let x = tch::no_grad(|| net.embed(&ids));
    let logit_at = |emb: &Tensor| {
        tch::no_grad(|| {
            net.forward_embedded(emb, &ids, false)
                .double_value(&[0, class as i64])
        })
    };
    let (logit, baseline_logit) = (logit_at(&x), logit_at(&x.zeros_like()));
    let alphas: Vec<f32> = (0..steps)
        .map(|k| (k as f32 + 0.5) / steps as f32)
        .collect();
    let path = (Tensor::from_slice(&alphas).view([-1, 1, 1]) * &x).set_requires_grad(true);
    let out = net
        .forward_embedded(&path, &ids.expand([steps as i64, length], false), false)
        .select(1, class as i64)
        .sum(Kind::Float);
    // Gradients with respect to the path only: the weights' .grad stay untouched.
    let grads = Tensor::run_backward(&[out], &[&path], false, false);
    let mean_grad = grads[0].mean_dim(0, true, Kind::Float);
    let scores = (&x * mean_grad).sum_dim_intlist(-1, false, Kind::Double);
    let scores = Vec::<f64>::try_from(&scores.view([-1]))?;
    Ok((scores, logit, baseline_logit))
}

/// Attributions of test text `index` towards `class` (the prediction, by default in the
/// callers): its ids without padding, its tokens as written.
pub fn attribute_test_text(
    run: &TrainedText,
    data: &TextData,
    index: usize,
    class: usize,
    steps: usize,
) -> Result<TokenAttribution> {
    let text = data.test_texts.get(index).ok_or_else(|| {
        Error::argument(
            "index",
            format!("{index} is past the {} test texts", data.test_texts.len()),
        )
    })?;
    let mut tokens = data.vocab.tokens(text);
    tokens.truncate(data.tokens.max_length);
    if tokens.is_empty() {
        return Err(Error::argument(
            "index",
            format!("test text {index} has no tokens to attribute"),
        ));
    }
    let ids: Vec<i64> = tokens.iter().map(|t| data.vocab.id(t)).collect();
    let (scores, logit, baseline_logit) = integrated_gradients(&run.net, &ids, class, steps)?;
    Ok(TokenAttribution {
        unknown: ids.iter().map(|&i| i == UNK).collect(),
        tokens,
        scores,
        class,
        logit,
        baseline_logit,
    })
}

/// Texts with their tokens highlighted by attribution, for the notebook: orange pushed
/// towards the explained class, blue away from it, the strength scaled per text.
#[derive(Debug, Clone)]
pub struct Highlighted {
    pub title: String,
    /// (caption, attributions) per text.
    pub texts: Vec<(String, TokenAttribution)>,
}

impl Highlighted {
    pub fn to_html(&self) -> String {
        let mut html = format!(
            "<p><b>{}</b> — <span style=\"background-color:rgba(230,120,0,0.6)\">towards</span> / <span style=\"background-color:rgba(40,100,220,0.6)\">against</span> the explained class; <u>underlined</u>: out of vocabulary</p>",
            escape(&self.title)
        );
        for (caption, a) in &self.texts {
            html += &format!(
                "<div style=\"margin:0.4em 0\"><div style=\"font-size:0.85em;color:#555\">{} · Σ attributions {:+.3}, logit − baseline {:+.3}</div><div style=\"line-height:1.9\">{}</div></div>",
                escape(caption),
                a.scores.iter().sum::<f64>(),
                a.logit - a.baseline_logit,
                spans(a)
            );
        }
        html
    }

    /// evcxr's hook.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.to_html());
    }
}

/// One `<span>` per token, its background's opacity the score over the text's largest.
fn spans(a: &TokenAttribution) -> String {
    let largest = a.scores.iter().fold(1e-12f64, |m, s| m.max(s.abs()));
    a.tokens
        .iter()
        .zip(&a.scores)
        .zip(&a.unknown)
        .map(|((token, &s), &unknown)| {
            let (r, g, b) = if s >= 0.0 { (230, 120, 0) } else { (40, 100, 220) };
            let style = if unknown {
                ";text-decoration:underline"
            } else {
                ""
            };
            format!(
                "<span title=\"{s:+.4}\" style=\"background-color:rgba({r},{g},{b},{:.2});padding:0 2px{style}\">{}</span>",
                0.75 * s.abs() / largest,
                escape(token)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `k` most confident test mistakes with each token's attribution towards the wrong
/// class the model chose.
pub fn explained_mistakes(
    run: &TrainedText,
    data: &TextData,
    k: usize,
    steps: usize,
) -> Result<Highlighted> {
    let m = mistakes(run, data)?;
    let texts = m
        .shown(data, k)
        .into_iter()
        .map(|i| {
            let p = m.predicted[i] as usize;
            let caption = format!(
                "true {}, predicted {} ({:.3})",
                data.classes[m.labels[i] as usize], data.classes[p], m.confidence[i]
            );
            Ok((caption, attribute_test_text(run, data, i, p, steps)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Highlighted {
        title: format!(
            "The {} most confident mistakes, integrated gradients of the predicted class ({steps} steps)",
            texts.len()
        ),
        texts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::text::{TextNetConfig, TextNetKind};
    use tch::Device;

    fn net(kind: TextNetKind) -> TextNet {
        tch::manual_seed(3);
        let cfg = TextNetConfig {
            kind,
            embedding_dim: 16,
            heads: 2,
            ff_dim: 32,
            filters: 8,
            bigram_buckets: if kind == TextNetKind::Bag { 20 } else { 0 },
            ..Default::default()
        };
        TextNet::new(&cfg, 30, 3, Device::Cpu).unwrap()
    }

    #[test]
    fn exact_on_the_bag_close_on_the_others() -> Result<()> {
        let ids = [5i64, 9, 2, 17, 4, 4];
        let (scores, logit, base) = integrated_gradients(&net(TextNetKind::Bag), &ids, 1, 4)?;
        let gap = (scores.iter().sum::<f64>() - (logit - base)).abs();
        assert!(gap < 1e-5, "bag completeness gap {gap}");
        // Equal ids in a bag get equal attributions.
        assert!((scores[4] - scores[5]).abs() < 1e-6);
        for kind in [TextNetKind::Cnn, TextNetKind::Transformer] {
            let (scores, logit, base) = integrated_gradients(&net(kind), &ids, 2, 128)?;
            let gap = (scores.iter().sum::<f64>() - (logit - base)).abs();
            assert!(
                gap < 0.02 * (logit - base).abs().max(0.1),
                "{kind:?}: gap {gap} for a difference {}",
                logit - base
            );
        }
        Ok(())
    }

    #[test]
    fn the_weights_gradients_are_left_alone() -> Result<()> {
        let net = net(TextNetKind::Transformer);
        integrated_gradients(&net, &[3, 4, 5], 0, 8)?;
        for (name, w) in net.weights() {
            assert!(!w.grad().defined(), "{name} got a gradient");
        }
        assert!(integrated_gradients(&net, &[], 0, 8).is_err());
        Ok(())
    }
}
