//! The mint bucket: the first byte of SHA-1 of the token address, as two lowercase hex characters.

use sha1::{Digest, Sha1};

/// Bucket index 0..=255 of a mint (SHA-1 of its UTF-8 bytes, first byte).
pub fn mint_bucket_index(mint: &str) -> u8 {
    Sha1::digest(mint.as_bytes())[0]
}

/// Bucket name `00`..`ff` of a bucket index, as used in `mint_bucket=<bb>` directories.
pub fn bucket_name(index: u8) -> String {
    format!("{index:02x}")
}

/// Bucket name `00`..`ff` of a mint (docs/lake-format.md, "Rules").
pub fn compute_mint_bucket(mint: &str) -> String {
    bucket_name(mint_bucket_index(mint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        let vectors = [
            ("So11111111111111111111111111111111111111112", "35"),
            ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "9a"),
            ("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", "54"),
            ("DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", "d5"),
            ("mint1", "4d"),
            ("", "da"),
            ("a", "86"),
            ("abc", "a9"),
        ];
        for (mint, bucket) in vectors {
            assert_eq!(compute_mint_bucket(mint), bucket, "mint {mint:?}");
        }
    }

    #[test]
    fn names_are_two_lowercase_hex_chars() {
        assert_eq!(bucket_name(0), "00");
        assert_eq!(bucket_name(10), "0a");
        assert_eq!(bucket_name(255), "ff");
    }
}
