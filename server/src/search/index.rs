//! The in-memory search index of an organisation: every device's facts, with text interned once
//! per organisation, laid out flat so a query is a tight scan over the fleet's things (a few
//! milliseconds for 10,000 firewalls and half a million rules, whatever the filters). The
//! database stays the truth: each search first reads a fingerprint of the organisation's facts
//! and devices (one indexed query), and an index that is behind loads only what changed — the
//! records written since (`seq` above its own), the device names if a device changed, the list of
//! devices if one went — so every server process sharing a database answers from the same facts.
//! At most [`MAX_ORGS`] organisations are held; the least recently searched goes first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use app::search::{port_range, version_parts, FieldKind, Filter, Op};

use super::record::{Record, Value};

/// Organisations whose index is held in memory.
pub const MAX_ORGS: usize = 64;

/// The kinds of thing, numbered by their place here (`rule:4` is a rule).
const THINGS: [&str; 7] = [
    "system",
    "alias",
    "rule",
    "nat",
    "user",
    "package",
    "interface",
];

fn thing_number(name: &str) -> u8 {
    THINGS
        .iter()
        .position(|t| *t == name)
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(u8::MAX)
}

/// What an organisation's facts and devices looked like when read: if the database says
/// otherwise, the index catches up before answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Devices with facts, and the newest record's sequence number.
    pub sources: i64,
    pub max_seq: i64,
    /// Devices, and the newest change to any of them (a rename).
    pub devices: i64,
    pub devices_changed: i64,
}

#[derive(Clone, Copy)]
struct TextFact {
    field: u8,
    value: u32,
}

#[derive(Clone, Copy)]
struct RangeFact {
    field: u8,
    lo: i32,
    hi: i32,
}

