//! Attribute plumbing: [`Writer`] appends attributes to a message buffer,
//! [`Table`] is the decoded view of one attribute set, built with
//! netlink-packet-core's `NlasIterator` the way the kernel's `nla_parse` does
//! it: last occurrence wins, unknown types are ignored.

use netlink_packet_core::{NLA_HEADER_SIZE, NlasIterator};

use crate::Error;

/// Appends attributes in one pass, as the kernel's `nla_put` /
/// `nla_nest_start` / `nla_nest_end` do: a nest's length is patched when it
/// closes. (netlink-packet-core's `Nla` trait wants a tree of values and
/// asks every nest for its length again at each level; building a full
/// table means tens of thousands of messages, so the tree and the repeated
/// walks were most of the encoding cost.)
pub(crate) struct Writer<'a> {
    buf: &'a mut Vec<u8>,
    /// Where the message starts: padding aligns relative to it.
    base: usize,
}

impl<'a> Writer<'a> {
    /// Appends to `buf`; `base` is the offset of the message being written.
    pub(crate) fn new(buf: &'a mut Vec<u8>, base: usize) -> Self {
        Writer { buf, base }
    }

    fn header(&mut self, kind: u16, value_len: usize) {
        // Attribute values here are at most a few hundred bytes.
        let len = (NLA_HEADER_SIZE + value_len) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
    }

    fn pad(&mut self) {
        let padded = (self.buf.len() - self.base).next_multiple_of(4);
        self.buf.resize(self.base + padded, 0);
    }

    /// Raw bytes (`nla_put`).
    pub(crate) fn bytes(&mut self, kind: u16, v: &[u8]) {
        self.header(kind, v.len());
        self.buf.extend_from_slice(v);
        self.pad();
    }
    pub(crate) fn u8(&mut self, kind: u16, v: u8) {
        self.bytes(kind, &[v]);
    }
    /// Host byte order (`nla_put_u16`).
    pub(crate) fn u16(&mut self, kind: u16, v: u16) {
        self.bytes(kind, &v.to_ne_bytes());
    }
    /// Network byte order (`nla_put_be16`).
    pub(crate) fn be16(&mut self, kind: u16, v: u16) {
        self.bytes(kind, &v.to_be_bytes());
    }
    /// Host byte order (`nla_put_u32`).
    pub(crate) fn u32(&mut self, kind: u16, v: u32) {
        self.bytes(kind, &v.to_ne_bytes());
    }
    /// Host byte order (`nla_put_u64`).
    pub(crate) fn u64(&mut self, kind: u16, v: u64) {
        self.bytes(kind, &v.to_ne_bytes());
    }
    /// `nla_put_string`: the bytes plus a terminating NUL.
    pub(crate) fn string(&mut self, kind: u16, v: &str) {
        self.header(kind, v.len() + 1);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0);
        self.pad();
    }
    /// A nested attribute set written by `body` (no `NLA_F_NESTED` flag, as
    /// the kernel's own `nla_nest_start_noflag` and ipvsadm do).
    pub(crate) fn nested(&mut self, kind: u16, body: impl FnOnce(&mut Writer<'_>)) {
        let start = self.buf.len();
        self.header(kind, 0);
        body(&mut Writer::new(self.buf, self.base));
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
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
