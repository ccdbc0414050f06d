//! SkyPilot's catalog schema v8 (`<cloud>/vms.csv`, `<cloud>/images.csv`,
//! `common/accelerators.csv`) -> the in-memory model.
//!
//! Columns are found by header name, so AWS (`...,Arch`), GCP (`InstanceType,vCPUs,...`) and
//! Azure (`...,Generation`, no `AvailabilityZone`) share one reader. SkyPilot's meanings are kept:
//! an empty `Price` means no on-demand offer, an empty `SpotPrice` no spot offer, and a GCP row
//! with an empty `InstanceType` is an accelerator priced on its own (attachable to a host VM).
//!
//! What this module does not do: read files (callers pass bytes), run at Sky's run time (only
//! `cargo xtask catalog` and tests use it), or invent data the CSV lacks.

use std::collections::HashMap;

use crate::cloud::CloudId;

use super::{
    AcceleratorHostRule, AcceleratorInfo, AttachableAcceleratorOffer, CatalogSource, CloudCatalog,
    Image, InstanceType, Offer, Zone,
};

/// A row or column the reader cannot accept, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum V8Error {
    #[error("{file}: missing column '{column}' (header has: {header})")]
    MissingColumn {
        file: String,
        column: &'static str,
        header: String,
    },
    #[error("{file} line {line}: field '{column}' has value '{value}': {reason}")]
    BadField {
        file: String,
        line: u64,
        column: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "{file} line {line}: instance type '{instance_type}' has {what} '{value}' here but \
         '{first}' on an earlier row"
    )]
    Inconsistent {
        file: String,
        line: u64,
        instance_type: String,
        what: &'static str,
        value: String,
        first: String,
    },
    #[error("{file}: {source}")]
    Csv {
        file: String,
        #[source]
        source: csv::Error,
    },
}

/// Builds one cloud's catalog from its `vms.csv` and (optional) `images.csv` contents.
pub fn parse_cloud(
    cloud: CloudId,
    source: CatalogSource,
    vms_csv: &[u8],
    images_csv: Option<&[u8]>,
    host_rules: Vec<AcceleratorHostRule>,
) -> Result<CloudCatalog, V8Error> {
    let mut builder = Builder {
        catalog: CloudCatalog {
            cloud,
            source,
            regions: Vec::new(),
            zones: Vec::new(),
            instance_types: Vec::new(),
            offers: Vec::new(),
            attachable_accelerators: Vec::new(),
            host_rules,
            images: Vec::new(),
        },
        region_ids: HashMap::new(),
        zone_ids: HashMap::new(),
        type_ids: HashMap::new(),
    };
    let file = format!("{}/vms.csv", cloud.as_str());
    builder.read_vms(&file, vms_csv)?;
    if let Some(images) = images_csv {
        builder.catalog.images = parse_images(&format!("{}/images.csv", cloud.as_str()), images)?;
    }
    Ok(builder.catalog)
}

/// Canonical accelerator names from `common/accelerators.csv` (`AcceleratorName,Clouds`).
pub fn parse_accelerator_names(csv_bytes: &[u8]) -> Result<Vec<String>, V8Error> {
    let file = "common/accelerators.csv";
    let mut reader = csv::Reader::from_reader(csv_bytes);
    let cols = Columns::new(file, &mut reader)?;
    let name_col = cols.require("AcceleratorName")?;
    let mut names = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| V8Error::Csv {
            file: file.into(),
            source,
        })?;
        let name = record.get(name_col).unwrap_or("").trim();
        if !name.is_empty() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn parse_images(file: &str, csv_bytes: &[u8]) -> Result<Vec<Image>, V8Error> {
    // Upstream writes some rows with 6 fields instead of 7 (no BaseImageId).
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_bytes);
    let cols = Columns::new(file, &mut reader)?;
    let (tag, region, os, os_version, image_id, created) = (
        cols.require("Tag")?,
        cols.require("Region")?,
        cols.require("OS")?,
        cols.require("OSVersion")?,
        cols.require("ImageId")?,
        cols.require("CreationDate")?,
    );
    let mut images = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| V8Error::Csv {
            file: file.into(),
            source,
        })?;
        let get = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
        let region_value = get(region);
        images.push(Image {
            tag: get(tag),
            region: (!region_value.is_empty()).then_some(region_value),
            os: get(os),
            os_version: get(os_version),
            image_id: get(image_id),
            creation_date: get(created),
        });
    }
    Ok(images)
}

