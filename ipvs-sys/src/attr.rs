//! Attribute plumbing on top of netlink-packet-core: [`Attr`] is one
//! attribute to emit (through the crate's `Nla` trait, which supplies the
//! header and the 4-byte padding), [`Table`] is the decoded view of one
//! attribute set, built with `NlasIterator` the way the kernel's
//! `nla_parse` does it: last occurrence wins, unknown types are ignored.

use netlink_packet_core::{Emitable, NLA_HEADER_SIZE, Nla, NlasIterator};

use crate::Error;

/// The payload of one attribute, with its wire representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    U8(u8),
    /// Host byte order (`nla_put_u16`).
    U16(u16),
    /// Network byte order (`nla_put_be16`).
    Be16(u16),
    /// Host byte order (`nla_put_u32`).
    U32(u32),
    /// Host byte order (`nla_put_u64`).
    U64(u64),
    /// Raw bytes (`nla_put`).
    Bytes(Vec<u8>),
    /// `nla_put_string`: the bytes plus a terminating NUL.
    Str(String),
    /// A nested attribute set (no `NLA_F_NESTED` flag, as the kernel's own
    /// `nla_nest_start_noflag` and ipvsadm do).
    Nested(Vec<Attr>),
}

/// One attribute to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    kind: u16,
    value: Value,
}

impl Attr {
    pub(crate) fn new(kind: u16, value: Value) -> Self {
        Attr { kind, value }
    }
    pub(crate) fn u8(kind: u16, v: u8) -> Self {
        Attr::new(kind, Value::U8(v))
    }
    pub(crate) fn u16(kind: u16, v: u16) -> Self {
        Attr::new(kind, Value::U16(v))
    }
    pub(crate) fn be16(kind: u16, v: u16) -> Self {
        Attr::new(kind, Value::Be16(v))
    }
    pub(crate) fn u32(kind: u16, v: u32) -> Self {
        Attr::new(kind, Value::U32(v))
    }
    pub(crate) fn u64(kind: u16, v: u64) -> Self {
        Attr::new(kind, Value::U64(v))
    }
    pub(crate) fn bytes(kind: u16, v: Vec<u8>) -> Self {
        Attr::new(kind, Value::Bytes(v))
    }
    pub(crate) fn string(kind: u16, v: &str) -> Self {
        Attr::new(kind, Value::Str(v.to_owned()))
    }
    pub(crate) fn nested(kind: u16, v: Vec<Attr>) -> Self {
        Attr::new(kind, Value::Nested(v))
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match &self.value {
            Value::U8(_) => 1,
            Value::U16(_) | Value::Be16(_) => 2,
            Value::U32(_) => 4,
            Value::U64(_) => 8,
            Value::Bytes(b) => b.len(),
            Value::Str(s) => s.len() + 1,
            Value::Nested(attrs) => attrs.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        self.kind
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match &self.value {
            Value::U8(v) => buffer[0] = *v,
            Value::U16(v) => buffer[..2].copy_from_slice(&v.to_ne_bytes()),
            Value::Be16(v) => buffer[..2].copy_from_slice(&v.to_be_bytes()),
            Value::U32(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Value::U64(v) => buffer[..8].copy_from_slice(&v.to_ne_bytes()),
            Value::Bytes(b) => buffer[..b.len()].copy_from_slice(b),
            Value::Str(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Value::Nested(attrs) => attrs.as_slice().emit(buffer),
        }
    }
}

/// The attributes of one set, indexed by type, as `nla_parse` fills its
/// `attrs[]` array.
pub(crate) struct Table<'a> {
    scope: &'static str,
    names: &'static [&'static str],
    slots: Vec<Option<&'a [u8]>>,
}

impl<'a> Table<'a> {
    /// Walks `payload`; `names[t]` is the name of attribute type `t`, and
    /// types at or beyond `names.len()` are ignored.
    pub(crate) fn parse(
        scope: &'static str,
        names: &'static [&'static str],
        payload: &'a [u8],
    ) -> Result<Self, Error> {
        let mut slots = vec![None; names.len()];
        for nla in NlasIterator::new(payload) {
            let nla = nla.map_err(|e| Error::Malformed {
                scope,
                reason: e.to_string(),
            })?;
            let kind = usize::from(nla.kind());
            let len = usize::from(nla.length());
            let raw: &'a [u8] = nla.into_inner();
            let value = raw
                .get(NLA_HEADER_SIZE..len)
                .ok_or_else(|| Error::Malformed {
                    scope,
                    reason: format!("attribute length {len} runs past the buffer"),
                })?;
            if let Some(slot) = slots.get_mut(kind) {
                *slot = Some(value);
            }
        }
        Ok(Table {
            scope,
            names,
            slots,
        })
    }

