//! The drift tests of `monitor::stats` against scipy 1.17 from the setup venv: samples are
//! drawn here with fixed seeds, sent to Python as JSON on stdin, and scipy's answers are
//! read back from stdout. Agreement is asked to 1e-9 relative (p-values) or tighter.
mod common;

use common::venv_python;
use helpers::monitor::stats::{
    self, Bandwidth, Correction, KsMethod, Matrix, MmdOptions, CHI2_MIN_TOTAL, KS_MIN_SAMPLES,
    MMD_MIN_SAMPLES,
};
use helpers::rng::Rng;
use helpers::Error;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Relative agreement asked of every p-value.
const P_TOLERANCE: f64 = 1e-9;

/// Runs `script` in the venv's Python with `input` as JSON on stdin; the script prints
/// one JSON value, which is returned.
fn python(script: &str, input: &Value) -> Value {
    let exe = venv_python();
    assert!(
        exe.exists(),
        "{} is missing: run scripts/setup to create the venv with scipy",
        exe.display()
    );
    let prelude = "import sys, json\nimport numpy as np\nimport scipy\nfrom scipy import stats, special\ninp = json.load(sys.stdin)\n";
    let mut child = Command::new(&exe)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", exe.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn relative_error(got: f64, want: f64) -> f64 {
    if got == want {
        return 0.0;
    }
    (got - want).abs() / want.abs().max(f64::MIN_POSITIVE)
}

/// Standard normal draws by Box–Muller.
fn normal(rng: &mut Rng, n: usize, mean: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u = 1.0 - rng.uniform();
            let v = rng.uniform();
            mean + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

fn normal_matrix(rng: &mut Rng, rows: usize, cols: usize, mean: f64) -> Matrix {
    Matrix::new(rows, cols, normal(rng, rows * cols, mean)).unwrap()
}

fn round_to_tenth(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| (x * 10.0).round() / 10.0).collect()
}

struct KsCase {
    name: &'static str,
    x: Vec<f64>,
    y: Vec<f64>,
    method: KsMethod,
}

fn ks_cases() -> Vec<KsCase> {
    let mut rng = Rng::new(2024, 1);
    let mut case = |name, n, m, shift: f64, method| KsCase {
        name,
        x: normal(&mut rng, n, 0.0),
        y: normal(&mut rng, m, shift),
        method,
    };
    let mut cases = vec![
        case("n300 m300", 300, 300, 0.0, KsMethod::Exact),
        case("n300 m300 shifted", 300, 300, 0.4, KsMethod::Exact),
        case("n7 m11", 7, 11, 0.0, KsMethod::Exact),
        case("n2000 m3000", 2000, 3000, 0.0, KsMethod::Exact),
        case("n2000 m3000 shifted", 2000, 3000, 0.1, KsMethod::Exact),
        case("n12000 m15000", 12000, 15000, 0.0, KsMethod::Asymptotic),
        case(
            "n12000 m15000 shifted",
            12000,
            15000,
            0.05,
            KsMethod::Asymptotic,
        ),
        case("n10001 m10001", 10001, 10001, 0.0, KsMethod::Asymptotic),
        case("n40 m12000 shifted", 40, 12000, 0.5, KsMethod::Asymptotic),
        case("n5 m20000", 5, 20000, 0.0, KsMethod::Asymptotic),
        // Far tails, where only an accurate p-value computation keeps relative precision.
        case("n300 m300 far", 300, 300, 1.0, KsMethod::Exact),
        case("n2000 m3000 far", 2000, 3000, 0.4, KsMethod::Exact),
        case("n12000 m15000 far", 12000, 15000, 0.1, KsMethod::Asymptotic),
    ];
    let mut rng = Rng::new(2024, 2);
    cases.push(KsCase {
        name: "n20 m30 with ties",
        x: round_to_tenth(normal(&mut rng, 20, 0.0)),
        y: round_to_tenth(normal(&mut rng, 30, 0.5)),
        method: KsMethod::Exact,
    });
    let same = normal(&mut rng, 50, 0.0);
    cases.push(KsCase {
        name: "identical samples",
        x: same.clone(),
        y: same,
        method: KsMethod::Exact,
    });
    cases
}

