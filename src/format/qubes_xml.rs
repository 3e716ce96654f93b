//! `qubes.xml` (FORMAT.md §7.2): which qubes the backup holds and where their files are.
//! Authenticated, but written by a dom0 that may since have been compromised, so it is
//! parsed with a real XML parser that refuses DTDs (and with them every entity trick),
//! and every value used later is checked where it is used.

use crate::error::{Check, Error, Limit, Result};
use serde::Serialize;
use std::collections::HashMap;

/// The largest qubes.xml accepted (real ones are tens of KiB).
pub const MAX_XML: u64 = 8 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Qube {
    pub name: String,
    pub class: String,
    /// Label name (`red`, `blue`, ...).
    pub label: Option<String>,
    /// Label colour as written by Qubes (`0xcc0000`).
    pub label_color: Option<String>,
    pub template: Option<String>,
    /// Where its files are in the backup: `vm5/` (or `dom0-home/<user>` for dom0).
    pub backup_path: String,
    /// Qubes' estimate of the data size (`backup-size`).
    pub size: u64,
    /// Volumes saved in the backup (`save_on_stop`), as file names: `private.img`.
    pub volumes: Vec<String>,
    /// Their full size as qubes.xml gives it (`size`, holes included; 0 where not given): a
    /// 20 GiB `root.img` may hold 20 MiB of data (`size` above).
    pub volume_bytes: u64,
}

fn tampered(why: impl Into<String>) -> Error {
    Error::tampered("qubes.xml", Check::QubesXml(why.into()))
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// Text children `<parent><tag name="key">value</tag></parent>` as a map.
fn named_values(node: roxmltree::Node, parent: &str, tag: &str) -> HashMap<String, String> {
    node.children()
        .filter(|c| c.has_tag_name(parent))
        .flat_map(|p| p.children().filter(|c| c.has_tag_name(tag)))
        .filter_map(|c| Some((c.attribute("name")?.to_string(), c.text().unwrap_or("").to_string())))
        .collect()
}

/// Qubes' own rule for qube names: they become folder and file names here.
pub fn valid_qube_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 31
}

/// Lists the qubes included in the backup (`backup-content` true), in document order.
pub fn parse(xml: &[u8]) -> Result<Vec<Qube>> {
    if xml.len() as u64 > MAX_XML {
        return Err(Error::over_limit("qubes.xml", Limit::QubesXml, xml.len() as u64, MAX_XML));
    }
    let text = std::str::from_utf8(xml).map_err(|_| tampered("UTF-8 text"))?;
    // roxmltree's defaults refuse any DOCTYPE, so no entity can be declared or expanded.
    let doc = roxmltree::Document::parse(text).map_err(|e| tampered(format!("XML syntax ({e})")))?;
    let root = doc.root_element();
    if root.has_tag_name("QubesVmCollection") {
        return Err(Error::unsupported("a Qubes R3 qubes.xml (backup format 3)"));
    }
    if !root.has_tag_name("qubes") {
        return Err(tampered("root element"));
    }
    let labels: HashMap<&str, (String, Option<String>)> = root
        .children()
        .filter(|c| c.has_tag_name("labels"))
        .flat_map(|l| l.children().filter(|c| c.has_tag_name("label")))
        .filter_map(|l| Some((l.attribute("id")?, (l.text().unwrap_or("").to_string(), l.attribute("color").map(String::from)))))
        .collect();
    let mut qubes = Vec::new();
    let domains = root.children().filter(|c| c.has_tag_name("domains")).flat_map(|d| d.children());
    for domain in domains.filter(|d| d.has_tag_name("domain")) {
        let class = domain.attribute("class").unwrap_or("").to_string();
        let props = named_values(domain, "properties", "property");
        let features = named_values(domain, "features", "feature");
        if !features.get("backup-content").is_some_and(|v| truthy(v)) {
            continue;
        }
        let name = if class == "AdminVM" { "dom0".to_string() } else { props.get("name").cloned().unwrap_or_default() };
        if !valid_qube_name(&name) {
            return Err(tampered(format!("qube name {name:?}")));
        }
        let backup_path = features.get("backup-path").cloned().ok_or_else(|| tampered(format!("backup-path of {name}")))?;
        let size = match features.get("backup-size") {
            Some(s) if !s.is_empty() => s.parse().map_err(|_| tampered(format!("backup-size of {name}")))?,
            _ => 0,
        };
        let (label, label_color) = match props.get("label") {
            Some(id) => match labels.get(id.as_str()) {
                Some((text, color)) => (Some(text.clone()), color.clone()),
                None => (Some(id.clone()), None),
            },
            None => (None, None),
        };
        let saved: Vec<_> = domain
            .children()
            .filter(|c| c.has_tag_name("volume-config"))
            .flat_map(|v| v.children().filter(|c| c.has_tag_name("volume")))
            .filter(|v| v.attribute("save_on_stop").is_some_and(truthy))
            .collect();
        let volumes = saved.iter().filter_map(|v| v.attribute("name")).map(|n| format!("{n}.img")).collect();
        let volume_bytes = saved.iter().filter_map(|v| v.attribute("size")?.parse::<u64>().ok()).fold(0u64, u64::saturating_add);
        if qubes.iter().any(|q: &Qube| q.name == name) {
            return Err(tampered(format!("qube {name} listed twice")));
        }
        qubes.push(Qube { name, class, label, label_color, template: props.get("template").cloned(), backup_path, size, volumes, volume_bytes });
    }
    Ok(qubes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/qubes-r4-sample.xml");

    #[test]
    fn every_included_domain_of_the_qubes_sample_parses() {
        let qubes = parse(SAMPLE.as_bytes()).unwrap();
        let included = SAMPLE.matches(r#"<feature name="backup-content">True</feature>"#).count();
        assert_eq!(qubes.len(), included);
        let d8 = qubes.iter().find(|q| q.name == "test-d8test").unwrap();
        assert_eq!(d8.class, "AppVM");
        assert_eq!(d8.label.as_deref(), Some("gray"));
        assert_eq!(d8.label_color.as_deref(), Some("0x555753"));
        assert_eq!(d8.template.as_deref(), Some("debian-8"));
        assert_eq!(d8.backup_path, "appvms/test-d8test");
        assert_eq!(d8.volumes, vec!["private.img"]);
        assert_eq!(d8.volume_bytes, 2147483648, "the saved volume's size, not the root's or volatile's");
        assert_eq!(d8.size, 20971520);
        assert!(qubes.iter().any(|q| q.name == "dom0" && q.class == "AdminVM"));
    }

    #[test]
    fn a_doctype_is_refused_so_no_entity_expands() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE qubes [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><qubes>&b;</qubes>"#;
        assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
    }

    #[test]
    fn r3_qubes_xml_is_unsupported() {
        assert!(matches!(parse(b"<QubesVmCollection/>"), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn qube_names_that_could_escape_a_folder_are_refused() {
        let xml = r#"<qubes><domains><domain class="AppVM"><properties><property name="name">../evil</property></properties>
            <features><feature name="backup-content">1</feature><feature name="backup-path">vm5/</feature></features></domain></domains></qubes>"#;
        assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
    }
}
