//! The stored form of one device's search facts: one compressed record per device in
//! `config_fact_sources.facts`, written when a backup brings a new configuration and read into
//! the in-memory [`super::index`]. One row per device instead of hundreds keeps backups' writes
//! small and lets a server load a 10,000-firewall fleet in well under a second.
//!
//! Layout (before deflate), little-endian: `MMF1`; the field names (`u16` count, each `u8`
//! length + bytes); the things (`u32` count), each its key (`u16` length + bytes) and its facts
//! (`u16` count), each a field number (`u8`), a kind (`u8`: 0 text, 1 range) and then the text
//! (`u16` length + bytes) or the range (`i64` lo, `i64` hi). Reading never panics: a damaged
//! record is an error the caller logs, and that device is left out of search.

use std::collections::HashMap;
use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::facts::Fact;

const MAGIC: &[u8; 4] = b"MMF1";
/// A record inflates to at most this (a 2,000-rule firewall with long aliases is ~2 MB).
const MAX_INFLATED: u64 = 64 << 20;

/// One fact as read back: text, or a numeric range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    Range(i64, i64),
}

/// One thing (a rule, an alias…) and its facts as (field number, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thing<'a> {
    pub key: &'a str,
    pub facts: Vec<(u8, Value<'a>)>,
}

/// A decoded record, borrowing its texts from the inflated bytes: the field names the facts
/// number, and the things.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<'a> {
    pub fields: Vec<&'a str>,
    pub things: Vec<Thing<'a>>,
}

/// A record that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("search record unreadable: {0}")]
pub struct Damaged(&'static str);

/// `facts` as a compressed record (things in the order they first appear).
pub fn encode(facts: &[Fact]) -> Vec<u8> {
    let mut fields: Vec<&str> = Vec::new();
    let mut things: Vec<(&str, Vec<&Fact>)> = Vec::new();
    let mut thing_at: HashMap<&str, usize> = HashMap::new();
    for fact in facts {
        if !fields.contains(&fact.field) {
            fields.push(fact.field);
        }
        let at = *thing_at.entry(fact.entity.as_str()).or_insert_with(|| {
            things.push((fact.entity.as_str(), Vec::new()));
            things.len() - 1
        });
        things[at].1.push(fact);
    }
    let mut raw = Vec::with_capacity(facts.len() * 24);
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&(fields.len().min(255) as u16).to_le_bytes());
    for field in fields.iter().take(255) {
        short_text(&mut raw, field, u8::MAX as usize, |raw, n| {
            raw.push(n as u8)
        });
    }
    raw.extend_from_slice(&(things.len() as u32).to_le_bytes());
    for (key, list) in &things {
        text(&mut raw, key);
        let list: Vec<(u8, &Fact)> = list
            .iter()
            .filter_map(|f| {
                let n = fields.iter().position(|name| *name == f.field)?;
                Some((u8::try_from(n).ok()?, *f))
            })
            .take(u16::MAX as usize)
            .collect();
        raw.extend_from_slice(&(list.len() as u16).to_le_bytes());
        for (field, fact) in list {
            raw.push(field);
            match fact.range {
                Some((lo, hi)) => {
                    raw.push(1);
                    raw.extend_from_slice(&lo.to_le_bytes());
                    raw.extend_from_slice(&hi.to_le_bytes());
                }
                None => {
                    raw.push(0);
                    text(&mut raw, &fact.value);
                }
            }
        }
    }
    let mut out = DeflateEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = out.write_all(&raw);
    out.finish().unwrap_or_default()
}

/// Text with a `u16` length, cut at a character boundary if longer.
fn text(raw: &mut Vec<u8>, value: &str) {
    short_text(raw, value, u16::MAX as usize, |raw, n| {
        raw.extend_from_slice(&(n as u16).to_le_bytes())
    });
}

fn short_text(raw: &mut Vec<u8>, value: &str, max: usize, length: impl Fn(&mut Vec<u8>, usize)) {
    let mut cut = value.len().min(max);
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    length(raw, cut);
    raw.extend_from_slice(&value.as_bytes()[..cut]);
}

/// The bytes of a record written by [`encode`], inflated (read them with [`parse`]).
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, Damaged> {
    let mut raw = Vec::new();
    DeflateDecoder::new(bytes)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut raw)
        .map_err(|_| Damaged("not deflated"))?;
    if raw.len() as u64 > MAX_INFLATED {
        return Err(Damaged("too large"));
    }
    Ok(raw)
}

