//! The arithmetic of a filter: its size from the options, and a member's bit positions
//! (CRC-32 of `<member>_<i>`, as cashews for Python computes them).

/// `m` and `k` as floats, computed as cashews for Python does.
pub(super) const fn raw_params(capacity: u64, percent: f64) -> (f64, f64) {
    let n = capacity as f64;
    let ln2 = std::f64::consts::LN_2;
    let m = ceil(-(n * ln(percent / 100.0)) / (ln2 * ln2));
    let k = round_ties_even(m / n * ln2);
    (m, k)
}

/// 2^52: from here on every `f64` is a whole number.
const WHOLE: f64 = 4_503_599_627_370_496.0;

/// `x.floor()`, usable in constants on Rust 1.89 (`f64::floor` is `const` from 1.90).
const fn floor(x: f64) -> f64 {
    // NaN, the infinities and numbers of 2^52 or more are their own floor.
    if x.is_nan() || x.abs() >= WHOLE {
        return x;
    }
    let truncated = x as i64 as f64; // toward zero, exact below 2^52
    if truncated > x {
        truncated - 1.0
    } else {
        truncated
    }
}

/// `x.ceil()`, usable in constants on Rust 1.89.
const fn ceil(x: f64) -> f64 {
    -floor(-x)
}

/// `x.round_ties_even()` (halves go to the even neighbour), usable in constants on Rust 1.89.
const fn round_ties_even(x: f64) -> f64 {
    if x.is_nan() || x.abs() >= WHOLE {
        return x;
    }
    let below = floor(x);
    let fraction = x - below; // exact: both are multiples of x's last bit
    if fraction > 0.5 || (fraction == 0.5 && below % 2.0 != 0.0) {
        below + 1.0
    } else {
        below
    }
}

/// The natural logarithm of a positive, finite `x`, usable in constants (`f64::ln` is not
/// `const`): `ln x = e · ln 2 + 2 · atanh((y − 1) / (y + 1))` with `x = y · 2^e` and
/// `y` in `[√½, √2]`, where the series converges to full precision within 30 terms.
const fn ln(x: f64) -> f64 {
    let mut x = x;
    let mut exponent: i64 = 0;
    if x < f64::MIN_POSITIVE {
        x *= 18_014_398_509_481_984.0; // 2^54: subnormals become normal
        exponent -= 54;
    }
    let bits = x.to_bits();
    exponent += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut y = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if y > std::f64::consts::SQRT_2 {
        y /= 2.0;
        exponent += 1;
    }
    let s = (y - 1.0) / (y + 1.0);
    let s2 = s * s;
    // Sum the smallest terms first: s^(2j+1) / (2j+1) for j = 29 down to 0.
    let mut powers = [0.0f64; 30];
    let mut power = s;
    let mut j = 0;
    while j < 30 {
        powers[j] = power;
        power *= s2;
        j += 1;
    }
    let mut sum = 0.0;
    let mut j = 30;
    while j > 0 {
        j -= 1;
        sum += powers[j] / (2 * j + 1) as f64;
    }
    2.0 * sum + exponent as f64 * std::f64::consts::LN_2
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and Python's `binascii.crc32`), one table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Feeds `bytes` into a CRC-32 register (start from `!0`, finish with `!`).
fn crc_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// `k` distinct positions below `m`: CRC-32 of `<member>_<i>` modulo `m`.
pub(super) fn positions(member: &[u8], m: u64, k: u32) -> Vec<u64> {
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let k = k.min(usize::try_from(m).unwrap_or(usize::MAX));
    let prefix = crc_update(crc_update(!0, member), b"_");
    // Far more draws than distinct residues ever need; past it (never seen in practice),
    // the next free position is taken, so the loop always ends, the same way everywhere.
    let draws = u64::try_from(k)
        .unwrap_or(u64::MAX)
        .saturating_mul(64)
        .saturating_add(1024);
    let mut chosen: Vec<u64> = Vec::with_capacity(k);
    let mut i: u64 = 0;
    while chosen.len() < k {
        let crc = !crc_update(prefix, itoa(i).as_slice());
        let mut position = u64::from(crc) % m;
        if i >= draws {
            while chosen.contains(&position) {
                position = (position + 1) % m;
            }
        }
        if !chosen.contains(&position) {
            chosen.push(position);
        }
        i += 1;
    }
    chosen
}

/// Decimal digits of `n`, without allocating.
fn itoa(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start }
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::{ceil, floor, round_ties_even};

    #[test]
    fn const_rounding_matches_std() {
        let mut values = vec![
            0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.5 - f64::EPSILON / 4.0,
            1.0 - f64::EPSILON,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_992.0,
            1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Bloom sizes and hash counts come from values like these.
        let mut x = 1e-6;
        while x < 1e12 {
            values.push(x);
            values.push(-x);
            x *= 1.37;
        }
        for i in 0..2_000 {
            values.push(f64::from(i) / 4.0);
        }
        for v in values {
            for (name, ours, theirs) in [
                ("floor", floor(v), v.floor()),
                ("ceil", ceil(v), v.ceil()),
                ("round_ties_even", round_ties_even(v), v.round_ties_even()),
            ] {
                assert!(
                    (ours == theirs && ours.is_sign_negative() == theirs.is_sign_negative())
                        || ours == 0.0 && theirs == 0.0,
                    "{name}({v}) = {ours}, std says {theirs}"
                );
            }
        }
        assert!(floor(f64::NAN).is_nan());
        assert!(ceil(f64::NAN).is_nan());
        assert!(round_ties_even(f64::NAN).is_nan());
    }
}
