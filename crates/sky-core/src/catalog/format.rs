//! The compact, versioned binary form of one cloud's catalog (`*.skycat`).
//!
//! Layout (all integers and floats little-endian):
//! `b"SKYCAT\0\0"`, `u32` format version, then the body: a string table (every name appears once;
//! later fields refer to strings by `u32` index), the cloud id, the source, regions, zones,
//! instance types, offers, attachable accelerators, host rules and images. Optional floats are
//! stored as NaN, optional indices as `u32::MAX`. Offers hold no strings, so decoding the ~90k
//! offers of all clouds is a tight loop over fixed-size records.
//!
//! What this module does not do: touch the file system (see `load`) or check the data's meaning
//! beyond what decoding needs (indices in range); the writer is the only producer.

use std::collections::HashMap;

use crate::cloud::CloudId;

use super::{
    AcceleratorHostRule, AcceleratorInfo, AttachableAcceleratorOffer, CatalogSource, CloudCatalog,
    HostSpec, Image, InstanceType, Offer, Zone,
};

/// First bytes of every catalog file.
pub const MAGIC: &[u8; 8] = b"SKYCAT\0\0";
/// Bumped on any change to the layout; files of another version are rejected, never guessed at.
pub const FORMAT_VERSION: u32 = 1;

const NONE_INDEX: u32 = u32::MAX;
/// Bytes of one encoded offer: instance type, region, zone (u32 each), price, spot (f64 each).
const OFFER_RECORD_LEN: usize = 4 + 4 + 4 + 8 + 8;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a sky catalog file (missing SKYCAT header)")]
    BadMagic,
    #[error(
        "catalog format version {found} is not supported (this build reads version {expected}); \
         run `sky catalog update` to rewrite it"
    )]
    VersionMismatch { found: u32, expected: u32 },
    #[error("catalog file is truncated or corrupt: {0}")]
    Corrupt(String),
}

/// Encodes one cloud's catalog.
pub fn encode(catalog: &CloudCatalog) -> Vec<u8> {
    let mut strings = StringTable::default();
    let mut body = Writer::default();

    body.u32(strings.id(catalog.cloud.as_str()));
    body.u32(strings.id(&catalog.source.description));
    body.u32(strings.id(&catalog.source.data_date));
    body.opt_str(&mut strings, catalog.source.partial_coverage.as_deref());

    body.u32(len32(catalog.regions.len()));
    for region in &catalog.regions {
        body.u32(strings.id(region));
    }
    body.u32(len32(catalog.zones.len()));
    for zone in &catalog.zones {
        body.u32(strings.id(&zone.name));
        body.u32(zone.region);
    }
    body.u32(len32(catalog.instance_types.len()));
    for it in &catalog.instance_types {
        body.u32(strings.id(&it.name));
        body.f64(it.vcpus);
        body.f64(it.memory_gib);
        match &it.accelerator {
            Some(acc) => {
                body.u8(1);
                body.accelerator(&mut strings, acc);
            }
            None => body.u8(0),
        }
        body.opt_str(&mut strings, it.arch.as_deref());
        body.opt_str(&mut strings, it.generation.as_deref());
    }
    body.u32(len32(catalog.offers.len()));
    for offer in &catalog.offers {
        body.u32(offer.instance_type);
        body.u32(offer.region);
        body.u32(offer.zone.unwrap_or(NONE_INDEX));
        body.opt_f64(offer.price);
        body.opt_f64(offer.spot_price);
    }
    body.u32(len32(catalog.attachable_accelerators.len()));
    for offer in &catalog.attachable_accelerators {
        body.accelerator(&mut strings, &offer.accelerator);
        body.u32(offer.region);
        body.u32(offer.zone.unwrap_or(NONE_INDEX));
        body.opt_f64(offer.price);
        body.opt_f64(offer.spot_price);
    }
    body.u32(len32(catalog.host_rules.len()));
    for rule in &catalog.host_rules {
        body.opt_str(&mut strings, rule.accelerator.as_deref());
        body.f64(rule.count);
        match &rule.host {
            HostSpec::InstanceTypes(names) => {
                body.u8(0);
                body.str_list(&mut strings, names);
            }
            HostSpec::Family {
                family_prefixes,
                min_vcpus,
                min_memory_gib,
            } => {
                body.u8(1);
                body.str_list(&mut strings, family_prefixes);
                body.f64(*min_vcpus);
                body.f64(*min_memory_gib);
            }
            HostSpec::Standalone => body.u8(2),
        }
    }
    body.u32(len32(catalog.images.len()));
    for image in &catalog.images {
        body.u32(strings.id(&image.tag));
        body.opt_str(&mut strings, image.region.as_deref());
        body.u32(strings.id(&image.os));
        body.u32(strings.id(&image.os_version));
        body.u32(strings.id(&image.image_id));
        body.u32(strings.id(&image.creation_date));
    }

    let mut out = Writer::default();
    out.bytes.extend_from_slice(MAGIC);
    out.u32(FORMAT_VERSION);
    out.u32(len32(strings.list.len()));
    for s in &strings.list {
        out.u32(len32(s.len()));
        out.bytes.extend_from_slice(s.as_bytes());
    }
    out.bytes.extend_from_slice(&body.bytes);
    out.bytes
}