/// Ports and versions (2.7.2 is 2 007 002) fit; anything larger is held at the bounds.
fn narrow(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

/// One thing of a device: its key, kind, and where its facts are in the device's lists.
struct Thing {
    key: u32,
    kind: u8,
    texts: (u32, u32),
    ranges: (u32, u32),
}

/// One device's facts: its things grouped by kind (`kinds[k]` is where kind k's are).
struct DeviceFacts {
    seq: i64,
    kinds: [(u32, u32); THINGS.len()],
    things: Vec<Thing>,
    texts: Vec<TextFact>,
    ranges: Vec<RangeFact>,
}

/// Every distinct text of the organisation, once, with the fields it appears in.
#[derive(Default)]
struct Strings {
    list: Vec<Arc<str>>,
    fields: Vec<u64>,
    at: HashMap<Arc<str>, u32>,
}

impl Strings {
    fn intern(&mut self, text: &str, field: Option<u8>) -> u32 {
        let n = match self.at.get(text) {
            Some(n) => *n,
            None => {
                let text: Arc<str> = Arc::from(text);
                let n = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
                self.list.push(text.clone());
                self.fields.push(0);
                self.at.insert(text, n);
                n
            }
        };
        if let (Some(field), Some(mask)) = (field, self.fields.get_mut(n as usize)) {
            *mask |= field_bit(field);
        }
        n
    }
}

fn field_bit(field: u8) -> u64 {
    if field < 64 {
        1 << field
    } else {
        u64::MAX
    }
}

/// One organisation's index.
#[derive(Default)]
pub struct OrgIndex {
    pub fingerprint: Fingerprint,
    /// The highest record sequence number loaded.
    pub max_seq: i64,
    fields: Vec<String>,
    strings: Strings,
    devices: HashMap<Arc<str>, DeviceFacts>,
    /// Every device of the organisation (id, name) in the order results list them.
    order: Vec<(Arc<str>, Arc<str>)>,
    /// Distinct texts when the index was last built whole: texts of replaced records stay
    /// interned, so past twice this the index is rebuilt.
    strings_at_build: usize,
}

/// What a search found: the first `limit` things by device name, how many devices match, and
/// whether there were more things.
pub struct Found {
    pub hits: Vec<Hit>,
    pub devices: u64,
    pub more: bool,
}

pub struct Hit {
    pub device_id: Arc<str>,
    pub device_name: Arc<str>,
    pub key: Arc<str>,
}

/// A filter made ready against this index.
struct Compiled {
    field: u8,
    test: Test,
}

enum Test {
    /// Text equal to this string.
    Is(u32),
    /// Text among these strings (a bit per string).
    In(Vec<u64>),
    /// A range whose `lo` is within these bounds (versions).
    LoWithin(i64, i64),
    /// A range overlapping this one (ports).
    Overlaps(i64, i64),
    /// Nothing can match (a value the organisation never had).
    Never,
}

impl OrgIndex {
    fn field_number(&mut self, name: &str) -> u8 {
        match self.fields.iter().position(|f| f == name) {
            Some(n) => u8::try_from(n).unwrap_or(u8::MAX),
            None => {
                self.fields.push(name.to_owned());
                u8::try_from(self.fields.len() - 1).unwrap_or(u8::MAX)
            }
        }
    }

    /// Devices held.
    pub fn devices_held(&self) -> usize {
        self.devices.len()
    }

    /// Whether so many replaced texts linger that a whole rebuild is due.
    pub fn needs_rebuild(&self) -> bool {
        self.strings.list.len() > 2 * self.strings_at_build.max(50_000)
    }

    /// Mark the current texts as the baseline (after a whole build).
    pub fn built(&mut self) {
        self.strings_at_build = self.strings.list.len();
    }

    /// Put (or replace) a device's facts read from its record.
    pub fn put(&mut self, device_id: &str, seq: i64, record: Record<'_>) {
        let fields: Vec<u8> = record
            .fields
            .iter()
            .map(|name| self.field_number(name))
            .collect();
        let ranges = record
            .things
            .iter()
            .flat_map(|t| &t.facts)
            .filter(|(_, v)| matches!(v, Value::Range(..)))
            .count();
        let texts = record.things.iter().map(|t| t.facts.len()).sum::<usize>() - ranges;
        let mut device = DeviceFacts {
            seq,
            kinds: [(0, 0); THINGS.len()],
            things: Vec::with_capacity(record.things.len()),
            texts: Vec::with_capacity(texts),
            ranges: Vec::with_capacity(ranges),
        };
        let mut things = record.things;
        // Grouped by kind (a stable sort: each kind keeps the configuration's order).
        things.sort_by_key(|t| thing_number(t.key.split(':').next().unwrap_or("")));
        for thing in things {
            let kind = thing_number(thing.key.split(':').next().unwrap_or(""));
            let key = self.strings.intern(thing.key, None);
            let (text_start, range_start) = (device.texts.len(), device.ranges.len());
            for (field, value) in thing.facts {
                let field = fields.get(usize::from(field)).copied().unwrap_or(u8::MAX);
                match value {
                    Value::Text(text) => {
                        let value = self.strings.intern(text, Some(field));
                        device.texts.push(TextFact { field, value });
                    }
                    Value::Range(lo, hi) => device.ranges.push(RangeFact {
                        field,
                        lo: narrow(lo),
                        hi: narrow(hi),
                    }),
                }
            }
            let span = |a: usize, b: usize| {
                (
                    u32::try_from(a).unwrap_or(u32::MAX),
                    u32::try_from(b).unwrap_or(u32::MAX),
                )
            };
            device.things.push(Thing {
                key,
                kind,
                texts: span(text_start, device.texts.len()),
                ranges: span(range_start, device.ranges.len()),
            });
        }
        for (kind, span) in device.kinds.iter_mut().enumerate() {
            let of_kind = |t: &Thing| usize::from(t.kind) == kind;
            let start = device.things.iter().position(of_kind).unwrap_or(0);
            let count = device.things.iter().filter(|t| of_kind(t)).count();
            *span = (
                u32::try_from(start).unwrap_or(0),
                u32::try_from(start + count).unwrap_or(0),
            );
        }
        self.max_seq = self.max_seq.max(seq);
        self.devices.insert(Arc::from(device_id), device);
    }

    /// Keep only these devices' facts.
    pub fn retain(&mut self, device_ids: &[String]) {
        let keep: std::collections::HashSet<&str> = device_ids.iter().map(String::as_str).collect();
        self.devices.retain(|id, _| keep.contains(&**id));
    }

    /// The organisation's devices (id, name), listed by name as people sort (case aside).
    pub fn set_devices(&mut self, mut devices: Vec<(String, String)>) {
        devices.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.clone()));
        self.order = devices
            .into_iter()
            .map(|(id, name)| {
                // Share the key the facts are held under.
                let id = self
                    .devices
                    .get_key_value(id.as_str())
                    .map_or_else(|| Arc::from(id.as_str()), |(k, _)| k.clone());
                (id, Arc::from(name.as_str()))
            })
            .collect();
    }

    /// The sequence numbers held, by device.
    pub fn seqs(&self) -> impl Iterator<Item = (&str, i64)> {
        self.devices.iter().map(|(id, d)| (&**id, d.seq))
    }

    fn compile(&self, filter: &Filter) -> Compiled {
        let Some(field) = self.fields.iter().position(|f| f == filter.field.name) else {
            return Compiled {
                field: u8::MAX,
                test: Test::Never,
            };
        };
        let field = u8::try_from(field).unwrap_or(u8::MAX);
        let test = match filter.field.kind {
            FieldKind::Text => match filter.op {
                Op::Contains => {
                    let bit = field_bit(field);
                    let mut set = vec![0u64; self.strings.list.len().div_ceil(64)];
                    for (n, (text, mask)) in self
                        .strings
                        .list
                        .iter()
                        .zip(&self.strings.fields)
                        .enumerate()
                    {
                        if mask & bit != 0 && text.contains(filter.value.as_str()) {
                            set[n / 64] |= 1 << (n % 64);
                        }
                    }
                    Test::In(set)
                }
                _ => match self.strings.at.get(filter.value.as_str()) {
                    Some(n) => Test::Is(*n),
                    None => Test::Never,
                },
            },
            FieldKind::Port => match port_range(&filter.value) {
                Some((lo, hi)) => Test::Overlaps(lo, hi),
                None => Test::Never,
            },
            FieldKind::Version => match version_parts(&filter.value) {
                Some((key, parts)) => {
                    // "2.7" stands for every 2.7.x; "2" for every 2.x.y.
                    let span = match parts {
                        1 => 999_999,
                        2 => 999,
                        _ => 0,
                    };
                    let (first, last) = (key, key + span);
                    let (lo, hi) = match filter.op {
                        Op::Below => (i64::MIN, first - 1),
                        Op::AtMost => (i64::MIN, last),
                        Op::Above => (last + 1, i64::MAX),
                        Op::AtLeast => (first, i64::MAX),
                        _ => (first, last),
                    };
                    Test::LoWithin(lo, hi)
                }
                None => Test::Never,
            },
        };
        Compiled { field, test }
    }

    /// The things of `kind` on `device`.
    fn of_kind(device: &DeviceFacts, kind: u8) -> &[Thing] {
        device
            .kinds
            .get(usize::from(kind))
            .and_then(|(a, b)| device.things.get(*a as usize..*b as usize))
            .unwrap_or_default()
    }

    /// Whether every test holds for `thing` of `device`.
    fn holds(device: &DeviceFacts, thing: &Thing, tests: &[Compiled]) -> bool {
        tests.iter().all(|c| {
            let range = |(a, b): (u32, u32)| a as usize..b as usize;
            match &c.test {
                Test::Never => false,
                Test::Is(value) => device
                    .texts
                    .get(range(thing.texts))
                    .unwrap_or_default()
                    .iter()
                    .any(|f| f.field == c.field && f.value == *value),
                Test::In(set) => device
                    .texts
                    .get(range(thing.texts))
                    .unwrap_or_default()
                    .iter()
                    .any(|f| {
                        let n = f.value as usize;
                        f.field == c.field
                            && set
                                .get(n / 64)
                                .is_some_and(|word| word & (1 << (n % 64)) != 0)
                    }),
                Test::LoWithin(lo, hi) => device
                    .ranges
                    .get(range(thing.ranges))
                    .unwrap_or_default()
                    .iter()
                    .any(|f| f.field == c.field && (*lo..=*hi).contains(&i64::from(f.lo))),
                Test::Overlaps(lo, hi) => device
                    .ranges
                    .get(range(thing.ranges))
                    .unwrap_or_default()
                    .iter()
                    .any(|f| {
                        f.field == c.field && i64::from(f.lo) <= *hi && i64::from(f.hi) >= *lo
                    }),
            }
        })
    }

    /// Answer `filters` (parsed; at least one). Filters on the first filter's kind of thing must
    /// hold for one thing, which is what is listed; filters on other kinds must each hold for
    /// some thing of theirs on the same device.
    pub fn find(&self, filters: &[Filter], limit: usize) -> Found {
        let lead = filters.first().map_or("system", Filter::thing);
        let mut groups: Vec<(u8, Vec<Compiled>)> = Vec::new();
        for filter in filters {
            let kind = thing_number(filter.thing());
            let compiled = self.compile(filter);
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, list)) => list.push(compiled),
                None => groups.push((kind, vec![compiled])),
            }
        }
        // Cheapest first: a thing has few ranges, several texts, and a set test costs a lookup
        // per text; the first test that fails ends the thing's check.
        for (_, tests) in &mut groups {
            tests.sort_by_key(|c| match c.test {
                Test::Never => 0,
                Test::LoWithin(..) | Test::Overlaps(..) => 1,
                Test::Is(_) => 2,
                Test::In(_) => 3,
            });
        }
        let lead_kind = thing_number(lead);
        let (mut hits, mut devices, mut total) = (Vec::new(), 0u64, 0usize);
        let mut here: Vec<&Thing> = Vec::new();
        for (device_id, device_name) in &self.order {
            let Some(device) = self.devices.get(device_id) else {
                continue;
            };
            here.clear();
            for (kind, tests) in &groups {
                if *kind == lead_kind {
                    here.extend(
                        Self::of_kind(device, lead_kind)
                            .iter()
                            .filter(|t| Self::holds(device, t, tests)),
                    );
                    if here.is_empty() {
                        break;
                    }
                } else if !Self::of_kind(device, *kind)
                    .iter()
                    .any(|t| Self::holds(device, t, tests))
                {
                    here.clear();
                    break;
                }
            }
            if here.is_empty() {
                continue;
            }
            devices += 1;
            total += here.len();
            if hits.len() <= limit {
                let mut keys: Vec<&Arc<str>> = here
                    .iter()
                    .filter_map(|t| self.strings.list.get(t.key as usize))
                    .collect();
                keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                hits.extend(
                    keys.into_iter()
                        .take(limit + 1 - hits.len())
                        .map(|key| Hit {
                            device_id: device_id.clone(),
                            device_name: device_name.clone(),
                            key: key.clone(),
                        }),
                );
            }
        }
        hits.truncate(limit);
        Found {
            hits,
            devices,
            more: total > limit,
        }
    }

    /// Facts and distinct texts held (for the bench and logs).
    pub fn size(&self) -> (usize, usize) {
        let facts = self
            .devices
            .values()
            .map(|d| d.texts.len() + d.ranges.len())
            .sum();
        (facts, self.strings.list.len())
    }
}

