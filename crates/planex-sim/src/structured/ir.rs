//! The compiled form of a schema: a graph of nodes (one per schema location, so a recursive
//! `$ref` is an edge back to an earlier node), each a list of alternatives to choose from.
//!
//! Key decision: every constraint is checked and normalised once when compiling (bounds made
//! inclusive, properties sorted by name), so generation only draws and never re-reads JSON.

use serde_json::Value;

pub use super::numbers::Bounds;
use super::pattern::Pattern;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// A schema location: the alternatives an instance may take (none: nothing is valid).
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// What an instance may be; one is drawn.
    pub alts: Vec<Alt>,
}

/// One way to satisfy a node.
#[derive(Clone, Debug)]
pub enum Alt {
    /// One of these values (`enum` or `const`).
    Literal(Vec<Value>),
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// An integer within the bounds.
    Integer(Bounds),
    /// A number within the bounds.
    Number(Bounds),
    /// A string.
    String(StringSpec),
    /// An array.
    Array(ArraySpec),
    /// An object.
    Object(ObjectSpec),
    /// Whatever the node says (an `anyOf` branch or a `$ref` target).
    Node(NodeId),
    /// Any value (`{}` or `true`, lenient mode only).
    Any,
}

/// The known string `format`s, each generated as a fixed-shape value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RFC 3339 date-time.
    DateTime,
    /// RFC 3339 full-date.
    Date,
    /// RFC 3339 full-time.
    Time,
    /// ISO 8601 duration.
    Duration,
    /// An e-mail address.
    Email,
    /// A DNS host name.
    Hostname,
    /// A dotted IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A UUID.
    Uuid,
    /// An absolute URI.
    Uri,
}

impl Format {
    /// The format named `name`, if known.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "date-time" => Format::DateTime,
            "date" => Format::Date,
            "time" => Format::Time,
            "duration" => Format::Duration,
            "email" => Format::Email,
            "hostname" => Format::Hostname,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "uuid" => Format::Uuid,
            "uri" => Format::Uri,
            _ => return None,
        })
    }
}

/// What a string must look like.
#[derive(Clone, Debug, Default)]
pub struct StringSpec {
    /// `minLength` in characters.
    pub min: u64,
    /// `maxLength` in characters.
    pub max: Option<u64>,
    /// A known `format`.
    pub format: Option<Format>,
    /// A `pattern` the generator can honour.
    pub pattern: Option<Pattern>,
}

/// What an array must look like.
#[derive(Clone, Debug)]
pub struct ArraySpec {
    /// The item node (`None`: any items).
    pub items: Option<NodeId>,
    /// `minItems`.
    pub min: u64,
    /// `maxItems`.
    pub max: Option<u64>,
}

/// One declared property.
#[derive(Clone, Debug)]
pub struct Property {
    /// Its name.
    pub name: String,
    /// Its schema.
    pub node: NodeId,
    /// Whether it is in `required`.
    pub required: bool,
}

/// What an object must look like.
#[derive(Clone, Debug, Default)]
pub struct ObjectSpec {
    /// Properties sorted by name (required names not declared come last, in `required` order).
    pub properties: Vec<Property>,
}

/// All nodes of one schema and its root.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The nodes; `$ref`s point into this list.
    pub nodes: Vec<Node>,
    /// The node of the whole schema.
    pub root: NodeId,
}
