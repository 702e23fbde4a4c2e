//! ClickHouse's `cityHash64`, computed on the client: CityHash v1.0.2 (the version ClickHouse keeps for
//! compatibility, in every release from 18.x on), with its rules for several arguments. The exporter
//! fingerprints the rows it reads with it, and the result must equal what the fingerprint query asks the server
//! for (`cityHash64(mint, candles, max_version)`, docs/lake-format.md, "Source fingerprint"), byte for byte:
//! the unit tests hold values both ClickHouse 18.16 and 26.9 answered.

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;
const K3: u64 = 0xc949_d7c7_509e_6557;

/// `cityHash64(s, n, v)` for a `String`, a `UInt64` and a `String`, as ClickHouse computes it: the first
/// argument's hash, then each next one's combined into it.
pub fn city_hash64_string_u64_string(s: &[u8], n: u64, v: &[u8]) -> u64 {
    let h = combine(city_hash64(s), int_hash64(n));
    combine(h, city_hash64(v))
}

/// How ClickHouse hashes an integer argument of `cityHash64` (`IntHash64Impl`): not CityHash of its bytes but a
/// mix of its value.
fn int_hash64(x: u64) -> u64 {
    let mut x = x ^ 0x4cf2_d2ba_ae6d_a887;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// How ClickHouse folds the next argument's hash into the hash so far.
fn combine(so_far: u64, next: u64) -> u64 {
    hash128_to_64(so_far, next)
}

/// CityHash's `Hash128to64` of the pair (`low`, `high`).
fn hash128_to_64(low: u64, high: u64) -> u64 {
    const MUL: u64 = 0x9ddf_ea08_eb38_2d69;
    let mut a = (low ^ high).wrapping_mul(MUL);
    a ^= a >> 47;
    let mut b = (high ^ a).wrapping_mul(MUL);
    b ^= b >> 47;
    b.wrapping_mul(MUL)
}

fn fetch64(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"))
}

fn fetch32(s: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        s[at..at + 4].try_into().expect("4 bytes"),
    ))
}

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

fn hash_len16(u: u64, v: u64) -> u64 {
    hash128_to_64(u, v)
}

fn hash_len0_to16(s: &[u8]) -> u64 {
    let len = s.len();
    if len > 8 {
        let a = fetch64(s, 0);
        let b = fetch64(s, len - 8);
        // `len` is 9..=16: the rotation is never by 0 or 64.
        return hash_len16(a, b.wrapping_add(len as u64).rotate_right(len as u32)) ^ b;
    }
    if len >= 4 {
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4));
    }
    if len > 0 {
        let (a, b, c) = (s[0], s[len >> 1], s[len - 1]);
        let y = u32::from(a).wrapping_add(u32::from(b) << 8);
        let z = (len as u32).wrapping_add(u32::from(c) << 2);
        return shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K3))
            .wrapping_mul(K2);
    }
    K2
}