    pub(crate) fn name(&self, kind: u16) -> &'static str {
        self.names.get(usize::from(kind)).copied().unwrap_or("?")
    }

    /// The raw value of attribute `kind`, if present.
    pub(crate) fn raw(&self, kind: u16) -> Option<&'a [u8]> {
        self.slots.get(usize::from(kind)).copied().flatten()
    }

    pub(crate) fn has(&self, kind: u16) -> bool {
        self.raw(kind).is_some()
    }

    pub(crate) fn missing(&self, kind: u16) -> Error {
        Error::Missing {
            scope: self.scope,
            attr: self.name(kind),
        }
    }

    /// The raw value of attribute `kind`, or a "missing" error.
    pub(crate) fn required(&self, kind: u16) -> Result<&'a [u8], Error> {
        self.raw(kind).ok_or_else(|| self.missing(kind))
    }

    fn fixed<const N: usize>(&self, kind: u16) -> Result<Option<[u8; N]>, Error> {
        match self.raw(kind) {
            None => Ok(None),
            Some(v) => <[u8; N]>::try_from(v)
                .map(Some)
                .map_err(|_| Error::BadLength {
                    scope: self.scope,
                    attr: self.name(kind),
                    expected: N,
                    got: v.len(),
                }),
        }
    }

    pub(crate) fn u8(&self, kind: u16) -> Result<Option<u8>, Error> {
        Ok(self.fixed::<1>(kind)?.map(|[b]| b))
    }
    pub(crate) fn u16(&self, kind: u16) -> Result<Option<u16>, Error> {
        Ok(self.fixed::<2>(kind)?.map(u16::from_ne_bytes))
    }
    pub(crate) fn be16(&self, kind: u16) -> Result<Option<u16>, Error> {
        Ok(self.fixed::<2>(kind)?.map(u16::from_be_bytes))
    }
    pub(crate) fn u32(&self, kind: u16) -> Result<Option<u32>, Error> {
        Ok(self.fixed::<4>(kind)?.map(u32::from_ne_bytes))
    }
    pub(crate) fn u64(&self, kind: u16) -> Result<Option<u64>, Error> {
        Ok(self.fixed::<8>(kind)?.map(u64::from_ne_bytes))
    }
    pub(crate) fn array<const N: usize>(&self, kind: u16) -> Result<Option<[u8; N]>, Error> {
        self.fixed::<N>(kind)
    }

    /// A NUL-terminated string: everything up to the first NUL (or the
    /// whole value if it has none), which must be UTF-8.
    pub(crate) fn string(&self, kind: u16) -> Result<Option<String>, Error> {
        match self.raw(kind) {
            None => Ok(None),
            Some(v) => {
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                let text = v.get(..end).unwrap_or_default();
                std::str::from_utf8(text)
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| Error::BadString {
                        scope: self.scope,
                        attr: self.name(kind),
                    })
            }
        }
    }

    pub(crate) fn req_u16(&self, kind: u16) -> Result<u16, Error> {
        self.u16(kind)?.ok_or_else(|| self.missing(kind))
    }
    pub(crate) fn req_be16(&self, kind: u16) -> Result<u16, Error> {
        self.be16(kind)?.ok_or_else(|| self.missing(kind))
    }
    pub(crate) fn req_u32(&self, kind: u16) -> Result<u32, Error> {
        self.u32(kind)?.ok_or_else(|| self.missing(kind))
    }
    pub(crate) fn req_string(&self, kind: u16) -> Result<String, Error> {
        self.string(kind)?.ok_or_else(|| self.missing(kind))
    }
}