#[test]
fn ks_2samp_matches_scipy() {
    let cases = ks_cases();
    let input = json!(cases.iter().map(|c| json!([c.x, c.y])).collect::<Vec<_>>());
    let want = python(
        "r = [stats.ks_2samp(np.array(x), np.array(y)) for x, y in inp]\n\
         print(json.dumps([[float(t.statistic), float(t.pvalue)] for t in r]))",
        &input,
    );
    let mut worst = 0.0f64;
    for (case, want) in cases.iter().zip(want.as_array().unwrap()) {
        let want = floats(want);
        let got = stats::ks_2samp(&case.x, &case.y).unwrap();
        let (d_err, p_err) = (
            relative_error(got.statistic, want[0]),
            relative_error(got.p_value, want[1]),
        );
        println!(
            "{:<24} D {:.6} p {:.6e} ({:?}): rel. error D {d_err:.1e}, p {p_err:.1e}",
            case.name, got.statistic, got.p_value, got.method
        );
        assert!(
            d_err <= 1e-15,
            "{}: D {} vs scipy {}",
            case.name,
            got.statistic,
            want[0]
        );
        assert!(
            p_err <= P_TOLERANCE,
            "{}: p {} vs scipy {}",
            case.name,
            got.p_value,
            want[1]
        );
        assert_eq!(got.method, case.method, "{}", case.name);
        worst = worst.max(p_err);
    }
    let identical = cases.last().unwrap();
    let identical = stats::ks_2samp(&identical.x, &identical.y).unwrap();
    assert_eq!((identical.statistic, identical.p_value), (0.0, 1.0));
    println!("KS: worst relative p-value error {worst:.1e}");
}

/// The one-sample Kolmogorov distribution behind the asymptotic branch, over every
/// branch of Simard & L'Ecuyer's selection (small/large n, small/large n·d²).
#[test]
fn kstwo_sf_matches_scipy() {
    let sizes = [
        1u64, 2, 3, 5, 10, 30, 100, 140, 141, 500, 2000, 6667, 100_000, 120_000,
    ];
    let nd2_targets = [
        0.02, 0.3, 0.7, 0.76, 1.5, 2.1, 2.3, 3.9, 4.1, 10.0, 30.0, 100.0, 369.0,
    ];
    let mut grid = Vec::new();
    for &n in &sizes {
        let nf = n as f64;
        let mut ds: Vec<f64> = nd2_targets.iter().map(|t| (t / nf).sqrt()).collect();
        ds.extend([
            0.75 / nf,
            0.99 / nf,
            0.5,
            0.7,
            1.0 - 0.5 / nf,
            1.0 - 1.2 / nf,
        ]);
        grid.extend(
            ds.into_iter()
                .filter(|&d| d > 0.0 && d < 1.0)
                .map(|d| (n, d)),
        );
    }
    let want = floats(&python(
        "print(json.dumps([float(stats.kstwo.sf(d, n)) for n, d in inp]))",
        &json!(grid),
    ));
    let mut worst = 0.0f64;
    for (&(n, d), &want) in grid.iter().zip(&want) {
        let got = stats::kstwo_sf(n, d);
        let err = if want < 1e-300 {
            (got - want).abs()
        } else {
            relative_error(got, want)
        };
        assert!(
            err <= P_TOLERANCE,
            "kstwo.sf(d={d}, n={n}): {got} vs scipy {want}"
        );
        worst = worst.max(err);
    }
    println!(
        "kstwo.sf over {} points: worst relative error {worst:.1e}",
        grid.len()
    );
    assert!(stats::kstwo_sf(0, 0.5).is_nan());
}

#[test]
fn corrections_match_scipy() {
    let mut rng = Rng::new(7, 3);
    let mut ps: Vec<f64> = (0..40).map(|_| rng.uniform()).collect();
    ps[3] = 1e-8;
    ps[7] = 2e-5;
    ps[11] = ps[12];
    ps[20] = 0.0;
    ps[21] = 1.0;
    ps[30] = 0.001;
    let want = python(
        "ps = np.array(inp)\n\
         bh = stats.false_discovery_control(ps, method='bh')\n\
         bonf = np.minimum(1.0, ps * len(ps))\n\
         one = stats.false_discovery_control(ps[:1], method='bh')\n\
         print(json.dumps([bh.tolist(), bonf.tolist(), np.atleast_1d(one).tolist()]))",
        &json!(ps),
    );
    let check = |got: &[f64], want: &Value, what: &str| {
        let want = floats(want);
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(&g, &w)| relative_error(g, w))
            .fold(0.0, f64::max);
        println!("{what}: worst relative error {worst:.1e}");
        assert!(worst <= 1e-14, "{what}: {got:?} vs scipy {want:?}");
    };
    check(&stats::benjamini_hochberg(&ps).unwrap(), &want[0], "BH");
    check(&stats::bonferroni(&ps).unwrap(), &want[1], "Bonferroni");
    check(
        &stats::benjamini_hochberg(&ps[..1]).unwrap(),
        &want[2],
        "BH, m = 1",
    );
}

