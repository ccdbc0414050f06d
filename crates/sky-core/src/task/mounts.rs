//! `file_mounts` in SkyPilot's three forms:
//!
//! ```yaml
//! file_mounts:
//!   ~/config.json: ./config.json        # a local file or directory
//!   /datasets: s3://my-bucket/imagenet  # a bucket path, copied before setup
//!   /ckpt:                              # a storage object
//!     name: my-ckpts
//!     source: ./init                    # a local path, a list of them, a bucket URI, or none
//!     store: s3                         # s3 | gcs | azure; default: the cluster's cloud
//!     mode: MOUNT                       # MOUNT (default) | COPY | MOUNT_CACHED
//!     persistent: true                  # false: the bucket is deleted at `sky down`
//! ```
//!
//! Everything is checked here that can be without a network: the URI's store and bucket name,
//! the fields and their values, SkyPilot's own rules (a URI source names its own bucket, so it
//! takes no `name`; a list source holds local paths only). What this module does not do: look at
//! the filesystem or the buckets (the launch does, before provisioning).

use std::collections::BTreeMap;

use super::FileMount;
use super::error::{TaskError, one_of};
use super::fields::{Ctx, index, join};
use super::yaml::{Kind, Node, Scalar};
use crate::storage::{
    ALLOWED_URIS, BucketUri, StorageMode, StorageSource, StorageSpec, StoreKind, check_bucket_name,
};

const STORAGE_KEYS: &[&str] = &["name", "source", "store", "mode", "persistent"];
/// SkyPilot's stores that Sky does not speak, for the message.
const OTHER_STORES: &[&str] = &["r2", "ibm", "oci", "nebius", "coreweave"];

pub(crate) fn parse(ctx: Ctx<'_>, node: &Node) -> Result<BTreeMap<String, FileMount>, TaskError> {
    let mut out = BTreeMap::new();
    for (k, v) in ctx.opt_map("file_mounts", node)? {
        let dst = k.key_text();
        let path = join("file_mounts", &dst);
        if dst.trim().is_empty() {
            return Err(ctx.at(
                &path,
                k,
                "a file mount needs a destination path on the node",
            ));
        }
        let mount = match &v.kind {
            Kind::Scalar {
                value: Scalar::Str(src),
                ..
            } if BucketUri::looks_like_uri(src) => {
                FileMount::Bucket(BucketUri::parse(src).map_err(|why| ctx.at(&path, v, why))?)
            }
            Kind::Scalar {
                value: Scalar::Str(src),
                ..
            } => FileMount::Local(src.clone()),
            Kind::Map(entries) => FileMount::Storage(storage(ctx, &path, v, entries)?),
            _ => {
                return Err(ctx.expected(
                    &path,
                    v,
                    &format!("a local path, a bucket URI ({ALLOWED_URIS}) or a storage mapping"),
                ));
            }
        };
        out.insert(dst, mount);
    }
    Ok(out)
}

