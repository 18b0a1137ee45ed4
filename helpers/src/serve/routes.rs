//! The HTTP routes: each handler validates, hands work to the batcher (predictions) or a
//! blocking thread (Grad-CAM), and answers JSON; every refusal is JSON `{"error": …}`
//! with its status. Every answer is counted in the metrics by route and status.
use super::batcher::Job;
use super::decode::{self, RequestError};
use super::Shared;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// The demo page (plain HTML, CSS and JavaScript; nothing fetched from elsewhere).
const PAGE: &str = include_str!("page.html");
/// Classes returned when the request does not say.
const DEFAULT_TOP_K: usize = 3;

type AppState = State<Arc<Shared>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.max_body;
    Router::new()
        .route("/", get(page))
        .route("/predict", post(predict))
        .route("/explain", post(explain))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/alerts", get(alerts))
        .route("/samples", get(samples))
        .route("/samples/{index}", get(sample))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

fn refuse(shared: &Shared, route: &'static str, e: RequestError) -> Response {
    shared.metrics.request(route, e.status, None);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "error": e.message }))).into_response()
}

/// The body, or 413/400 naming the limit.
fn body_of(shared: &Shared, body: Result<Bytes, BytesRejection>) -> Result<Bytes, RequestError> {
    body.map_err(|e| {
        let status = e.status().as_u16();
        if status == 413 {
            RequestError::new(
                413,
                format!(
                    "the body is larger than the {} MiB this server accepts (--max-body-mb)",
                    shared.max_body >> 20
                ),
            )
        } else {
            RequestError::new(status, format!("could not read the body: {e}"))
        }
    })
}

/// `top_k` from the query string, if given.
fn query_top_k(uri: &Uri) -> Result<Option<usize>, RequestError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("top_k=") {
            return value
                .parse::<usize>()
                .ok()
                .filter(|&k| k >= 1)
                .map(Some)
                .ok_or_else(|| {
                    RequestError::new(400, format!("top_k `{value}` is not a whole number ≥ 1"))
                });
        }
    }
    Ok(None)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The images of a request and how many classes it wants.
fn inputs(
    shared: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(Vec<Vec<u8>>, usize), RequestError> {
    let spec = shared.model().spec;
    let from_query = query_top_k(uri)?;
    let (images, from_body) = if is_json(headers) {
        decode::decode_json(body, spec)?
    } else {
        (vec![decode::decode_image(body, spec)?], None)
    };
    Ok((images, from_query.or(from_body).unwrap_or(DEFAULT_TOP_K)))
}

async fn predict(
    State(shared): AppState,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let arrived = Instant::now();
    let answer = async {
        let body = body_of(&shared, body)?;
        let (images, top_k) = inputs(&shared, &headers, &uri, &body)?;
        let (reply, answer) = oneshot::channel();
        shared.batcher.submit(Job {
            images,
            top_k,
            reply,
        })?;
        answer
            .await
            .map_err(|_| RequestError::new(503, "the model worker stopped before answering"))?
    }
    .await;
    match answer {
        Ok(a) => {
            let seconds = arrived.elapsed().as_secs_f64();
            shared.metrics.request("predict", 200, Some(seconds));
            Json(json!({
                "model_version": a.model_version,
                "engine": a.engine,
                "latency_ms": seconds * 1000.0,
                "batch_images": a.batch_images,
                "predictions": a.predictions,
            }))
            .into_response()
        }
        Err(e) => refuse(&shared, "predict", e),
    }
}

async fn explain(State(shared): AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let work = shared.clone();
    let outcome = async move {
        let body = body_of(&work, body)?;
        let model = work.model();
        let pixels = decode::decode_image(&body, model.spec)?;
        tokio::task::spawn_blocking(move || {
            let s = model.spec;
            let raw = tch::Tensor::from_slice(&pixels).view([
                i64::from(s.channels),
                i64::from(s.height),
                i64::from(s.width),
            ]);
            model.explain(&raw).map(|e| (e, model.version.clone()))
        })
        .await
        .map_err(|e| RequestError::new(500, format!("Grad-CAM stopped: {e}")))?
        .map_err(|e| RequestError::new(500, format!("Grad-CAM failed: {e}")))
    }
    .await;
    match outcome {
        Ok((e, version)) => {
            shared.metrics.request("explain", 200, None);
            let png = base64::engine::general_purpose::STANDARD.encode(&e.overlay_png);
            Json(json!({
                "model_version": version,
                "class": e.class,
                "label": e.label,
                "probability": e.probability,
                "overlay": format!("data:image/png;base64,{png}"),
                "empty": e.empty,
            }))
            .into_response()
        }
        Err(e) => refuse(&shared, "explain", e),
    }
}

async fn page(State(shared): AppState) -> Response {
    shared.metrics.request("page", 200, None);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn health(State(shared): AppState) -> Response {
    shared.metrics.request("health", 200, None);
    let model = shared.model();
    let swap_error = shared
        .swap_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Json(json!({
        "status": "ok",
        "model_version": model.version,
        "engine": model.engine,
        "run": model.run,
        "run_state": model.run_state,
        "load_notes": model.load_notes,
        "classes": model.classes,
        "input": [model.spec.channels, model.spec.height, model.spec.width],
        "uptime_s": shared.started.elapsed().as_secs_f64(),
        "queue": shared.batcher.waiting(),
        "drift": shared.monitor.latest(),
        "swap_error": swap_error,
    }))
    .into_response()
}

async fn metrics(State(shared): AppState) -> Response {
    shared.metrics.request("metrics", 200, None);
    let model = shared.model();
    let text = shared
        .metrics
        .render(&model.version, &model.engine, shared.batcher.waiting());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn alerts(State(shared): AppState) -> Response {
    shared.metrics.request("alerts", 200, None);
    Json(json!({
        "alerts": shared.monitor.alerts(),
        "latest_drift_test": shared.monitor.latest(),
        "log": shared.monitor.alerts_path(),
    }))
    .into_response()
}

async fn samples(State(shared): AppState) -> Response {
    shared.metrics.request("samples", 200, None);
    let model = shared.model();
    let list: Vec<_> = model
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| json!({ "url": format!("/samples/{i}"), "label": s.label }))
        .collect();
    Json(json!({ "samples": list })).into_response()
}

async fn sample(State(shared): AppState, Path(index): Path<String>) -> Response {
    let model = shared.model();
    let found = index
        .parse::<usize>()
        .ok()
        .and_then(|i| model.samples.get(i));
    match found {
        Some(s) => {
            shared.metrics.request("samples", 200, None);
            ([(header::CONTENT_TYPE, "image/png")], s.png.clone()).into_response()
        }
        None => refuse(
            &shared,
            "samples",
            RequestError::new(
                404,
                format!("no sample `{index}`; there are {}", model.samples.len()),
            ),
        ),
    }
}

async fn not_found(State(shared): AppState, uri: Uri) -> Response {
    refuse(
        &shared,
        "other",
        RequestError::new(404, format!("no route {}; try GET /, POST /predict, POST /explain, GET /metrics, /health, /alerts", uri.path())),
    )
}