#[test]
fn reject_counts_flagged_features() {
    let ps = [0.001, 0.02, 0.03, 0.4, 0.9];
    let bonf = stats::reject(&ps, 0.05, Correction::Bonferroni).unwrap();
    // Bonferroni: 0.005, 0.1, 0.15, … → only the first.
    assert_eq!((bonf.any, bonf.count), (true, 1));
    assert_eq!(bonf.rejected, [true, false, false, false, false]);
    // BH: 0.005, 0.0375, 0.0375, 0.5, 0.9 → the first three.
    let bh = stats::reject(&ps, 0.05, Correction::BenjaminiHochberg).unwrap();
    assert_eq!((bh.any, bh.count), (true, 3));
    let none = stats::reject(&[0.2, 0.7], 0.05, Correction::BenjaminiHochberg).unwrap();
    assert_eq!((none.any, none.count), (false, 0));
    let empty = stats::reject(&[], 0.05, Correction::Bonferroni).unwrap();
    assert_eq!((empty.any, empty.count), (false, 0));
    for bad_alpha in [0.0, 1.0, f64::NAN] {
        assert!(matches!(
            stats::reject(&ps, bad_alpha, Correction::Bonferroni),
            Err(Error::Config { .. })
        ));
    }
    assert!(matches!(
        stats::bonferroni(&[0.5, 1.5]),
        Err(Error::Config { .. })
    ));
}

#[test]
fn chi_square_matches_chi2_contingency() {
    let mut rng = Rng::new(11, 4);
    let many_ref: Vec<u64> = (0..100).map(|_| 50 + rng.below(500) as u64).collect();
    let many_cur: Vec<u64> = many_ref.iter().map(|&c| c + rng.below(60) as u64).collect();
    let cases: Vec<(Vec<u64>, Vec<u64>)> = vec![
        (
            vec![120, 80, 95, 110, 60, 70, 100, 90, 85, 90],
            vec![118, 85, 90, 104, 66, 71, 97, 95, 80, 94],
        ),
        (
            vec![120, 80, 95, 110, 60, 70, 100, 90, 85, 90],
            vec![300, 20, 40, 110, 10, 70, 100, 150, 5, 90],
        ),
        (vec![50, 0, 30, 20, 0], vec![45, 0, 40, 15, 0]),
        (vec![40, 60], vec![55, 45]),
        (vec![0, 10, 0], vec![0, 20, 0]),
        (many_ref, many_cur),
    ];
    // scipy refuses classes never seen, which the Rust test drops: give it the same table.
    let tables: Vec<Value> = cases
        .iter()
        .map(|(r, c)| {
            let (r, c): (Vec<u64>, Vec<u64>) =
                r.iter().zip(c).filter(|(a, b)| **a + **b > 0).unzip();
            json!([r, c])
        })
        .collect();
    let want = python(
        "out = []\n\
         for t in inp:\n    r = stats.chi2_contingency(np.array(t), correction=False)\n    out.append([float(r.statistic), float(r.pvalue), int(r.dof)])\n\
         print(json.dumps(out))",
        &json!(tables),
    );
    let mut worst = 0.0f64;
    for ((reference, current), want) in cases.iter().zip(want.as_array().unwrap()) {
        let got = stats::chi_square_homogeneity(reference, current).unwrap();
        let want_dof = want[2].as_u64().unwrap() as usize;
        let (s_err, p_err) = (
            relative_error(got.statistic, want[0].as_f64().unwrap()),
            relative_error(got.p_value, want[1].as_f64().unwrap()),
        );
        println!(
            "chi2 {:.4} dof {} p {:.4e}: rel. error statistic {s_err:.1e}, p {p_err:.1e}",
            got.statistic, got.dof, got.p_value
        );
        assert_eq!(got.dof, want_dof);
        assert!(
            s_err <= 1e-12 && p_err <= P_TOLERANCE,
            "{got:?} vs scipy {want}"
        );
        worst = worst.max(p_err);
    }
    println!("chi-square: worst relative p-value error {worst:.1e}");
}

