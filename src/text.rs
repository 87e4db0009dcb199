//! Text files written on Windows: UTF-8 with or without a byte order mark, or UTF-16 with one
//! (what Windows PowerShell 5.1's `>` and `Out-File` write). Used for the config file and the
//! connector's `.exe.config` files.

/// Decodes a text file's bytes, or says why it cannot.
pub fn decode(bytes: &[u8]) -> Result<String, &'static str> {
    let utf16 = |bytes: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| "invalid UTF-16")
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| "invalid UTF-8 after the byte order mark")
        }
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes.to_vec())
            .map_err(|_| "not UTF-8 (and no byte order mark for UTF-16)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_windows_encoding_decodes() {
        assert_eq!(
            decode(b"\xEF\xBB\xBFcloud: public").unwrap(),
            "cloud: public"
        );
        let mut le = vec![0xFF, 0xFE];
        le.extend("cloud: public".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&le).unwrap(), "cloud: public");
        let mut be = vec![0xFE, 0xFF];
        be.extend("ok".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be).unwrap(), "ok");
        assert!(decode(&[0xC3, 0x28]).is_err());
    }
}
