//! ARCHITECTURE.md's error-scope tables are the providers' own tables, rendered: this test fails
//! when a row is added, changed or removed in a provider's `errors::TABLE` and the document was
//! not updated. `SKY_BLESS=1 cargo test -p sky-clouds --test error_tables` rewrites the section.
#![cfg(all(feature = "aws", feature = "gcp", feature = "azure"))]

use std::path::PathBuf;

use sky_core::provision::{BlockScope, ErrorRow};

const BEGIN: &str = "<!-- error tables: rendered from each provider's errors::TABLE by crates/sky-clouds/tests/error_tables.rs -->";
const END: &str = "<!-- end of error tables -->";

fn scope(s: BlockScope) -> &'static str {
    match s {
        BlockScope::Zone => "the zone",
        BlockScope::Region => "the region",
        BlockScope::InstanceTypeInZone => "the instance type in the zone",
        BlockScope::InstanceTypeInRegion => "the instance type in the region",
        BlockScope::InstanceType => "the instance type everywhere",
        BlockScope::Accelerators => "accelerators in every region",
        BlockScope::Cloud => "the whole cloud",
    }
}

fn table(title: &str, source: &str, rows: &[ErrorRow]) -> String {
    let mut out = format!(
        "**{title}** (`{source}`; the references are named in that module's documentation)\n\n\
         | code | kind | blocks | reference |\n|---|---|---|---|\n"
    );
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.code,
            r.kind.as_str(),
            scope(r.scope),
            r.reference
        ));
    }
    out
}

fn rendered() -> String {
    [
        table(
            "AWS",
            "crates/sky-aws/src/errors.rs",
            sky_aws::errors::TABLE,
        ),
        table(
            "GCP",
            "crates/sky-gcp/src/errors.rs",
            sky_gcp::errors::TABLE,
        ),
        table(
            "Azure",
            "crates/sky-azure/src/errors.rs",
            sky_azure::errors::TABLE,
        ),
    ]
    .join("\n")
}

#[test]
fn architecture_md_holds_each_clouds_error_table_as_the_code_has_it() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&path).expect("ARCHITECTURE.md");
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("ARCHITECTURE.md has no error tables section (between {BEGIN} and {END})");
    };
    let body = &doc[start + BEGIN.len()..end];
    let want = format!("\n{}", rendered());
    if body == want {
        return;
    }
    if std::env::var_os("SKY_BLESS").is_some() {
        let updated = format!("{}{want}{}", &doc[..start + BEGIN.len()], &doc[end..]);
        std::fs::write(&path, updated).expect("write ARCHITECTURE.md");
        return;
    }
    panic!(
        "ARCHITECTURE.md's error tables differ from the providers' errors::TABLE; run \
         SKY_BLESS=1 cargo test -p sky-clouds --test error_tables and review the diff"
    );
}