/// One organisation's place in the cache.
pub struct Slot {
    pub state: RwLock<OrgIndex>,
    /// Held while the index catches up with the database, so only one search loads.
    pub catching_up: tokio::sync::Mutex<()>,
    used: AtomicU64,
}

impl Slot {
    /// Read the index, even if a panicking reader poisoned the lock (the index is never left
    /// half-written: writers replace whole devices).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, OrgIndex> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, OrgIndex> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The organisations' indexes held in memory.
#[derive(Default)]
pub struct Cache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: AtomicU64,
}

impl Cache {
    /// The organisation's slot, made (and the least recently used dropped past [`MAX_ORGS`]).
    pub fn slot(&self, org_id: &str) -> Arc<Slot> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(org_id) {
            slot.used.store(now, Ordering::Relaxed);
            return slot.clone();
        }
        if slots.len() >= MAX_ORGS {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.used.load(Ordering::Relaxed))
                .map(|(org, _)| org.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        let slot = Arc::new(Slot {
            state: RwLock::new(OrgIndex::default()),
            catching_up: tokio::sync::Mutex::new(()),
            used: AtomicU64::new(now),
        });
        slots.insert(org_id.to_owned(), slot.clone());
        slot
    }

    /// Forget an organisation's index (it is rebuilt whole on its next search).
    pub fn drop_org(&self, org_id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(org_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::facts::Fact;
    use crate::search::record::{encode, inflate, parse};
    use app::search::parse_query;

    fn fact(entity: &str, field: &'static str, value: &str, range: Option<(i64, i64)>) -> Fact {
        Fact {
            entity: entity.to_owned(),
            field,
            value: value.to_owned(),
            range,
        }
    }

    fn device(index: &mut OrgIndex, id: &str, seq: i64, facts: &[Fact]) {
        let raw = inflate(&encode(facts)).unwrap();
        index.put(id, seq, parse(&raw).unwrap());
    }

    fn rule(n: u32, action: &str, source: &str, port: (i64, i64), descr: &str) -> Vec<Fact> {
        let e = format!("rule:{n}");
        vec![
            fact(&e, "rule.action", action, None),
            fact(&e, "rule.source", source, None),
            fact(&e, "rule.port", "", Some(port)),
            fact(&e, "rule.description", descr, None),
        ]
    }

    fn fleet() -> OrgIndex {
        let mut index = OrgIndex::default();
        let mut a = rule(0, "pass", "any", (22, 22), "ssh in");
        a.extend(rule(10, "pass", "any", (0, 65_535), "anything"));
        a.extend(rule(2, "block", "any", (22, 22), "no ssh"));
        a.push(fact(
            "system",
            "pfsense.version",
            "",
            Some((2_007_002, 2_007_002)),
        ));
        a.push(fact("user:bob", "user.name", "bob", None));
        device(&mut index, "d-a", 1, &a);
        let mut b = rule(0, "pass", "10.0.0.0/8", (22, 22), "ssh from inside");
        b.push(fact(
            "system",
            "pfsense.version",
            "",
            Some((2_006_000, 2_006_000)),
        ));
        device(&mut index, "d-b", 2, &b);
        index.set_devices(vec![
            ("d-b".to_owned(), "beta".to_owned()),
            ("d-a".to_owned(), "Alpha".to_owned()),
            ("d-c".to_owned(), "gamma (no facts yet)".to_owned()),
        ]);
        index
    }

    fn keys(found: &Found) -> Vec<String> {
        found
            .hits
            .iter()
            .map(|h| format!("{}/{}", h.device_name, h.key))
            .collect()
    }

    fn find(index: &OrgIndex, query: &str) -> Found {
        index.find(&parse_query(query).unwrap(), 200)
    }

    #[test]
    fn filters_on_one_kind_hold_for_one_thing_and_other_kinds_on_the_device() {
        let index = fleet();
        let found = find(
            &index,
            "rule.action is pass\nrule.source is any\nrule.port is 22",
        );
        assert_eq!(
            keys(&found),
            ["Alpha/rule:0", "Alpha/rule:10"],
            "a rule with no port covers 22; the block rule is out"
        );
        assert_eq!(found.devices, 1);
        let found = find(&index, "rule.port is 22\npfsense.version < 2.7");
        assert_eq!(keys(&found), ["beta/rule:0"]);
        let found = find(&index, "user.name is bob\nrule.action is block");
        assert_eq!(keys(&found), ["Alpha/user:bob"]);
        assert!(find(&index, "user.name is alice").hits.is_empty());
        assert!(
            find(&index, "alias.name is web").hits.is_empty(),
            "a field nobody has"
        );
    }

    #[test]
    fn text_contains_versions_and_ranges_compare_as_they_should() {
        let index = fleet();
        assert_eq!(
            keys(&find(&index, "rule.description contains ssh")),
            ["Alpha/rule:0", "Alpha/rule:2", "beta/rule:0"],
            "listed by device name, then rule number as a number"
        );
        assert_eq!(
            keys(&find(&index, "pfsense.version is 2.7")),
            ["Alpha/system"]
        );
        assert_eq!(keys(&find(&index, "pfsense.version >= 2.6")).len(), 2);
        assert_eq!(
            keys(&find(&index, "pfsense.version > 2.6")),
            ["Alpha/system"]
        );
        assert_eq!(
            keys(&find(&index, "pfsense.version <= 2.6")),
            ["beta/system"]
        );
        assert_eq!(keys(&find(&index, "rule.port is 20-21")), ["Alpha/rule:10"]);
        assert!(
            find(&index, "rule.description contains pass")
                .hits
                .is_empty(),
            "contains looks at the field asked, not at other fields' texts"
        );
    }

    #[test]
    fn the_first_page_is_cut_and_the_rest_counted() {
        let index = fleet();
        let found = index.find(&parse_query("rule.source is any").unwrap(), 2);
        assert_eq!(keys(&found), ["Alpha/rule:0", "Alpha/rule:2"]);
        assert!(found.more);
        assert_eq!(found.devices, 1);
    }

    #[test]
    fn replaced_and_removed_devices_leave_no_facts_behind() {
        let mut index = fleet();
        device(
            &mut index,
            "d-a",
            3,
            &rule(0, "reject", "lan", (80, 80), "web"),
        );
        assert_eq!(index.max_seq, 3);
        assert!(find(&index, "user.name is bob").hits.is_empty());
        assert_eq!(
            keys(&find(&index, "rule.action is reject")),
            ["Alpha/rule:0"]
        );
        index.retain(&["d-a".to_owned()]);
        assert!(find(&index, "pfsense.version < 2.7").hits.is_empty());
        assert_eq!(index.devices_held(), 1);
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_organisations() {
        let cache = Cache::default();
        let first = cache.slot("org-0");
        for n in 1..=MAX_ORGS {
            cache.slot(&format!("org-{n}"));
        }
        assert!(
            !Arc::ptr_eq(&first, &cache.slot("org-0")),
            "the oldest was dropped"
        );
        assert!(cache.slots.lock().unwrap().len() <= MAX_ORGS);
    }
}