struct Builder {
    catalog: CloudCatalog,
    region_ids: HashMap<String, u32>,
    zone_ids: HashMap<String, u32>,
    type_ids: HashMap<String, u32>,
}

struct VmColumns {
    instance_type: usize,
    acc_name: usize,
    acc_count: usize,
    vcpus: usize,
    memory: usize,
    gpu_info: usize,
    price: usize,
    spot_price: usize,
    region: usize,
    zone: Option<usize>,
    arch: Option<usize>,
    generation: Option<usize>,
}

impl Builder {
    fn read_vms(&mut self, file: &str, csv_bytes: &[u8]) -> Result<(), V8Error> {
        let mut reader = csv::Reader::from_reader(csv_bytes);
        let cols = Columns::new(file, &mut reader)?;
        let c = VmColumns {
            instance_type: cols.require("InstanceType")?,
            acc_name: cols.require("AcceleratorName")?,
            acc_count: cols.require("AcceleratorCount")?,
            vcpus: cols.require("vCPUs")?,
            memory: cols.require("MemoryGiB")?,
            gpu_info: cols.require("GpuInfo")?,
            price: cols.require("Price")?,
            spot_price: cols.require("SpotPrice")?,
            region: cols.require("Region")?,
            zone: cols.optional("AvailabilityZone"),
            arch: cols.optional("Arch"),
            generation: cols.optional("Generation"),
        };
        for record in reader.records() {
            let record = record.map_err(|source| V8Error::Csv {
                file: file.into(),
                source,
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let row = Row {
                file,
                line,
                record: &record,
            };
            self.add_row(&row, &c)?;
        }
        Ok(())
    }

    fn add_row(&mut self, row: &Row<'_>, c: &VmColumns) -> Result<(), V8Error> {
        let region_name = row.text(c.region);
        if region_name.is_empty() {
            return Err(row.bad("Region", region_name, "must not be empty"));
        }
        let region = intern(&mut self.region_ids, &mut self.catalog.regions, region_name);
        let zone = match c.zone.map(|i| row.text(i)).filter(|z| !z.is_empty()) {
            Some(zone_name) => Some(match self.zone_ids.get(zone_name) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(self.catalog.zones.len())
                        .expect("fewer than 4 billion zones");
                    self.catalog.zones.push(Zone {
                        name: zone_name.to_owned(),
                        region,
                    });
                    self.zone_ids.insert(zone_name.to_owned(), id);
                    id
                }
            }),
            None => None,
        };
        let price = row.opt_f64(c.price, "Price")?;
        let spot_price = row.opt_f64(c.spot_price, "SpotPrice")?;
        let accelerator = row.accelerator(c)?;
        let type_name = row.text(c.instance_type);

        if type_name.is_empty() {
            let accelerator = accelerator.ok_or_else(|| {
                row.bad(
                    "InstanceType",
                    "",
                    "is empty but the row names no accelerator either",
                )
            })?;
            self.catalog
                .attachable_accelerators
                .push(AttachableAcceleratorOffer {
                    accelerator,
                    region,
                    zone,
                    price,
                    spot_price,
                });
            return Ok(());
        }

        let instance = InstanceType {
            name: type_name.to_owned(),
            vcpus: row.f64(c.vcpus, "vCPUs")?,
            memory_gib: row.f64(c.memory, "MemoryGiB")?,
            accelerator,
            arch: c
                .arch
                .map(|i| row.text(i))
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            generation: c
                .generation
                .map(|i| row.text(i))
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        };
        let instance_type = match self.type_ids.get(type_name) {
            Some(&id) => {
                let first = &self.catalog.instance_types[id as usize];
                check_same(row, first, &instance)?;
                id
            }
            None => {
                let id = u32::try_from(self.catalog.instance_types.len())
                    .expect("fewer than 4 billion instance types");
                self.type_ids.insert(type_name.to_owned(), id);
                self.catalog.instance_types.push(instance);
                id
            }
        };
        self.catalog.offers.push(Offer {
            instance_type,
            region,
            zone,
            price,
            spot_price,
        });
        Ok(())
    }
}

