//! The XML layer both REFI-QDA files share: an indenting writer over quick-xml that escapes and
//! sanitises every value, and a small element tree built from quick-xml's namespace-aware reader.
//!
//! Writer promises: UTF-8, no BOM, two-space indentation, `\n` line ends, a trailing newline;
//! attribute values escape `\n`, `\r` and `\t` (so they survive attribute normalisation) and text
//! escapes `\r`; characters XML 1.0 forbids become U+FFFD.

use std::borrow::Cow;
use std::path::Path;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use super::QdaError;

/// Builds one XML document in memory.
pub(super) struct XmlOut {
    writer: quick_xml::Writer<Vec<u8>>,
}

// Writing into a Vec<u8> cannot fail: the io::Result quick-xml returns is always Ok.
const VEC_WRITE: &str = "writing XML into a Vec<u8> cannot fail";

impl XmlOut {
    /// A document that starts with `<?xml version="1.0" encoding="utf-8"?>`.
    pub(super) fn new() -> XmlOut {
        let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
        writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            .expect(VEC_WRITE);
        XmlOut { writer }
    }

    /// Opens `<name attrs…>`. Attributes with a `None` value are left out.
    pub(super) fn start(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        let element = element_with(name, attrs);
        self.writer
            .write_event(Event::Start(element))
            .expect(VEC_WRITE);
    }

    /// Closes `</name>`.
    pub(super) fn end(&mut self, name: &str) {
        self.writer
            .write_event(Event::End(BytesEnd::new(name)))
            .expect(VEC_WRITE);
    }

    /// Writes `<name attrs…/>`.
    pub(super) fn empty(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        let element = element_with(name, attrs);
        self.writer
            .write_event(Event::Empty(element))
            .expect(VEC_WRITE);
    }

    /// Writes `<name>text</name>` on one line, the text exactly as given (escaped).
    pub(super) fn text_element(&mut self, name: &str, text: &str) {
        let safe = xml_safe(text);
        self.writer
            .create_element(name)
            .write_text_content(BytesText::new(&safe))
            .expect(VEC_WRITE);
    }

    /// The finished document, ending with a newline.
    pub(super) fn finish(self) -> String {
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        // Every piece written came from a &str, so the bytes are UTF-8.
        String::from_utf8(bytes).expect("XML built from &str is UTF-8")
    }
}

fn element_with<'a>(name: &'a str, attrs: &[(&'a str, Option<&str>)]) -> BytesStart<'a> {
    let mut element = BytesStart::new(name);
    for (key, value) in attrs {
        if let Some(value) = value {
            element.push_attribute((*key, xml_safe(value).as_ref()));
        }
    }
    element
}

/// `s` with characters XML 1.0 cannot carry (even escaped) replaced by U+FFFD.
fn xml_safe(s: &str) -> Cow<'_, str> {
    let forbidden = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.chars().any(forbidden) {
        Cow::Owned(
            s.chars()
                .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// One parsed element: its namespace, local name, attributes, children and direct text.
#[derive(Debug, Clone, Default)]
pub(super) struct Element {
    /// The resolved namespace URI ("" when unbound).
    pub namespace: String,
    /// The local name (no prefix).
    pub name: String,
    /// Attributes in document order, values unescaped and normalised.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Text directly inside this element, entity and character references resolved.
    pub text: String,
}

impl Element {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Children called `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses `xml` (the contents of `path`) into its root element.
pub(super) fn parse(xml: &str, path: &Path) -> Result<Element, QdaError> {
    let mut reader = NsReader::from_str(xml);
    let xml_err = |position: u64, source: quick_xml::Error| QdaError::Xml {
        path: path.to_path_buf(),
        position,
        source,
    };
    // Open elements, innermost last; the root is kept when it closes.
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, event) = match reader.read_resolved_event() {
            Ok((ns, ev)) => (namespace_of(ns), ev),
            Err(e) => return Err(xml_err(reader.error_position(), e)),
        };
        let position = reader.buffer_position();
        match event {
            Event::Start(start) => stack.push(open(&start, resolved, position, &xml_err)?),
            Event::Empty(start) => {
                let element = open(&start, resolved, position, &xml_err)?;
                close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                if let Some(element) = stack.pop() {
                    close(element, &mut stack, &mut root);
                }
            }
            Event::Text(text) => push_text(&mut stack, &text.xml10_content()),
            Event::CData(data) => push_text(&mut stack, &data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved_ref = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            xml_err(
                                position,
                                quick_xml::Error::Escape(
                                    quick_xml::escape::EscapeError::UnrecognizedEntity(
                                        0..reference.len(),
                                        reference.to_string(),
                                    ),
                                ),
                            )
                        })?,
                    Err(e) => return Err(xml_err(position, e)),
                };
                push_text(&mut stack, &resolved_ref);
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    root.ok_or_else(|| {
        xml_err(
            reader.buffer_position(),
            quick_xml::Error::Syntax(quick_xml::errors::SyntaxError::UnclosedTag),
        )
    })
}

fn namespace_of(resolved: ResolveResult<'_>) -> String {
    match resolved {
        ResolveResult::Bound(ns) => ns.as_ref().to_string(),
        _ => String::new(),
    }
}

fn open(
    start: &BytesStart<'_>,
    namespace: String,
    position: u64,
    xml_err: &impl Fn(u64, quick_xml::Error) -> QdaError,
) -> Result<Element, QdaError> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| xml_err(position, quick_xml::Error::InvalidAttr(e)))?;
        let key = attr.key.local_name().as_ref().to_string();
        // Namespace declarations are not data.
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| xml_err(position, e))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        namespace,
        name: start.local_name().as_ref().to_string(),
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(current) = stack.last_mut() {
        current.text.push_str(text);
    }
}