fn hash_len17_to32(s: &[u8]) -> u64 {
    let len = s.len();
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(K2);
    let d = fetch64(s, len - 16).wrapping_mul(K0);
    hash_len16(
        a.wrapping_sub(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add((b ^ K3).rotate_right(20))
            .wrapping_sub(c)
            .wrapping_add(len as u64),
    )
}

fn weak_hash_len32_with_seeds(s: &[u8], at: usize, mut a: u64, mut b: u64) -> (u64, u64) {
    let (w, x, y, z) = (
        fetch64(s, at),
        fetch64(s, at + 8),
        fetch64(s, at + 16),
        fetch64(s, at + 24),
    );
    a = a.wrapping_add(w);
    b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

fn hash_len33_to64(s: &[u8]) -> u64 {
    let len = s.len();
    let mut z = fetch64(s, 24);
    let mut a = fetch64(s, 0).wrapping_add(
        (len as u64)
            .wrapping_add(fetch64(s, len - 16))
            .wrapping_mul(K0),
    );
    let mut b = a.wrapping_add(z).rotate_right(52);
    let mut c = a.rotate_right(37);
    a = a.wrapping_add(fetch64(s, 8));
    c = c.wrapping_add(a.rotate_right(7));
    a = a.wrapping_add(fetch64(s, 16));
    let vf = a.wrapping_add(z);
    let vs = b.wrapping_add(a.rotate_right(31)).wrapping_add(c);
    a = fetch64(s, 16).wrapping_add(fetch64(s, len - 32));
    z = fetch64(s, len - 8);
    b = a.wrapping_add(z).rotate_right(52);
    c = a.rotate_right(37);
    a = a.wrapping_add(fetch64(s, len - 24));
    c = c.wrapping_add(a.rotate_right(7));
    a = a.wrapping_add(fetch64(s, len - 16));
    let wf = a.wrapping_add(z);
    let ws = b.wrapping_add(a.rotate_right(31)).wrapping_add(c);
    let r = shift_mix(
        vf.wrapping_add(ws)
            .wrapping_mul(K2)
            .wrapping_add(wf.wrapping_add(vs).wrapping_mul(K0)),
    );
    shift_mix(r.wrapping_mul(K0).wrapping_add(vs)).wrapping_mul(K2)
}

/// CityHash64 v1.0.2 of `s`.
fn city_hash64(s: &[u8]) -> u64 {
    let len = s.len();
    if len <= 16 {
        return hash_len0_to16(s);
    }
    if len <= 32 {
        return hash_len17_to32(s);
    }
    if len <= 64 {
        return hash_len33_to64(s);
    }
    // Over 64 bytes: the end first, then 64-byte chunks with 56 bytes of state.
    let mut x = fetch64(s, 0);
    let mut y = fetch64(s, len - 16) ^ K1;
    let mut z = fetch64(s, len - 56) ^ K0;
    let mut v = weak_hash_len32_with_seeds(s, len - 64, len as u64, y);
    let mut w = weak_hash_len32_with_seeds(s, len - 32, (len as u64).wrapping_mul(K1), K0);
    z = z.wrapping_add(shift_mix(v.1).wrapping_mul(K1));
    x = z.wrapping_add(x).rotate_right(39).wrapping_mul(K1);
    y = y.rotate_right(33).wrapping_mul(K1);
    let mut at = 0;
    let mut left = (len - 1) & !63;
    loop {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, at + 16))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, at + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y ^= v.0;
        z = (z ^ w.0).rotate_right(33);
        v = weak_hash_len32_with_seeds(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(s, at + 32, z.wrapping_add(w.1), y);
        std::mem::swap(&mut z, &mut x);
        at += 64;
        left -= 64;
        if left == 0 {
            break;
        }
    }
    hash_len16(
        hash_len16(v.0, w.0)
            .wrapping_add(shift_mix(y).wrapping_mul(K1))
            .wrapping_add(z),
        hash_len16(v.1, w.1).wrapping_add(x),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of every kind a mint or a version string holds; prefixes of it reach every branch of CityHash64.
    const BASE: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU9mJvFqBzNxT3Y2HwGfpQ8RkE4LmZc1VtYbNwX6sPaD0uIeOhJgKl\
MnRqSfTuWvXyZ-_!@#$%^&*()[]{};:,.<>?/|~`+=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// `SELECT l, hex(cityHash64(substring(BASE, 1, l))), hex(cityHash64(substring(BASE, 1, l),
    /// toUInt64(l * 7919), '2024-05-06 07:08:09'))`, answered alike by ClickHouse 18.16 and 26.9.
    const SERVER: [(usize, u64, u64); 25] = [
        (0, 0x9ae16a3b2f90404f, 0x9cf9cee9a7f0e4f2),
        (1, 0x4d3fee42feee34f3, 0x5d16aedc228992db),
        (2, 0x6e52d1acba81baec, 0x60eefa4d4ee78c37),
        (3, 0xefedb63068ddd5f1, 0x12b55dd1788e84ce),
        (4, 0xaf2067ee6c962343, 0x314dfdcb03c4562e),
        (5, 0x6982db293745955a, 0x2c9ede5a26a7de3e),
        (7, 0xb088faca7eaba998, 0x3f0413f116aa33e7),
        (8, 0x1d3547de800a1fc5, 0x5cabb3e3c3d23478),
        (9, 0xf7fdded4320e825e, 0x4f4216210f0ba3ba),
        (15, 0x1c5d106c6f362975, 0x1870c12810a40139),
        (16, 0xaa44e85f790bfdb0, 0x0664ad0b2528ffe3),
        (17, 0x1962b6311c4da918, 0x7c817748e2b38451),
        (24, 0x2909bb80134d726d, 0x51c41c766f6893a0),
        (31, 0x13005b9fb06ec37b, 0x2c02389d21469c4a),
        (32, 0x519907dd551636c3, 0xc6360cd93c0bcc48),
        (33, 0xbe35ce46d5a42cf1, 0x70ac9a14580891e9),
        (44, 0xa87615c4fea1d717, 0x90f32d6df9763650),
        (63, 0xa590cce9259e4b91, 0xe264908f608c7f02),
        (64, 0xb7dff3ce5dd911c8, 0x920ab73d888f9a62),
        (65, 0xee6f83926a646a3d, 0x89c72cabd363f8c5),
        (100, 0x266e64d269de08e5, 0x2ece3430f63f5a69),
        (127, 0xef0c1113a327422a, 0x0d3c2aba801b31d5),
        (128, 0x41ca864be5247aae, 0xc78cffa10f47c1af),
        (129, 0x4c8443627fdad75f, 0xea11e2adc6f59a53),
        (200, 0xc0fc016eca72e5c5, 0x81f7c81a114b93da),
    ];

    #[test]
    fn equals_the_servers_city_hash64_at_every_length() {
        assert_eq!(BASE.len(), 200);
        for (len, one, three) in SERVER {
            let s = &BASE.as_bytes()[..len];
            assert_eq!(city_hash64(s), one, "cityHash64 of {len} bytes");
            assert_eq!(
                city_hash64_string_u64_string(s, len as u64 * 7919, b"2024-05-06 07:08:09"),
                three,
                "cityHash64 of ({len} bytes, UInt64, String)"
            );
        }
    }

    #[test]
    fn empty_strings_and_extreme_counts_match_the_server() {
        // SELECT hex(cityHash64('', toUInt64(0), '')), hex(cityHash64('abc', toUInt64(18446744073709551615), ''))
        assert_eq!(
            city_hash64_string_u64_string(b"", 0, b""),
            0xedf7eb7004b0f885
        );
        assert_eq!(
            city_hash64_string_u64_string(b"abc", u64::MAX, b""),
            0x0b47e7441d312a13
        );
    }
}
