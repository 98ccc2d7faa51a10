//! Lowercase hex for the decision's hot path: the expected API-key signature (and a thread's
//! first request id). The `hex` crate encodes through a table, a byte at a time (about 8
//! instructions a byte); the arithmetic below has no table and no branch, so the compiler
//! encodes a 32-byte tag 16 bytes at a time (193 instructions for the whole signature check
//! against 451; docs/benchmarks.md, fourteenth pass). Without a table, no memory access
//! depends on the bytes either, which suits the expected signature.

/// Writes `bytes` as lowercase hex into `out`; false, writing nothing, unless `out` is exactly
/// twice as long as `bytes`.
pub fn encode_to_slice(bytes: &[u8], out: &mut [u8]) -> bool {
    if out.len() != 2 * bytes.len() {
        return false;
    }
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        if let [high, low] = pair {
            *high = digit(byte >> 4);
            *low = digit(byte & 0x0f);
        }
    }
    true
}

/// The hex digit of a nibble (0 to 15).
fn digit(nibble: u8) -> u8 {
    // For 10 to 15, `9 - nibble` wraps past 127: its top bit says the digit is a letter.
    let letter = (9u8.wrapping_sub(nibble) >> 7) & 1;
    nibble + b'0' + letter * (b'a' - b'0' - 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_hex_crate() {
        for len in 0..=40usize {
            for seed in 0..=255u8 {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| {
                        seed.wrapping_mul(31)
                            .wrapping_add((i as u8).wrapping_mul(97))
                    })
                    .collect();
                let mut out = vec![0u8; 2 * len];
                assert!(encode_to_slice(&bytes, &mut out));
                assert_eq!(out, hex::encode(&bytes).into_bytes(), "{bytes:?}");
            }
        }
        let every: Vec<u8> = (0..=255).collect();
        let mut out = [0u8; 512];
        assert!(encode_to_slice(&every, &mut out));
        assert_eq!(&out[..], hex::encode(&every).as_bytes());
    }

    #[test]
    fn refuses_an_output_of_another_length() {
        let mut short = [b'x'; 3];
        assert!(!encode_to_slice(&[1, 2], &mut short));
        assert_eq!(short, [b'x'; 3], "nothing written");
        let mut long = [b'x'; 5];
        assert!(!encode_to_slice(&[1, 2], &mut long));
    }
}