#[test]
fn gamma_q_matches_scipy() {
    let grid: Vec<(f64, f64)> = [0.5, 1.0, 1.5, 2.0, 4.5, 10.0, 49.5, 200.0, 1000.0]
        .iter()
        .flat_map(|&a| [0.01, 0.5, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1100.0].map(|x| (a, x)))
        .collect();
    let want = floats(&python(
        "print(json.dumps([float(special.gammaincc(a, x)) for a, x in inp]))",
        &json!(grid),
    ));
    let mut worst = 0.0f64;
    for (&(a, x), &want) in grid.iter().zip(&want) {
        let got = stats::gamma_q(a, x);
        let err = if want < 1e-300 {
            (got - want).abs()
        } else {
            relative_error(got, want)
        };
        assert!(err <= P_TOLERANCE, "Q({a}, {x}) = {got}, scipy {want}");
        worst = worst.max(err);
    }
    println!(
        "gammaincc over {} points: worst relative error {worst:.1e}",
        grid.len()
    );
}

#[test]
fn mmd_matches_numpy_formula() {
    let mut rng = Rng::new(5, 5);
    let x = normal_matrix(&mut rng, 60, 5, 0.0);
    let y = normal_matrix(&mut rng, 80, 5, 0.2);
    let sigma = stats::median_heuristic_sigma(&x, &y).unwrap();
    let mmd2 = stats::mmd2_unbiased(&x, &y, sigma).unwrap();
    let mmd2_fixed = stats::mmd2_unbiased(&x, &y, 1.3).unwrap();
    let want = floats(&python(
        "from scipy.spatial.distance import pdist\n\
         x = np.array(inp['x']).reshape(-1, inp['cols']); y = np.array(inp['y']).reshape(-1, inp['cols'])\n\
         z = np.vstack([x, y]); m, n = len(x), len(y)\n\
         sigma = float(np.median(pdist(z)))\n\
         d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)\n\
         def mmd2(s):\n    k = np.exp(-d2 / (2 * s * s)); kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]\n    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())\n\
         print(json.dumps([sigma, mmd2(sigma), mmd2(1.3)]))",
        &json!({"x": x.data(), "y": y.data(), "cols": x.cols()}),
    ));
    let errors = [
        relative_error(sigma, want[0]),
        relative_error(mmd2, want[1]),
        relative_error(mmd2_fixed, want[2]),
    ];
    println!(
        "MMD vs numpy: σ {sigma:.6} MMD² {mmd2:.6e}, relative errors σ {:.1e}, MMD² {:.1e}, fixed-σ MMD² {:.1e}",
        errors[0], errors[1], errors[2]
    );
    assert!(errors[0] <= 1e-12, "σ {sigma} vs numpy {}", want[0]);
    assert!(
        errors[1] <= 1e-9 && errors[2] <= 1e-9,
        "{mmd2} {mmd2_fixed} vs {want:?}"
    );
}

#[test]
fn mmd_permutation_test_separates_shift_from_noise() {
    let options = MmdOptions {
        n_permutations: 200,
        seed: 42,
        bandwidth: Bandwidth::MedianHeuristic,
    };
    let mut rng = Rng::new(9, 6);
    let x = normal_matrix(&mut rng, 100, 8, 0.0);
    let same = normal_matrix(&mut rng, 100, 8, 0.0);
    let shifted = normal_matrix(&mut rng, 100, 8, 1.0);

    let null = stats::mmd_test(&x, &same, &options).unwrap();
    println!("same distribution: {null:?}");
    assert!(null.p_value > 0.05, "{null:?}");

    let drift = stats::mmd_test(&x, &shifted, &options).unwrap();
    println!("mean shift 1.0: {drift:?}");
    assert_eq!(drift.exceedances, 0);
    assert_eq!(drift.p_value, 1.0 / 201.0);
    assert!(drift.mmd2 > 10.0 * null.mmd2.abs());

    // Same seed, same answer; a fixed σ is used as given.
    assert_eq!(stats::mmd_test(&x, &same, &options).unwrap(), null);
    let fixed = MmdOptions {
        bandwidth: Bandwidth::Fixed(2.5),
        ..options
    };
    assert_eq!(stats::mmd_test(&x, &same, &fixed).unwrap().sigma, 2.5);
}