/// Decodes one cloud's catalog, rejecting other format versions.
pub fn decode(bytes: &[u8]) -> Result<CloudCatalog, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::VersionMismatch {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let n_strings = r.len()?;
    let mut strings = Vec::with_capacity(n_strings);
    for _ in 0..n_strings {
        let len = r.len()?;
        let raw = r.take(len)?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| DecodeError::Corrupt("string table holds invalid UTF-8".into()))?;
        strings.push(s);
    }
    let s = Strings(&strings);

    let cloud_name = s.get(r.u32()?)?;
    let cloud: CloudId = cloud_name
        .parse()
        .map_err(|_| DecodeError::Corrupt(format!("unknown cloud '{cloud_name}'")))?;
    let source = CatalogSource {
        description: s.owned(r.u32()?)?,
        data_date: s.owned(r.u32()?)?,
        partial_coverage: s.opt_owned(r.u32()?)?,
    };

    let n_regions = r.len()?;
    let mut regions = Vec::with_capacity(n_regions);
    for _ in 0..n_regions {
        regions.push(s.owned(r.u32()?)?);
    }
    let n_zones = r.len()?;
    let mut zones = Vec::with_capacity(n_zones);
    for _ in 0..n_zones {
        let name = s.owned(r.u32()?)?;
        let region = check_index(r.u32()?, n_regions, "zone region")?;
        zones.push(Zone { name, region });
    }
    let n_types = r.len()?;
    let mut instance_types = Vec::with_capacity(n_types);
    for _ in 0..n_types {
        let name = s.owned(r.u32()?)?;
        let vcpus = r.f64()?;
        let memory_gib = r.f64()?;
        let accelerator = match r.u8()? {
            0 => None,
            1 => Some(r.accelerator(&s)?),
            tag => return Err(DecodeError::Corrupt(format!("accelerator tag {tag}"))),
        };
        instance_types.push(InstanceType {
            name,
            vcpus,
            memory_gib,
            accelerator,
            arch: s.opt_owned(r.u32()?)?,
            generation: s.opt_owned(r.u32()?)?,
        });
    }
    let n_offers = r.len()?;
    let offer_bytes = n_offers
        .checked_mul(OFFER_RECORD_LEN)
        .ok_or_else(|| DecodeError::Corrupt(format!("offer count {n_offers} overflows")))?;
    let mut offers = Vec::with_capacity(n_offers);
    // Offers are most of the file: read fixed-size records straight from one slice.
    for record in r.take(offer_bytes)?.chunks_exact(OFFER_RECORD_LEN) {
        let u32_at =
            |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
        let f64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&record[i..i + 8]);
            let v = f64::from_le_bytes(b);
            (!v.is_nan()).then_some(v)
        };
        offers.push(Offer {
            instance_type: check_index(u32_at(0), n_types, "offer instance type")?,
            region: check_index(u32_at(4), n_regions, "offer region")?,
            zone: opt_index(u32_at(8), n_zones, "offer zone")?,
            price: f64_at(12),
            spot_price: f64_at(20),
        });
    }
    let n_attachable = r.len()?;
    let mut attachable_accelerators = Vec::with_capacity(n_attachable);
    for _ in 0..n_attachable {
        attachable_accelerators.push(AttachableAcceleratorOffer {
            accelerator: r.accelerator(&s)?,
            region: check_index(r.u32()?, n_regions, "accelerator region")?,
            zone: opt_index(r.u32()?, n_zones, "accelerator zone")?,
            price: r.opt_f64()?,
            spot_price: r.opt_f64()?,
        });
    }
    let n_rules = r.len()?;
    let mut host_rules = Vec::with_capacity(n_rules);
    for _ in 0..n_rules {
        let accelerator = s.opt_owned(r.u32()?)?;
        let count = r.f64()?;
        let host = match r.u8()? {
            0 => HostSpec::InstanceTypes(r.str_list(&s)?),
            1 => HostSpec::Family {
                family_prefixes: r.str_list(&s)?,
                min_vcpus: r.f64()?,
                min_memory_gib: r.f64()?,
            },
            2 => HostSpec::Standalone,
            tag => return Err(DecodeError::Corrupt(format!("host rule tag {tag}"))),
        };
        host_rules.push(AcceleratorHostRule {
            accelerator,
            count,
            host,
        });
    }
    let n_images = r.len()?;
    let mut images = Vec::with_capacity(n_images);
    for _ in 0..n_images {
        images.push(Image {
            tag: s.owned(r.u32()?)?,
            region: s.opt_owned(r.u32()?)?,
            os: s.owned(r.u32()?)?,
            os_version: s.owned(r.u32()?)?,
            image_id: s.owned(r.u32()?)?,
            creation_date: s.owned(r.u32()?)?,
        });
    }
    if r.pos != bytes.len() {
        return Err(DecodeError::Corrupt(format!(
            "{} trailing bytes",
            bytes.len() - r.pos
        )));
    }
    Ok(CloudCatalog {
        cloud,
        source,
        regions,
        zones,
        instance_types,
        offers,
        attachable_accelerators,
        host_rules,
        images,
    })
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("catalog tables hold far fewer than 4 billion entries")
}

