//! A parsed query as SQL over `config_facts`. Filters are grouped by the kind of thing they are
//! about; the first filter's group is what results list (rules, aliases…), and within a group
//! every filter must hold for the same thing. The most selective filter of that group leads
//! (its index range is the smallest), the others are probes by (device, thing, field). Filters
//! on other kinds of thing must hold somewhere on the same device. Values are always bound,
//! never spliced.

use app::search::{port_range, version_parts, FieldKind, Filter, Op};

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// The SQL of the matching (device_id, entity) pairs, with its binds (`$1` is the organisation).
pub struct Matches {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// How selective a filter is likely to be: lower leads (when the database is not asked).
pub fn cost(filter: &Filter) -> u8 {
    match (filter.field.kind, filter.op, filter.field.name) {
        (_, _, "rule.action" | "rule.protocol" | "rule.interface" | "alias.type") => 9,
        (FieldKind::Text, Op::Contains, _) => 7,
        (FieldKind::Port, _, _) => 5,
        (FieldKind::Version, _, _) => 4,
        (_, _, "rule.source" | "rule.destination") => 3,
        _ => 1,
    }
}

struct Builder {
    binds: Vec<Bind>,
}

impl Builder {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len() + 1)
    }

    /// The condition `filter` puts on the fact row `a`.
    fn condition(&mut self, a: &str, filter: &Filter) -> String {
        let field = self.bind(Bind::Text(filter.field.name.to_owned()));
        let test = match filter.field.kind {
            FieldKind::Text => match filter.op {
                Op::Contains => {
                    let pattern = format!(
                        "%{}%",
                        filter
                            .value
                            .replace('!', "!!")
                            .replace('%', "!%")
                            .replace('_', "!_")
                    );
                    format!(
                        "{a}.value LIKE {} ESCAPE '!'",
                        self.bind(Bind::Text(pattern))
                    )
                }
                _ => format!(
                    "{a}.value = {}",
                    self.bind(Bind::Text(filter.value.clone()))
                ),
            },
            FieldKind::Port => {
                let (lo, hi) = port_range(&filter.value).unwrap_or((-1, -1));
                let hi = self.bind(Bind::Int(hi));
                let lo = self.bind(Bind::Int(lo));
                format!("{a}.lo <= {hi} AND {a}.hi >= {lo}")
            }
            FieldKind::Version => {
                let (key, parts) = version_parts(&filter.value).unwrap_or((-1, 3));
                // "2.7" stands for every 2.7.x; "2" for every 2.x.y.
                let span = match parts {
                    1 => 999_999,
                    2 => 999,
                    _ => 0,
                };
                let (first, last) = (key, key + span);
                match filter.op {
                    Op::Below => format!("{a}.lo < {}", self.bind(Bind::Int(first))),
                    Op::AtMost => format!("{a}.lo <= {}", self.bind(Bind::Int(last))),
                    Op::Above => format!("{a}.lo > {}", self.bind(Bind::Int(last))),
                    Op::AtLeast => format!("{a}.lo >= {}", self.bind(Bind::Int(first))),
                    _ => {
                        let first = self.bind(Bind::Int(first));
                        let last = self.bind(Bind::Int(last));
                        format!("{a}.lo >= {first} AND {a}.lo <= {last}")
                    }
                }
            }
        };
        format!("{a}.field = {field} AND {test}")
    }
}

/// Facts a ranking count reads at most: past this a filter is simply "broad".
pub const COUNT_CAP: i64 = 2_000;

/// How many facts of the organisation one filter matches, up to [`COUNT_CAP`] (an index-only
/// scan that stops there): the filter with the fewest leads.
pub fn count(filter: &Filter) -> Matches {
    let mut b = Builder { binds: Vec::new() };
    let condition = b.condition("f", filter);
    Matches {
        sql: format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM config_facts f WHERE f.org_id = $1 AND {condition} \
             LIMIT {COUNT_CAP}) capped"
        ),
        binds: b.binds,
    }
}

/// The matching pairs of `filters` (already parsed, at least one). Within each group, filters
/// lead in the order of `rank` (lower first).
pub fn matches(filters: &[Filter], rank: impl Fn(usize) -> u64) -> Matches {
    let mut b = Builder { binds: Vec::new() };
    let lead_thing = filters.first().map(Filter::thing).unwrap_or("system");
    let mut ranked: Vec<(&str, Vec<(u64, &Filter)>)> = Vec::new();
    for (n, filter) in filters.iter().enumerate() {
        let entry = (rank(n), filter);
        match ranked
            .iter_mut()
            .find(|(thing, _)| *thing == filter.thing())
        {
            Some((_, list)) => list.push(entry),
            None => ranked.push((filter.thing(), vec![entry])),
        }
    }
    let groups: Vec<(&str, Vec<&Filter>)> = ranked
        .into_iter()
        .map(|(thing, mut list)| {
            list.sort_by_key(|(rank, _)| *rank);
            (thing, list.into_iter().map(|(_, f)| f).collect())
        })
        .collect();
    let mut sql = String::new();
    let mut alias_no = 0;
    for (thing, list) in &groups {
        if *thing != lead_thing {
            continue;
        }
        let lead = list[0];
        let condition = b.condition("f", lead);
        sql.push_str(&format!(
            "SELECT DISTINCT f.device_id, f.entity FROM config_facts f WHERE f.org_id = $1 AND {condition}"
        ));
        for other in &list[1..] {
            alias_no += 1;
            let x = format!("x{alias_no}");
            let condition = b.condition(&x, other);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM config_facts {x} WHERE {x}.device_id = f.device_id \
                 AND {x}.entity = f.entity AND {condition})"
            ));
        }
    }
    for (thing, list) in &groups {
        if *thing == lead_thing {
            continue;
        }
        alias_no += 1;
        let g = format!("g{alias_no}");
        let condition = b.condition(&g, list[0]);
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM config_facts {g} WHERE {g}.device_id = f.device_id AND {condition}"
        ));
        for other in &list[1..] {
            alias_no += 1;
            let x = format!("x{alias_no}");
            let condition = b.condition(&x, other);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM config_facts {x} WHERE {x}.device_id = {g}.device_id \
                 AND {x}.entity = {g}.entity AND {condition})"
            ));
        }
        sql.push(')');
    }
    Matches {
        sql,
        binds: b.binds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::search::parse_query;

    #[test]
    fn the_most_selective_filter_leads_and_values_are_bound() {
        let filters = parse_query(
            "rule.action is pass\nrule.source is any\nrule.port is 22\npfsense.version < 2.7\nuser.name is x'; DROP TABLE devices; --",
        )
        .unwrap();
        let m = matches(&filters, |n| u64::from(cost(&filters[n])));
        assert!(m.sql.starts_with("SELECT DISTINCT f.device_id, f.entity FROM config_facts f WHERE f.org_id = $1 AND f.field = $2 AND f.value = $3"), "{}", m.sql);
        assert_eq!(
            m.binds[0],
            Bind::Text("rule.source".to_owned()),
            "the source leads the rule filters"
        );
        assert!(!m.sql.contains("DROP"), "values are bound: {}", m.sql);
        assert_eq!(m.sql.matches("EXISTS").count(), 4);
        assert!(m.binds.contains(&Bind::Int(2_007_000)));
    }
}
