//! The one-sample Kolmogorov distribution of D_n: `kstwo_sf` (scipy's `kstwo.sf`), by
//! Durbin's matrix method, Pomeranz's recursion, the Pelz–Good expansion or Smirnov's
//! formula, as scipy chooses among them.
use super::ldexp;
const E128: i64 = 128;
/// 2^128 and 2^-128: rescaling thresholds that keep long products in range.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
/// log of the smallest subnormal double (cephes `MINLOG`): exp of less is 0.
const MINLOG: f64 = -745.133_219_101_941_2;

/// `P(D_n ≥ d)` for the two-sided one-sample Kolmogorov–Smirnov statistic
/// `D_n = sup_t |F_n(t) − F(t)|` — scipy's `kstwo.sf(d, n)`.
///
/// Follows Simard & L'Ecuyer (2011) like scipy's `_kolmogn`: Ruben–Gambino closed forms at
/// the ends of the support, `2·smirnov(n, d)` (Smirnov's one-sided tail, exact up to the
/// tiny two-sided overlap) for large `n·d²`, the Durbin matrix (Marsaglia–Tsang–Wang) or
/// Pomeranz recursion for small `n`, and the Pelz–Good expansion for large `n`.
/// Returns NaN for `n = 0` or NaN `d`.
pub fn kstwo_sf(n: u64, d: f64) -> f64 {
    if n == 0 || d.is_nan() {
        return f64::NAN;
    }
    // rv_continuous.sf: 1 below the support (0.5/n, 1), 0 above it.
    if d <= 0.5 / n as f64 {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n, d)
}