fn storage(
    ctx: Ctx<'_>,
    path: &str,
    node: &Node,
    entries: &[(Node, Node)],
) -> Result<StorageSpec, TaskError> {
    ctx.check_keys(path, entries, STORAGE_KEYS)?;
    let field = |name: &str| entries.iter().find(|(k, _)| k.key_text() == name);
    let name = match field("name") {
        Some((_, v)) => ctx.opt_str(&join(path, "name"), v)?.map(|n| (n, v)),
        None => None,
    };
    let source = match field("source") {
        Some((_, v)) => source(ctx, &join(path, "source"), v)?,
        None => StorageSource::Empty,
    };
    let store = match field("store") {
        Some((_, v)) => match ctx.opt_str(&join(path, "store"), v)? {
            None => None,
            Some(s) => Some(StoreKind::parse(&s).ok_or_else(|| {
                let why = if OTHER_STORES.contains(&s.to_ascii_lowercase().as_str()) {
                    format!("store '{s}' is not one Sky speaks")
                } else {
                    format!("unknown store '{s}'")
                };
                let allowed: Vec<&str> = StoreKind::ALL.iter().map(|k| k.as_str()).collect();
                ctx.at(
                    &join(path, "store"),
                    v,
                    format!("{why}; allowed: {}", one_of(&allowed)),
                )
            })?),
        },
        None => None,
    };
    let mode = match field("mode") {
        Some((_, v)) => match ctx.opt_str(&join(path, "mode"), v)? {
            None => StorageMode::Mount,
            Some(s) => StorageMode::parse(&s).ok_or_else(|| {
                ctx.at(
                    &join(path, "mode"),
                    v,
                    format!(
                        "unknown mode '{s}'; allowed: {}",
                        one_of(StorageMode::NAMES)
                    ),
                )
            })?,
        },
        None => StorageMode::Mount,
    };
    let persistent = match field("persistent") {
        Some((_, v)) => ctx.opt_bool(&join(path, "persistent"), v)?.unwrap_or(true),
        None => true,
    };
    let (name, store) = match (&source, name) {
        (StorageSource::Bucket(uri), Some((_, v))) => {
            return Err(ctx.at(
                &join(path, "name"),
                v,
                format!(
                    "a storage object whose source is a bucket ({uri}) is that bucket: leave \
                     out `name`, or copy the data with a local `source`"
                ),
            ));
        }
        (StorageSource::Bucket(uri), None) => {
            if let Some(store) = store.filter(|s| *s != uri.store) {
                let (_, v) = field("store").expect("store was read from this field");
                return Err(ctx.at(
                    &join(path, "store"),
                    v,
                    format!(
                        "store '{store}' does not match the source {uri}, which is on {}",
                        uri.store
                    ),
                ));
            }
            (uri.bucket.clone(), Some(uri.store))
        }
        (_, Some((name, v))) => {
            if BucketUri::looks_like_uri(&name) {
                return Err(ctx.at(
                    &join(path, "name"),
                    v,
                    format!("'{name}' is a URI; `name` is a bucket name, and a bucket URI goes in `source`"),
                ));
            }
            // Without a store the rules of every store Sky speaks must hold: the bucket may be
            // created on any of them (the cluster's cloud decides).
            let stores: Vec<StoreKind> = store.map_or(StoreKind::ALL.to_vec(), |s| vec![s]);
            for s in stores {
                check_bucket_name(s, &name).map_err(|why| ctx.at(&join(path, "name"), v, why))?;
            }
            (name, store)
        }
        (_, None) => {
            return Err(ctx.at(
                path,
                node,
                "a storage object needs `name` (the bucket to create or use) unless its \
                 `source` is a bucket URI",
            ));
        }
    };
    Ok(StorageSpec {
        name,
        source,
        store,
        mode,
        persistent,
    })
}

fn source(ctx: Ctx<'_>, path: &str, node: &Node) -> Result<StorageSource, TaskError> {
    if node.is_null() {
        return Ok(StorageSource::Empty);
    }
    if let Some(items) = node.as_seq() {
        let mut paths = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = index(path, i);
            let Some(p) = ctx.opt_str(&at, item)? else {
                return Err(ctx.expected(&at, item, "a local path"));
            };
            if BucketUri::looks_like_uri(&p) {
                return Err(ctx.at(
                    &at,
                    item,
                    format!("'{p}': a list source holds local paths only; give a bucket URI as the whole `source`"),
                ));
            }
            paths.push(p);
        }
        if paths.is_empty() {
            return Err(ctx.at(
                path,
                node,
                "an empty list; give local paths, or leave `source` out for an empty bucket",
            ));
        }
        return Ok(StorageSource::Local(paths));
    }
    match ctx.opt_str(path, node)? {
        None => Ok(StorageSource::Empty),
        Some(s) if BucketUri::looks_like_uri(&s) => Ok(StorageSource::Bucket(
            BucketUri::parse(&s).map_err(|why| ctx.at(path, node, why))?,
        )),
        Some(s) => Ok(StorageSource::Local(vec![s])),
    }
}
