//! SHA-256 in lower-case hex: the one spelling of every hash the project
//! writes or checks (manifests, `split.json`, landmark files, weights).

use sha2::{Digest, Sha256};
use std::io::Read;

/// Lower-case hexadecimal of `bytes` (a digest).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of everything `reader` yields, read in pieces.
pub fn sha256_read(mut reader: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut reader, &mut h)?;
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_sha256() {
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        assert_eq!(sha256_read(&b"abc"[..]).unwrap(), abc);
    }
}
