//! A PostgreSQL WAL position (`pg_lsn`, written `16/B374D848`): the consistency token of read-your-writes. A write
//! answers with the position after its commit; a read that sends it back is served by a replica only once the
//! replica has replayed that far.

use std::fmt;

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's text form: two hexadecimal numbers of up to 8 digits, `high/low`.
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.split_once('/')?;
        let half = |s: &str| {
            (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(Self((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_write_as_postgres_does_and_order_by_value() {
        let lsn = Lsn::parse("16/B374D848").expect("valid");
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert!(Lsn::parse("1/0") > Lsn::parse("0/FFFFFFFF"));
        for bad in ["", "/", "16", "16/", "/B3", "G/1", "1/123456789", "-1/0", "1/0/0", " 1/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad:?}");
        }
    }
}