/// scipy's `_kolmogn(n, x, cdf=False)` for 0.5/n < x < 1.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ (2t − 1)ⁿ for 1/(2n) ≤ x ≤ 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| {
                acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
            })
        } else {
            (log_factorial_over_power(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx_squared = t * x;
    if n <= 140 {
        let cdf = if nx_squared <= 0.754693 {
            kolmogorov_cdf_durbin(n, x)
        } else if nx_squared <= 4.0 {
            kolmogorov_cdf_pomeranz(n, x)
        } else {
            return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogorov_cdf_durbin(n, x)
    } else {
        kolmogorov_cdf_pelz_good(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// `ln(n!/nⁿ)` by Stirling's series with `n·ln n` cancelled analytically.
fn log_factorial_over_power(n: f64) -> f64 {
    // Verbatim from scipy's `_STIRLING_COEFFS`, so the two can be compared digit by digit.
    #[allow(clippy::excessive_precision)]
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124_2e-2,
        6.410_256_410_256_410_3e-3,
        -1.917_526_917_526_917_5e-3,
        8.417_508_417_508_417_5e-4,
        -5.952_380_952_380_952_4e-4,
        7.936_507_936_507_936_5e-4,
        -2.777_777_777_777_777_8e-3,
        8.333_333_333_333_333_3e-2,
    ];
    let rn = 1.0 / n;
    let series = STIRLING.iter().fold(0.0, |acc, c| acc * (rn / n) + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * series
}

/// `P(D_n ≤ d)` by Durbin's matrix method as Marsaglia, Tsang & Wang (2003) evaluate it:
/// the (k, k) entry of `Hⁿ · n!/nⁿ` for the (2k−1)² matrix H, `k = ⌈n·d⌉`,
/// with exponents tracked separately (scipy's `_kolmogn_DMTW`).
fn kolmogorov_cdf_durbin(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in i - 1..m {
            hm[r * m + i] = w[r + 1 - i];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
        hm[(m - 1) * m + r] = v[m - 1 - r];
    }
    let mut power = vec![0.0; m * m];
    for i in 0..m {
        power[i * m + i] = 1.0;
    }
    let (mut expnt, mut h_expnt) = (0i64, 0i64);
    let mut remaining = n;
    while remaining > 0 {
        if remaining % 2 == 1 {
            power = matmul(&power, &hm, m);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm, m);
        h_expnt *= 2;
        if hm[(k - 1) * m + k - 1].abs() > EP128 {
            hm.iter_mut().for_each(|e| *e /= EP128);
            h_expnt += E128;
        }
        remaining /= 2;
    }
    let mut p = power[(k - 1) * m + k - 1];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    ldexp(p, expnt).clamp(0.0, 1.0)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for l in 0..m {
            let a_il = a[i * m + l];
            if a_il == 0.0 {
                continue;
            }
            let (row_b, row_out) = (&b[l * m..(l + 1) * m], &mut out[i * m..(i + 1) * m]);
            for (o, bv) in row_out.iter_mut().zip(row_b) {
                *o += a_il * bv;
            }
        }
    }
    out
}

/// Row bounds of Pomeranz's recursion (scipy's `_pomeranz_compute_j1j2`).
fn pomeranz_bounds(i: i64, n: i64, ll: i64, ceil_f: i64, round_f: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceil_f - 1, ll + ceil_f - 1)
    } else {
        let (half, odd) = ((i + 1) / 2, (i + 1) % 2);
        if odd == 0 {
            if half == n + 1 {
                (n - ll - ceil_f - 1, n + ll + ceil_f - 1)
            } else {
                (half - 1 - ll - round_f - 1, half + ll - 1 + ceil_f - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + round_f - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `P(D_n ≤ x)` by Pomeranz's (1974) recursion: each row the convolution of the previous
/// with truncated Poisson weights, rescaled as needed (scipy's `_kolmogn_Pomeranz`).
fn kolmogorov_cdf_pomeranz(n: u64, x: f64) -> f64 {
    let n = n as i64;
    let t = n as f64 * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceil_f = i64::from(f > 0.0);
    let round_f = i64::from(f > 0.5);
    let n_powers = (2 * (ll + 1)) as usize;
    // (g/n)^k/k!, (2g/n)^k/k!, ((1−2g)/n)^k/k!: Poisson weights up to their normaliser.
    let weights = |base: f64| {
        let mut w = vec![1.0; n_powers];
        for k in 1..n_powers {
            w[k] = w[k - 1] * base / k as f64;
        }
        w
    };
    let (g_pow, two_g_pow, one_minus_two_g_pow) = (
        weights(g / n as f64),
        weights(2.0 * g / n as f64),
        weights((1.0 - 2.0 * g) / n as f64),
    );
    let mut v0 = vec![0.0; n_powers];
    let mut v1 = vec![0.0; n_powers];
    v1[0] = 1.0;
    let (mut v0_start, mut v1_start) = (0i64, 0i64);
    let mut expnt = 0i64;
    let mut j1 = pomeranz_bounds(0, n, ll, ceil_f, round_f).0;
    for i in 1..2 * n + 2 {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0_start, &mut v1_start);
        v1.fill(0.0);
        let (row_j1, j2) = pomeranz_bounds(i, n, ll, ceil_f, round_f);
        j1 = row_j1;
        let powers = if i == 1 || i == 2 * n + 1 {
            &g_pow
        } else if i % 2 == 1 {
            &two_g_pow
        } else {
            &one_minus_two_g_pow
        };
        let len = j2 - k1 + 1;
        if len <= 0 {
            continue;
        }
        let Ok(start) = usize::try_from(k1 - v0_start) else {
            return f64::NAN;
        };
        let a = &v0[start.min(n_powers)..(start + len as usize).min(n_powers)];
        let b = &powers[..(len as usize).min(n_powers)];
        let conv_start = j1 - k1;
        for c in 0..(j2 - j1 + 1).max(0) {
            let Some(slot) = v1.get_mut(c as usize) else {
                return f64::NAN;
            };
            *slot = convolution_at(a, b, (conv_start + c) as usize);
        }
        let largest = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if 0.0 < largest && largest < EM128 {
            v1.iter_mut().for_each(|e| *e *= EP128);
            expnt -= E128;
        }
        v1_start = v0_start + j1 - k1;
    }
    let Some(&last) = usize::try_from(n - v1_start).ok().and_then(|k| v1.get(k)) else {
        return f64::NAN;
    };
    let mut ans = last;
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    ldexp(ans, expnt).clamp(0.0, 1.0)
}

/// Entry `c` of the full discrete convolution of `a` and `b` (`numpy.convolve`).
fn convolution_at(a: &[f64], b: &[f64], c: usize) -> f64 {
    if a.is_empty() || b.is_empty() || c > a.len() + b.len() - 2 {
        return 0.0;
    }
    let lo = c.saturating_sub(b.len() - 1);
    let hi = c.min(a.len() - 1);
    (lo..=hi).map(|j| a[j] * b[c - j]).sum()
}

/// `P(D_n ≤ x)` by the Pelz–Good (1976) asymptotic series in 1/√n, each term rewritten
/// through Jacobi theta functions for small `z = x·√n` (scipy's `_kolmogn_PelzGood`).
fn kolmogorov_cdf_pelz_good(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let (pi2, pi4, pi6) = (PI.powi(2), PI.powi(4), PI.powi(6));
    let sqrt_2pi = (2.0 * PI).sqrt();
    let z = (n as f64).sqrt() * x;
    let (z2, z3, z4, z6) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));
    let q_log = -pi2 / 8.0 / z2;
    if q_log < -708.0 {
        return 0.0;
    }
    let q = q_log.exp();
    let (k1a, k1b) = (-z2, pi2 / 4.0);
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);

    // Horner over the odd integers m = 2k − 1: Σ c(m) q^(m²).
    let mut terms = [0.0f64; 4];
    let max_k = (16.0 * z / PI).ceil() as i64;
    for k in (1..=max_k).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q_power = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (t, c) in terms.iter_mut().zip(coeffs) {
            *t = *t * q_power + c;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (t, div) in terms.iter_mut().zip(divisors) {
        *t = *t * q * sqrt_2pi / div;
    }
    // The sums over all integers k in K2 and K3.
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3_z = 3f64.sqrt() * z;
    let (mut k2_extra, mut k3_extra) = (0.0, 0.0);
    for k in (1..=max_k).rev() {
        let kf = k as f64;
        let q_power = q.powf(kf * kf);
        k2_extra += kf * kf * q_power;
        let k_pi = PI * kf;
        k3_extra += (sqrt3_z + k_pi) * (sqrt3_z - k_pi) * kf * kf * q_power;
    }
    terms[2] += k2_extra * pi2 * sqrt_2pi / (-36.0 * z3);
    terms[3] += k3_extra * pi2 * sqrt_2pi / (216.0 * z6);
    let nf = n as f64;
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| t / nf.powf(i as f64 / 2.0))
        .sum()
}

/// `P(D⁺_n > x)`, the one-sided Smirnov tail (scipy.special.smirnov), by the
/// Birnbaum–Tingey sum `x Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (x + v/n)^{v−1} (1 − x − v/n)^{n−v}`,
/// whose terms are all positive; each term is formed in log space from the exactly split
/// `n·x = ⌊n·x⌋ + α`, and the log binomial is accumulated with compensated summation.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nx_floor, alpha) = split_n_times_x(nf, x);
    if nx_floor == 0.0 || (nx_floor == 1.0 && alpha == 0.0) {
        // x ≤ 1/n: P(D⁺ ≤ x) = x (1 + x)^{n−1}.
        let cdf = x * ((nf - 1.0) * x.ln_1p()).exp();
        return 1.0 - cdf;
    }
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nx_floor >= nf - 1.0 {
        return (nf * (-x).ln_1p()).exp();
    }
    if n > 1_000_000 {
        // Too many terms; p ≈ exp(−(6nx + 1)² / 18n).
        let log_p = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if log_p < -std::f64::consts::LN_2 {
            log_p.exp()
        } else {
            1.0 + log_p.exp_m1()
        };
    }
    let n_terms = n - nx_floor as u64;
    let ln_x = x.ln();
    let mut sum = (nf * (-x).ln_1p()).exp(); // v = 0: x · (1 − x)^n / x
    let mut log_binomial = NeumaierSum::default();
    log_binomial.add(nf.ln()); // C(n, 1)
    for v in 1..n_terms {
        let vf = v as f64;
        let rising = ((nx_floor + vf + alpha) / nf).ln(); // x + v/n
        let falling = ((nf - nx_floor - vf - alpha) / nf).ln(); // 1 − x − v/n
        let term = (log_binomial.total() + ln_x + (vf - 1.0) * rising + (nf - vf) * falling).exp();
        if term.is_finite() && term != 0.0 {
            sum += term;
        }
        let negligible = 4.0 * (n_terms - v) as f64 * term.abs() < f64::EPSILON * sum;
        if term != 0.0 && negligible && v != n_terms - 1 {
            break;
        }
        if term == 0.0 && v > n / 2 {
            break;
        }
        log_binomial.add(((n - v) as f64 / (v + 1) as f64).ln());
    }
    sum.clamp(0.0, 1.0)
}

/// `n·x = floor + α` with α ∈ [0, 1) computed without the rounding error of `n·x`
/// (the product's error term comes exactly from a fused multiply-add).
fn split_n_times_x(n: f64, x: f64) -> (f64, f64) {
    let hi = n * x;
    let lo = n.mul_add(x, -hi);
    let mut floor = hi.floor();
    if hi == floor && lo < 0.0 {
        floor -= 1.0;
    }
    let mut alpha = (hi - floor) + lo;
    if alpha >= 1.0 {
        floor += 1.0;
        alpha = 0.0;
    }
    (floor, alpha.max(0.0))
}

/// Neumaier's compensated sum: keeps a long running sum of logs exact to ~1 ulp.
#[derive(Default)]
struct NeumaierSum {
    sum: f64,
    compensation: f64,
}

impl NeumaierSum {
    fn add(&mut self, value: f64) {
        let t = self.sum + value;
        self.compensation += if self.sum.abs() >= value.abs() {
            (self.sum - t) + value
        } else {
            (value - t) + self.sum
        };
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}