/// Read an inflated record.
pub fn parse(raw: &[u8]) -> Result<Record<'_>, Damaged> {
    let mut r = Reader { raw, at: 0 };
    if r.bytes(4)? != MAGIC {
        return Err(Damaged("unknown format"));
    }
    let field_count = r.u16()?;
    let mut fields = Vec::with_capacity(usize::from(field_count));
    for _ in 0..field_count {
        let n = r.u8()?;
        fields.push(r.text(usize::from(n))?);
    }
    let thing_count = r.u32()?;
    let mut things = Vec::new();
    for _ in 0..thing_count {
        let n = r.u16()?;
        let key = r.text(usize::from(n))?;
        let fact_count = r.u16()?;
        let mut facts = Vec::with_capacity(usize::from(fact_count));
        for _ in 0..fact_count {
            let field = r.u8()?;
            if usize::from(field) >= fields.len() {
                return Err(Damaged("unknown field number"));
            }
            let value = match r.u8()? {
                0 => {
                    let n = r.u16()?;
                    Value::Text(r.text(usize::from(n))?)
                }
                1 => Value::Range(r.i64()?, r.i64()?),
                _ => return Err(Damaged("unknown fact kind")),
            };
            facts.push((field, value));
        }
        things.push(Thing { key, facts });
    }
    if r.at != raw.len() {
        return Err(Damaged("trailing bytes"));
    }
    Ok(Record { fields, things })
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        let end = self.at.checked_add(n).ok_or(Damaged("truncated"))?;
        let out = self.raw.get(self.at..end).ok_or(Damaged("truncated"))?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damaged> {
        self.bytes(N)?.try_into().map_err(|_| Damaged("truncated"))
    }

    fn u8(&mut self) -> Result<u8, Damaged> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Damaged> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Damaged> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, Damaged> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn text(&mut self, n: usize) -> Result<&'a str, Damaged> {
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Damaged("text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Record<'static>, Damaged> {
        // Leaked: a test's few bytes.
        let raw: &'static [u8] = Box::leak(inflate(bytes)?.into_boxed_slice());
        parse(raw)
    }

    fn fact(entity: &str, field: &'static str, value: &str, range: Option<(i64, i64)>) -> Fact {
        Fact {
            entity: entity.to_owned(),
            field,
            value: value.to_owned(),
            range,
        }
    }

    #[test]
    fn facts_come_back_grouped_by_thing() {
        let facts = [
            fact("rule:0", "rule.action", "pass", None),
            fact(
                "system",
                "pfsense.version",
                "",
                Some((2_007_002, 2_007_002)),
            ),
            fact("rule:0", "rule.port", "", Some((22, 22))),
            fact("rule:0", "rule.description", "ssh — härter", None),
        ];
        let record = decode(&encode(&facts)).unwrap();
        assert_eq!(
            record.fields,
            [
                "rule.action",
                "pfsense.version",
                "rule.port",
                "rule.description"
            ]
        );
        assert_eq!(record.things.len(), 2);
        assert_eq!(record.things[0].key, "rule:0");
        assert_eq!(
            record.things[0].facts,
            [
                (0, Value::Text("pass")),
                (2, Value::Range(22, 22)),
                (3, Value::Text("ssh — härter"))
            ]
        );
        assert_eq!(
            record.things[1].facts,
            [(1, Value::Range(2_007_002, 2_007_002))]
        );
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        let good = encode(&[fact("rule:0", "rule.action", "pass", None)]);
        assert!(decode(b"not a record").is_err());
        assert!(decode(&good[..good.len() / 2]).is_err());
        let mut raw = Vec::new();
        DeflateDecoder::new(good.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        for cut in 0..raw.len() {
            let mut out = DeflateEncoder::new(Vec::new(), Compression::fast());
            out.write_all(&raw[..cut]).unwrap();
            assert!(decode(&out.finish().unwrap()).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut out = DeflateEncoder::new(Vec::new(), Compression::fast());
            out.write_all(&bytes).unwrap();
            let _ = decode(&out.finish().unwrap());
            let _ = decode(&bytes);
        }
    }
}