fn check_index(index: u32, len: usize, what: &str) -> Result<u32, DecodeError> {
    if (index as usize) < len {
        Ok(index)
    } else {
        Err(DecodeError::Corrupt(format!(
            "{what} index {index} out of range ({len} entries)"
        )))
    }
}

fn opt_index(index: u32, len: usize, what: &str) -> Result<Option<u32>, DecodeError> {
    if index == NONE_INDEX {
        Ok(None)
    } else {
        check_index(index, len, what).map(Some)
    }
}

#[derive(Default)]
struct StringTable {
    list: Vec<String>,
    ids: HashMap<String, u32>,
}

impl StringTable {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = len32(self.list.len());
        self.list.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }
}

#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        self.f64(v.unwrap_or(f64::NAN));
    }
    fn opt_str(&mut self, strings: &mut StringTable, v: Option<&str>) {
        self.u32(v.map_or(NONE_INDEX, |s| strings.id(s)));
    }
    fn str_list(&mut self, strings: &mut StringTable, list: &[String]) {
        self.u32(len32(list.len()));
        for s in list {
            self.u32(strings.id(s));
        }
    }
    fn accelerator(&mut self, strings: &mut StringTable, acc: &AcceleratorInfo) {
        self.u32(strings.id(&acc.name));
        self.f64(acc.count);
        self.opt_f64(acc.memory_gib);
    }
}

struct Strings<'a>(&'a [&'a str]);

impl Strings<'_> {
    fn get(&self, id: u32) -> Result<&str, DecodeError> {
        self.0.get(id as usize).copied().ok_or_else(|| {
            DecodeError::Corrupt(format!(
                "string index {id} out of range ({} strings)",
                self.0.len()
            ))
        })
    }
    fn owned(&self, id: u32) -> Result<String, DecodeError> {
        self.get(id).map(str::to_owned)
    }
    fn opt_owned(&self, id: u32) -> Result<Option<String>, DecodeError> {
        if id == NONE_INDEX {
            Ok(None)
        } else {
            self.owned(id).map(Some)
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| DecodeError::Corrupt(format!("unexpected end at byte {}", self.pos)))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A count; bounded by the bytes left so a corrupt count cannot make us allocate gigabytes.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() - self.pos {
            return Err(DecodeError::Corrupt(format!(
                "count {n} exceeds the remaining {} bytes",
                self.bytes.len() - self.pos
            )));
        }
        Ok(n)
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, DecodeError> {
        let v = self.f64()?;
        Ok((!v.is_nan()).then_some(v))
    }
    fn str_list(&mut self, s: &Strings<'_>) -> Result<Vec<String>, DecodeError> {
        let n = self.len()?;
        (0..n).map(|_| s.owned(self.u32()?)).collect()
    }
    fn accelerator(&mut self, s: &Strings<'_>) -> Result<AcceleratorInfo, DecodeError> {
        Ok(AcceleratorInfo {
            name: s.owned(self.u32()?)?,
            count: self.f64()?,
            memory_gib: self.opt_f64()?,
        })
    }
}

#[cfg(test)]
mod tests;
