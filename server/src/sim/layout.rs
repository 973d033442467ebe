//! What makes one simulated firewall's configuration unlike the next: VLANs, extra gateways,
//! static routes, NAT (port forwards, outbound rules in hybrid mode, 1:1), separators and a varied
//! number of filter rules — most devices a few dozen, one in ten a few hundred, one in a hundred
//! between 1,000 and 2,000, as real fleets are. Seeded by the fleet seed and the device index, and
//! rendered when the configuration is asked for (never stored), so 10,000 devices cost no memory
//! for it.

use std::fmt::Write as _;

use super::model::derive;

/// The counts of one device's generated sections, and the seed their contents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    seed: u64,
    pub rules: u32,
    pub vlans: u32,
    pub gateways: u32,
    pub routes: u32,
    pub forwards: u32,
    pub outbound: u32,
    pub one_to_one: u32,
    pub separators: u32,
}

/// splitmix64: a small, fast, deterministic generator (not for secrets).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }
}

const SERVICES: [(&str, &str); 8] = [
    ("tcp", "443"),
    ("tcp", "80"),
    ("tcp", "22"),
    ("udp", "53"),
    ("tcp", "3389"),
    ("udp", "1194"),
    ("tcp", "8000-8080"),
    ("tcp", "25"),
];

impl Layout {
    pub fn new(seed: u64, index: u32) -> Self {
        let noise = derive(seed, index, "layout");
        let mut rng = Rng(noise);
        let rules = match noise % 100 {
            0 => 1_000 + rng.below(1_001),
            1..=10 => 100 + rng.below(200),
            _ => rng.below(40),
        };
        let small = |rng: &mut Rng, n: u64| u32::try_from(rng.below(n)).unwrap_or(0);
        Self {
            seed: rng.next(),
            rules: u32::try_from(rules).unwrap_or(0),
            vlans: small(&mut rng, 7),
            gateways: small(&mut rng, 3),
            routes: small(&mut rng, 5),
            forwards: small(&mut rng, 9),
            outbound: small(&mut rng, 4),
            one_to_one: small(&mut rng, 3),
            separators: small(&mut rng, 4),
        }
    }

    fn rng(&self, section: u64) -> Rng {
        Rng(self.seed ^ section.wrapping_mul(0xA24B_AED4_963E_E407))
    }

