//! The R2/R3 `qubes.xml` of formats 3 and 2 (FORMAT.md §7.3): a `QubesVmCollection` whose
//! children are named by class (`QubesAppVm`, `QubesTemplateVm`, …) and hold everything in
//! attributes. A qube is in the backup iff `backup_content="True"`; its files are stored under
//! `backup_path` (`vm5`, or `appvms/work` in an unencrypted backup, `dom0-home/user` for dom0),
//! written **without** a trailing slash. R3 never clears `backup_path`, so a qube left out keeps
//! a stale one (or `""`): only `backup_content` decides.
//!
//! Authenticated by its piece's HMAC, but written by a dom0 that may since have been
//! compromised: parsed with roxmltree (DTDs refused, so no entity expands), sizes capped
//! first, names and paths checked before anything is built from them.

use crate::error::{Check, Error, Result};
use crate::format::qubes_xml::{valid_qube_name, MAX_XML};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegacyQube {
    pub name: String,
    /// In R4 terms: `AppVM`, `TemplateVM`, `StandaloneVM`, `AdminVM`, `NetVM`, `ProxyVM`,
    /// `DispVM` (HVMs map to the same classes; `hvm` says so).
    pub class: String,
    /// The R3 element name (`QubesAppVm`, `QubesHVm`, …).
    pub element: String,
    pub hvm: bool,
    pub qid: u32,
    /// Label name (`red`, `blue`, ...).
    pub label: Option<String>,
    /// The template's name (resolved from `template_qid`).
    pub template: Option<String>,
    /// Where its pieces are: `vm5`, `appvms/work`, `dom0-home/user` (no trailing slash).
    pub backup_path: String,
    /// Qubes' estimate of the data size (`backup_size`).
    pub size: u64,
}

fn tampered(why: impl Into<String>) -> Error {
    Error::tampered("qubes.xml", Check::QubesXml(why.into()))
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// (R4 class, HVM) of an R3 element; `template_qid="none"` makes an AppVM standalone.
fn class_of(element: &str, standalone: bool) -> Option<(&'static str, bool)> {
    Some(match element {
        "QubesAdminVm" => ("AdminVM", false),
        "QubesTemplateVm" => ("TemplateVM", false),
        "QubesTemplateHVm" => ("TemplateVM", true),
        "QubesAppVm" if standalone => ("StandaloneVM", false),
        "QubesAppVm" => ("AppVM", false),
        "QubesHVm" if standalone => ("StandaloneVM", true),
        "QubesHVm" => ("AppVM", true),
        "QubesNetVm" => ("NetVM", false),
        "QubesProxyVm" => ("ProxyVM", false),
        "QubesDisposableVm" => ("DispVM", false),
        _ => return None,
    })
}

/// A `backup_path` is a short relative path of plain components (it names outer members).
fn valid_backup_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !path.starts_with('/')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Lists the qubes whose data is in the backup (`backup_content` true), in document order.
pub fn parse(xml: &[u8]) -> Result<Vec<LegacyQube>> {
    if xml.len() as u64 > MAX_XML {
        return Err(Error::unsupported(format!("a qubes.xml of {} bytes (at most {MAX_XML})", xml.len())));
    }
    let text = std::str::from_utf8(xml).map_err(|_| tampered("UTF-8 text"))?;
    // roxmltree's defaults refuse any DOCTYPE, so no entity can be declared or expanded.
    let doc = roxmltree::Document::parse(text).map_err(|e| tampered(format!("XML syntax ({e})")))?;
    let root = doc.root_element();
    if root.has_tag_name("qubes") {
        return Err(Error::unsupported("an R4 qubes.xml in a format 3/2 backup"));
    }
    if !root.has_tag_name("QubesVmCollection") {
        return Err(tampered("root element (QubesVmCollection expected)"));
    }
    let elements: Vec<roxmltree::Node> = root.children().filter(|c| c.is_element()).collect();
    // qid → name, to name templates.
    let names: std::collections::HashMap<&str, &str> =
        elements.iter().filter_map(|e| Some((e.attribute("qid")?, e.attribute("name")?))).collect();
    let mut qubes: Vec<LegacyQube> = Vec::new();
    for e in &elements {
        if !e.attribute("backup_content").is_some_and(truthy) {
            continue;
        }
        let element = e.tag_name().name();
        let name = e.attribute("name").unwrap_or("");
        if !valid_qube_name(name) {
            return Err(tampered(format!("qube name {name:?}")));
        }
        let template_qid = e.attribute("template_qid").unwrap_or("none");
        let standalone = template_qid == "none";
        let (class, hvm) =
            class_of(element, standalone).ok_or_else(|| tampered(format!("element <{element}> of {name}")))?;
        let qid = e.attribute("qid").and_then(|q| q.parse().ok()).ok_or_else(|| tampered(format!("qid of {name}")))?;
        let path = e.attribute("backup_path").unwrap_or("").trim_end_matches('/');
        if !valid_backup_path(path) {
            return Err(tampered(format!("backup_path {path:?} of {name}")));
        }
        if class == "AdminVM" {
            // dom0's home is the only tree: `dom0-home/<user>`, the user a plain name.
            let user = path.strip_prefix("dom0-home/").filter(|u| !u.contains('/'));
            if name != "dom0" || user.is_none() {
                return Err(tampered(format!("backup_path {path:?} of dom0 (dom0-home/<user> expected)")));
            }
        } else if path.starts_with("dom0-home") {
            return Err(tampered(format!("backup_path {path:?} of {name}")));
        }
        let size = match e.attribute("backup_size") {
            Some(s) if !s.is_empty() => s.parse().map_err(|_| tampered(format!("backup_size of {name}")))?,
            _ => 0,
        };
        let template = if standalone { None } else { names.get(template_qid).map(|t| t.to_string()) };
        if let Some(other) = qubes.iter().find(|q| q.name == name || q.qid == qid) {
            return Err(tampered(format!("qube {} listed twice", other.name)));
        }
        // Two qubes whose paths nest would share pieces.
        if let Some(other) = qubes.iter().find(|q| super::pieces::under(&q.backup_path, path) || super::pieces::under(path, &q.backup_path)) {
            return Err(tampered(format!("backup_path {path:?} of {name} overlaps that of {}", other.name)));
        }
        qubes.push(LegacyQube {
            name: name.to_string(),
            class: class.to_string(),
            element: element.to_string(),
            hvm,
            qid,
            label: e.attribute("label").map(String::from),
            template,
            backup_path: path.to_string(),
            size,
        });
    }
    Ok(qubes)
}

#[cfg(test)]
mod tests;
