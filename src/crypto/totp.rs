//! TOTP (RFC 6238) with the parameters of Vault's TOTP engine that Barong uses: SHA-1, 6 digits,
//! 30 s period, ±1 step of skew; secrets of 20 random bytes shown as unpadded RFC 4648 base32.
//! Also the otpauth URL and the QR code (a 1-bit PNG, base64) that `generate_qrcode` returns.

use aws_lc_rs::hmac;
use base64::Engine;

/// Seconds per step.
pub const PERIOD: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub const SKEW: u64 = 1;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Inverse of [`base32_encode`]; padding and case are ignored; `None` on other characters.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// A fresh secret: 20 random bytes, base32.
#[expect(
    clippy::expect_used,
    reason = "without system randomness no secret can be made; the process cannot go on safely"
)]
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    base32_encode(&bytes)
}

/// RFC 4226 HOTP with SHA-1 over the raw secret bytes.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let digest = tag.as_ref();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The code of a base32 secret at unix time `now`.
pub fn code_at(secret_b32: &str, now: u64) -> Option<String> {
    Some(hotp(&base32_decode(secret_b32)?, now / PERIOD))
}

/// The time step `code` matches at `now` (±[`SKEW`]), compared in constant time; `None` when it
/// matches none (or the secret is unreadable).
pub fn verify(secret_b32: &str, code: &str, now: u64) -> Option<u64> {
    let secret = base32_decode(secret_b32)?;
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / PERIOD;
    let mut matched = None;
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        let expected = hotp(&secret, step);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes())
            .is_ok()
        {
            matched = Some(step);
        }
    }
    matched
}

/// `otpauth://totp/<issuer>:<account>?algorithm=SHA1&digits=6&issuer=<issuer>&period=30&secret=...`
/// as Vault renders it.
pub fn otpauth_url(issuer: &str, account: &str, secret_b32: &str) -> String {
    let label = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?algorithm=SHA1&digits={DIGITS}&issuer={}&period={PERIOD}&secret={secret_b32}",
        label(issuer).replace('+', "%20"),
        label(account).replace('+', "%20"),
        label(issuer).replace('+', "%20"),
    )
}

/// The QR code of `text` as a base64 PNG of about `size` pixels (1-bit grayscale, 4-module quiet
/// zone), like Vault's `barcode`.
pub fn qr_png_base64(text: &str, size: u32) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width() as u32;
    let modules = width + 8;
    let scale = (size / modules).max(1);
    let pixels = modules * scale;
    let colors = code.to_colors();
    let dark = |x: u32, y: u32| -> bool {
        let (mx, my) = (x / scale, y / scale);
        if mx < 4 || my < 4 || mx >= width + 4 || my >= width + 4 {
            return false;
        }
        colors[((my - 4) * width + (mx - 4)) as usize] == qrcode::Color::Dark
    };
    let row_bytes = pixels.div_ceil(8) as usize;
    let mut raw = Vec::with_capacity((row_bytes + 1) * pixels as usize);
    for y in 0..pixels {
        raw.push(0); // filter: none
        let mut row = vec![0xffu8; row_bytes];
        for x in 0..pixels {
            if dark(x, y) {
                row[(x / 8) as usize] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    let png = png_gray1(pixels, pixels, &raw);
    Some(base64::engine::general_purpose::STANDARD.encode(png))
}

/// A minimal PNG encoder: 1-bit grayscale, zlib with stored (uncompressed) deflate blocks.
fn png_gray1(width: u32, height: u32, filtered: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = filtered.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(filtered).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; the last 6 are ours).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(hotp(secret, time / PERIOD), expected[2..], "t={time}");
        }
    }

    #[test]
    fn base32_round_trip_and_verify_window() {
        assert_eq!(
            base32_encode(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let secret = generate_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(
            base32_decode(&secret).map(|b| base32_encode(&b)),
            Some(secret.clone())
        );
        let now = 1_700_000_000;
        let code = code_at(&secret, now).expect("code");
        assert_eq!(verify(&secret, &code, now), Some(now / PERIOD));
        assert_eq!(verify(&secret, &code, now + PERIOD), Some(now / PERIOD));
        assert_eq!(verify(&secret, &code, now + 3 * PERIOD), None);
        assert_eq!(verify(&secret, "12345", now), None);
    }

    #[test]
    fn qr_png_is_a_png() {
        let png = qr_png_base64(&otpauth_url("Barong", "a@b.c", "ABC"), 300).expect("qr");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .expect("b64");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