    /// The VLAN interfaces' assignments (opt2, opt3, …), inside `<interfaces>`.
    pub fn write_vlan_interfaces(&self, x: &mut String, index: u32) {
        for v in 0..self.vlans {
            let tag = 10 + v * 10;
            let _ = writeln!(x, "\t\t<opt{}>", v + 2);
            let _ = writeln!(x, "\t\t\t<enable></enable>");
            let _ = writeln!(x, "\t\t\t<if>igb1.{tag}</if>");
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[VLAN{tag}]]></descr>");
            let _ = writeln!(x, "\t\t\t<ipaddr>10.{}.{tag}.1</ipaddr>", 100 + index % 150);
            let _ = writeln!(x, "\t\t\t<subnet>24</subnet>");
            let _ = writeln!(x, "\t\t</opt{}>", v + 2);
        }
    }

    /// `<vlans>`: 802.1Q VLANs on the LAN's device.
    pub fn write_vlans(&self, x: &mut String) {
        if self.vlans == 0 {
            return;
        }
        let names = ["Staff", "Guests", "VoIP", "Cameras", "Servers", "Printers"];
        let _ = writeln!(x, "\t<vlans>");
        for v in 0..self.vlans {
            let tag = 10 + v * 10;
            let name = names.get(v as usize).copied().unwrap_or("Other");
            let _ = writeln!(x, "\t\t<vlan>");
            let _ = writeln!(x, "\t\t\t<if>igb1</if>");
            let _ = writeln!(x, "\t\t\t<tag>{tag}</tag>");
            let _ = writeln!(x, "\t\t\t<pcp></pcp>");
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[{name}]]></descr>");
            let _ = writeln!(x, "\t\t\t<vlanif>igb1.{tag}</vlanif>");
            let _ = writeln!(x, "\t\t</vlan>");
        }
        let _ = writeln!(x, "\t</vlans>");
    }

    /// Extra `<gateway_item>`s (a second uplink on the DMZ), inside `<gateways>`.
    pub fn write_gateways(&self, x: &mut String, index: u32) {
        for g in 0..self.gateways {
            let _ = writeln!(x, "\t\t<gateway_item>");
            let _ = writeln!(x, "\t\t\t<interface>opt1</interface>");
            let _ = writeln!(
                x,
                "\t\t\t<gateway>172.16.{}.{}</gateway>",
                index % 256,
                250 - g
            );
            let _ = writeln!(x, "\t\t\t<name>UPLINK{}</name>", g + 2);
            let _ = writeln!(x, "\t\t\t<weight>1</weight>");
            let _ = writeln!(x, "\t\t\t<ipprotocol>inet</ipprotocol>");
            let _ = writeln!(
                x,
                "\t\t\t<descr><![CDATA[Backup uplink {}]]></descr>",
                g + 2
            );
            let _ = writeln!(x, "\t\t</gateway_item>");
        }
    }

    /// `<staticroutes>`.
    pub fn write_routes(&self, x: &mut String) {
        if self.routes == 0 {
            return;
        }
        let mut rng = self.rng(1);
        let _ = writeln!(x, "\t<staticroutes>");
        for r in 0..self.routes {
            let _ = writeln!(x, "\t\t<route>");
            let _ = writeln!(
                x,
                "\t\t\t<network>192.168.{}.0/24</network>",
                100 + rng.below(100)
            );
            let _ = writeln!(x, "\t\t\t<gateway>WAN_GW</gateway>");
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[Branch {}]]></descr>", r + 1);
            let _ = writeln!(x, "\t\t</route>");
        }
        let _ = writeln!(x, "\t</staticroutes>");
    }

    /// `<nat>`: outbound (hybrid when it has rules), port forwards and 1:1 mappings.
    pub fn write_nat(&self, x: &mut String, index: u32) {
        let mut rng = self.rng(2);
        let _ = writeln!(x, "\t<nat>");
        let _ = writeln!(x, "\t\t<outbound>");
        let mode = if self.outbound == 0 {
            "automatic"
        } else {
            "hybrid"
        };
        let _ = writeln!(x, "\t\t\t<mode>{mode}</mode>");
        for o in 0..self.outbound {
            let _ = writeln!(x, "\t\t\t<rule>");
            let _ = writeln!(x, "\t\t\t\t<interface>wan</interface>");
            let _ = writeln!(
                x,
                "\t\t\t\t<source><network>10.{}.{}.0/24</network></source>",
                index / 256 % 256,
                index % 256
            );
            let _ = writeln!(x, "\t\t\t\t<destination><any></any></destination>");
            if o % 2 == 1 {
                let _ = writeln!(x, "\t\t\t\t<nonat></nonat>");
            }
            let _ = writeln!(x, "\t\t\t\t<descr><![CDATA[Outbound {}]]></descr>", o + 1);
            let _ = writeln!(x, "\t\t\t</rule>");
        }
        let _ = writeln!(x, "\t\t</outbound>");
        for f in 0..self.forwards {
            let (protocol, port) = SERVICES[usize::try_from(rng.below(8)).unwrap_or(0)];
            let _ = writeln!(x, "\t\t<rule>");
            let _ = writeln!(x, "\t\t\t<source><any></any></source>");
            let _ = writeln!(
                x,
                "\t\t\t<destination><network>wanip</network><port>{}</port></destination>",
                port
            );
            let _ = writeln!(x, "\t\t\t<ipprotocol>inet</ipprotocol>");
            let _ = writeln!(x, "\t\t\t<protocol>{protocol}</protocol>");
            let _ = writeln!(
                x,
                "\t\t\t<target>172.16.{}.{}</target>",
                index % 256,
                10 + f
            );
            let _ = writeln!(
                x,
                "\t\t\t<local-port>{}</local-port>",
                port.split('-').next().unwrap_or(port)
            );
            let _ = writeln!(x, "\t\t\t<interface>wan</interface>");
            let _ = writeln!(
                x,
                "\t\t\t<descr><![CDATA[Forward {} to the DMZ]]></descr>",
                f + 1
            );
            let _ = writeln!(
                x,
                "\t\t\t<associated-rule-id>nat_{index:x}_{f}</associated-rule-id>"
            );
            let _ = writeln!(x, "\t\t</rule>");
        }
        for o in 0..self.one_to_one {
            let _ = writeln!(x, "\t\t<onetoone>");
            let _ = writeln!(x, "\t\t\t<interface>wan</interface>");
            let _ = writeln!(
                x,
                "\t\t\t<external>198.19.{}.{}</external>",
                index % 256,
                10 + o
            );
            let _ = writeln!(
                x,
                "\t\t\t<source><address>172.16.{}.{}</address></source>",
                index % 256,
                100 + o
            );
            let _ = writeln!(x, "\t\t\t<destination><any></any></destination>");
            let _ = writeln!(x, "\t\t\t<descr><![CDATA[Server {}]]></descr>", o + 1);
            let _ = writeln!(x, "\t\t</onetoone>");
        }
        let _ = writeln!(x, "\t</nat>");
    }

    /// The generated filter rules (after the device's basic ones), inside `<filter>`.
    pub fn write_rules(&self, x: &mut String) {
        let mut rng = self.rng(3);
        let interfaces: Vec<String> = ["lan", "wan", "opt1"]
            .into_iter()
            .map(str::to_owned)
            .chain((0..self.vlans).map(|v| format!("opt{}", v + 2)))
            .collect();
        let interface_names: Vec<&str> = interfaces.iter().map(String::as_str).collect();
        for r in 0..self.rules {
            let (protocol, port) = SERVICES[usize::try_from(rng.below(8)).unwrap_or(0)];
            let action = rng.pick(&["pass", "pass", "pass", "block", "reject"]);
            let interface = rng.pick(&interface_names);
            let _ = writeln!(x, "\t\t<rule>");
            let _ = writeln!(
                x,
                "\t\t\t<tracker>{}</tracker>",
                1_100_000_000 + u64::from(r)
            );
            let _ = writeln!(x, "\t\t\t<type>{action}</type>");
            let _ = writeln!(x, "\t\t\t<interface>{interface}</interface>");
            let _ = writeln!(x, "\t\t\t<ipprotocol>inet</ipprotocol>");
            let _ = writeln!(x, "\t\t\t<protocol>{protocol}</protocol>");
            match rng.below(3) {
                0 => {
                    let _ = writeln!(x, "\t\t\t<source><any></any></source>");
                }
                1 => {
                    let _ = writeln!(x, "\t\t\t<source><network>{interface}</network></source>");
                }
                _ => {
                    let _ = writeln!(
                        x,
                        "\t\t\t<source><address>10.{}.{}.0/24</address></source>",
                        rng.below(256),
                        rng.below(256)
                    );
                }
            }
            let _ = writeln!(
                x,
                "\t\t\t<destination><address>172.16.{}.{}</address><port>{port}</port></destination>",
                rng.below(256),
                rng.below(254) + 1
            );
            if rng.below(10) == 0 {
                let _ = writeln!(x, "\t\t\t<disabled></disabled>");
            }
            if action != "pass" {
                let _ = writeln!(x, "\t\t\t<log></log>");
            }
            let _ = writeln!(
                x,
                "\t\t\t<descr><![CDATA[Rule {} ({protocol}/{port})]]></descr>",
                r + 1
            );
            let _ = writeln!(x, "\t\t</rule>");
        }
        if self.separators > 0 {
            let _ = writeln!(x, "\t\t<separator>");
            let _ = writeln!(x, "\t\t\t<lan>");
            for s in 0..self.separators {
                let _ = writeln!(x, "\t\t\t\t<sep{s}>");
                let _ = writeln!(x, "\t\t\t\t\t<row>fr{}</row>", s * 3);
                let _ = writeln!(x, "\t\t\t\t\t<text><![CDATA[Section {}]]></text>", s + 1);
                let _ = writeln!(x, "\t\t\t\t\t<color>bg-info</color>");
                let _ = writeln!(x, "\t\t\t\t\t<if>lan</if>");
                let _ = writeln!(x, "\t\t\t\t</sep{s}>");
            }
            let _ = writeln!(x, "\t\t\t</lan>");
            let _ = writeln!(x, "\t\t</separator>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_vary_and_some_devices_are_large() {
        let layouts: Vec<Layout> = (0..2_000).map(|i| Layout::new(1, i)).collect();
        let large = layouts.iter().filter(|l| l.rules >= 1_000).count();
        assert!(
            (5..=60).contains(&large),
            "{large} devices with 1,000+ rules"
        );
        assert!(layouts.iter().all(|l| l.rules <= 2_000));
        assert!(layouts
            .iter()
            .any(|l| l.vlans > 0 && l.forwards > 0 && l.separators > 0));
        assert!(layouts.iter().any(|l| l.vlans == 0 && l.forwards == 0));
        assert_eq!(Layout::new(1, 7), Layout::new(1, 7));
    }
}
