use super::*;

const SAMPLE: &str = include_str!("../../../../tests/fixtures/qubes-r3-sample.xml");

fn one(attrs: &str) -> String {
    format!(r#"<QubesVmCollection default_template="1"><QubesTemplateVm qid="1" name="fedora-23" template_qid="none"/><QubesAppVm qid="5" name="work" template_qid="1" label="red" {attrs}/></QubesVmCollection>"#)
}

#[test]
fn the_real_r3_sample_lists_the_qubes_in_the_backup() {
    let qubes = parse(SAMPLE.as_bytes()).unwrap();
    let names: Vec<&str> = qubes.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dom0",
            "test-work",
            "test-template-clone",
            "test-custom-template-appvm",
            "test-standalonevm",
            "test-testproxy",
            "test-testhvm",
            "test-net"
        ]
    );
    let by = |n: &str| qubes.iter().find(|q| q.name == n).unwrap();
    assert_eq!(by("dom0").class, "AdminVM");
    assert_eq!(by("dom0").backup_path, "dom0-home/user");
    assert_eq!(by("test-work").class, "AppVM");
    assert_eq!(by("test-work").template.as_deref(), Some("fedora-20-x64"));
    assert_eq!(by("test-work").backup_path, "appvms/test-work");
    assert_eq!(by("test-template-clone").class, "TemplateVM");
    assert_eq!(by("test-custom-template-appvm").template.as_deref(), Some("test-template-clone"));
    assert_eq!(by("test-standalonevm").class, "StandaloneVM");
    assert_eq!(by("test-testhvm").class, "StandaloneVM");
    assert!(by("test-testhvm").hvm);
    assert_eq!(by("test-net").class, "NetVM");
    assert_eq!(by("test-testproxy").class, "ProxyVM");
}

#[test]
fn backup_content_decides_not_a_stale_backup_path() {
    assert!(parse(one(r#"backup_content="False" backup_path="vm5""#).as_bytes()).unwrap().is_empty());
    assert!(parse(one(r#"backup_content="False" backup_path="""#).as_bytes()).unwrap().is_empty());
    assert!(parse(one(r#"backup_path="vm5""#).as_bytes()).unwrap().is_empty());
    let q = parse(one(r#"backup_content="True" backup_path="vm5/" backup_size="4096""#).as_bytes()).unwrap();
    assert_eq!(q[0].backup_path, "vm5");
    assert_eq!(q[0].size, 4096);
}

#[test]
fn an_included_qube_needs_a_plain_backup_path() {
    for bad in ["", "/vm5", "vm5/../vm6", "a//b", "./vm5", "dom0-home/user", "vm 5"] {
        let xml = one(&format!(r#"backup_content="True" backup_path="{bad}""#));
        assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })), "{bad:?}");
    }
}

#[test]
fn qube_names_that_could_escape_a_folder_are_refused() {
    let xml = r#"<QubesVmCollection><QubesAppVm qid="5" name="../evil" template_qid="none" backup_content="True" backup_path="vm5"/></QubesVmCollection>"#;
    assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
}

#[test]
fn nested_or_repeated_paths_and_names_are_tampered() {
    let xml = r#"<QubesVmCollection>
        <QubesAppVm qid="5" name="a" template_qid="none" backup_content="True" backup_path="vm5"/>
        <QubesAppVm qid="6" name="b" template_qid="none" backup_content="True" backup_path="vm5/x"/></QubesVmCollection>"#;
    assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
    let xml = r#"<QubesVmCollection>
        <QubesAppVm qid="5" name="a" template_qid="none" backup_content="True" backup_path="vm5"/>
        <QubesAppVm qid="50" name="a" template_qid="none" backup_content="True" backup_path="vm50"/></QubesVmCollection>"#;
    assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
    // vm5 and vm50 do not nest.
    let xml = xml.replace(r#"qid="50" name="a""#, r#"qid="50" name="b""#);
    assert_eq!(parse(xml.as_bytes()).unwrap().len(), 2);
}

#[test]
fn dom0_must_point_at_its_home() {
    let xml = r#"<QubesVmCollection><QubesAdminVm qid="0" name="dom0" template_qid="none" backup_content="True" backup_path="vm5"/></QubesVmCollection>"#;
    assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
}

#[test]
fn a_doctype_is_refused_so_no_entity_expands() {
    let xml = r#"<?xml version="1.0"?><!DOCTYPE QubesVmCollection [<!ENTITY a "aaaa">]><QubesVmCollection>&a;</QubesVmCollection>"#;
    assert!(matches!(parse(xml.as_bytes()), Err(Error::Tampered { .. })));
}

#[test]
fn an_r4_qubes_xml_is_unsupported_here() {
    assert!(matches!(parse(b"<qubes/>"), Err(Error::Unsupported { .. })));
    assert!(matches!(parse(b"<other/>"), Err(Error::Tampered { .. })));
}