/// Under "no drift", tests at α = 0.05 must rarely fire: over 100 seeded pairs, at most
/// 10 alarms (the expected count is ≤ 5; the seeds are fixed, so this cannot flake).
#[test]
fn false_alarm_rate_under_no_drift() {
    let (mut ks_alarms, mut mmd_alarms) = (0, 0);
    for pair in 0..100u64 {
        let mut rng = Rng::new(1000 + pair, 7);
        let features = 5;
        let p_values: Vec<f64> = (0..features)
            .map(|_| {
                let (a, b) = (normal(&mut rng, 60, 0.0), normal(&mut rng, 80, 0.0));
                stats::ks_2samp(&a, &b).unwrap().p_value
            })
            .collect();
        if stats::reject(&p_values, 0.05, Correction::Bonferroni)
            .unwrap()
            .any
        {
            ks_alarms += 1;
        }
        let x = normal_matrix(&mut rng, 40, 3, 0.0);
        let y = normal_matrix(&mut rng, 40, 3, 0.0);
        let options = MmdOptions {
            n_permutations: 99,
            seed: pair,
            bandwidth: Bandwidth::MedianHeuristic,
        };
        if stats::mmd_test(&x, &y, &options).unwrap().p_value <= 0.05 {
            mmd_alarms += 1;
        }
    }
    println!("false alarms in 100 no-drift pairs: KS+Bonferroni {ks_alarms}, MMD {mmd_alarms}");
    assert!(ks_alarms <= 10 && mmd_alarms <= 10);
}

#[test]
fn mmd_200_permutations_on_300_by_256_is_fast() {
    let mut rng = Rng::new(3, 8);
    let x = normal_matrix(&mut rng, 300, 256, 0.0);
    let y = normal_matrix(&mut rng, 300, 256, 0.0);
    let start = Instant::now();
    let result = stats::mmd_test(&x, &y, &MmdOptions::default()).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "MMD, 300 + 300 rows × 256, 200 permutations: {elapsed:.3} s, p = {}",
        result.p_value
    );
    if !cfg!(debug_assertions) {
        assert!(elapsed < 1.0, "took {elapsed:.3} s");
    }
}

#[test]
fn too_few_or_bad_samples_are_refused() {
    let too_few = |r: helpers::Result<_>, needed: usize, got: usize| match r {
        Err(e @ Error::TooFewSamples { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("at least {needed}")), "{text}");
            assert!(
                matches!(e, Error::TooFewSamples { needed: n, got: g, .. } if n == needed && g == got)
            );
        }
        other => panic!("expected TooFewSamples, got {:?}", other.map(|_: ()| ())),
    };
    too_few(
        stats::ks_2samp(&[1.0], &[1.0, 2.0, 3.0]).map(|_| ()),
        KS_MIN_SAMPLES,
        1,
    );
    assert!(stats::ks_2samp(&[1.0, 2.0], &[3.0, 4.0]).is_ok());

    let mut rng = Rng::new(1, 9);
    let small = normal_matrix(&mut rng, MMD_MIN_SAMPLES - 1, 4, 0.0);
    let enough = normal_matrix(&mut rng, MMD_MIN_SAMPLES, 4, 0.0);
    too_few(
        stats::mmd_test(&enough, &small, &MmdOptions::default()).map(|_| ()),
        MMD_MIN_SAMPLES,
        MMD_MIN_SAMPLES - 1,
    );
    assert!(stats::mmd_test(&enough, &enough, &MmdOptions::default()).is_ok());

    too_few(
        stats::chi_square_homogeneity(&[2, 2, 0], &[10, 3, 4]).map(|_| ()),
        CHI2_MIN_TOTAL,
        4,
    );

    // Unusable input is a configuration error naming the argument, never a panic.
    let config_error = |r: helpers::Result<()>, key: &str| match r {
        Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected a config error on {key}, got {other:?}"),
    };
    config_error(
        stats::ks_2samp(&[1.0, f64::NAN], &[1.0, 2.0]).map(|_| ()),
        "ks_2samp.x",
    );
    let narrow = normal_matrix(&mut rng, 12, 3, 0.0);
    config_error(
        stats::mmd_test(&enough, &narrow, &MmdOptions::default()).map(|_| ()),
        "mmd.y",
    );
    let zero_permutations = MmdOptions {
        n_permutations: 0,
        ..MmdOptions::default()
    };
    config_error(
        stats::mmd_test(&enough, &enough, &zero_permutations).map(|_| ()),
        "mmd.n_permutations",
    );
    config_error(
        stats::chi_square_homogeneity(&[5, 5], &[5, 5, 5]).map(|_| ()),
        "chi_square.current",
    );
    config_error(
        Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]).map(|_| ()),
        "matrix.rows",
    );
}