/// An instance type's shape must not change between its rows, or one of them is wrong.
fn check_same(row: &Row<'_>, first: &InstanceType, this: &InstanceType) -> Result<(), V8Error> {
    let pairs = [
        ("vCPUs", fmt_f64(first.vcpus), fmt_f64(this.vcpus)),
        (
            "MemoryGiB",
            fmt_f64(first.memory_gib),
            fmt_f64(this.memory_gib),
        ),
        (
            "accelerator",
            format!(
                "{:?}",
                first.accelerator.as_ref().map(|a| (&a.name, a.count))
            ),
            format!(
                "{:?}",
                this.accelerator.as_ref().map(|a| (&a.name, a.count))
            ),
        ),
        (
            "Arch",
            format!("{:?}", first.arch),
            format!("{:?}", this.arch),
        ),
    ];
    for (what, first_value, value) in pairs {
        if first_value != value {
            return Err(V8Error::Inconsistent {
                file: row.file.to_owned(),
                line: row.line,
                instance_type: this.name.clone(),
                what,
                value,
                first: first_value,
            });
        }
    }
    Ok(())
}

fn fmt_f64(v: f64) -> String {
    format!("{v}")
}

fn intern(ids: &mut HashMap<String, u32>, list: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = u32::try_from(list.len()).expect("fewer than 4 billion names");
    list.push(name.to_owned());
    ids.insert(name.to_owned(), id);
    id
}

struct Row<'a> {
    file: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn text(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("").trim()
    }

    fn bad(&self, column: &'static str, value: &str, reason: &str) -> V8Error {
        V8Error::BadField {
            file: self.file.to_owned(),
            line: self.line,
            column,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn opt_f64(&self, i: usize, column: &'static str) -> Result<Option<f64>, V8Error> {
        let value = self.text(i);
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Some)
            .ok_or_else(|| self.bad(column, value, "expected a non-negative number or empty"))
    }

    fn f64(&self, i: usize, column: &'static str) -> Result<f64, V8Error> {
        self.opt_f64(i, column)?
            .ok_or_else(|| self.bad(column, "", "expected a number"))
    }

    fn accelerator(&self, c: &VmColumns) -> Result<Option<AcceleratorInfo>, V8Error> {
        let name = self.text(c.acc_name);
        if name.is_empty() {
            return Ok(None);
        }
        let count = self.f64(c.acc_count, "AcceleratorCount")?;
        Ok(Some(AcceleratorInfo {
            name: name.to_owned(),
            count,
            memory_gib: gpu_memory_gib(self.text(c.gpu_info)),
        }))
    }
}

/// Memory of one accelerator from `GpuInfo`, a Python literal such as
/// `{'Gpus': [{..., 'MemoryInfo': {'SizeInMiB': 40960}}], ...}`. Azure and GCP TPU rows hold just
/// a name there, which carries no memory.
pub fn gpu_memory_gib(gpu_info: &str) -> Option<f64> {
    const KEY: &str = "'SizeInMiB':";
    let start = gpu_info.find(KEY)? + KEY.len();
    let digits: String = gpu_info[start..]
        .trim_start()
        .chars()
        .take_while(|ch| ch.is_ascii_digit() || *ch == '.')
        .collect();
    let mib: f64 = digits.parse().ok()?;
    Some(mib / 1024.0)
}

struct Columns {
    file: String,
    header: csv::StringRecord,
}

impl Columns {
    fn new<R: std::io::Read>(file: &str, reader: &mut csv::Reader<R>) -> Result<Self, V8Error> {
        let header = reader.headers().map_err(|source| V8Error::Csv {
            file: file.into(),
            source,
        })?;
        Ok(Columns {
            file: file.to_owned(),
            header: header.clone(),
        })
    }

    fn optional(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.trim() == name)
    }

    fn require(&self, name: &'static str) -> Result<usize, V8Error> {
        self.optional(name).ok_or_else(|| V8Error::MissingColumn {
            file: self.file.clone(),
            column: name,
            header: self.header.iter().collect::<Vec<_>>().join(","),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
