//! `shoal workload tpch-data`: TPC-H's eight tables as `.tbl` files, from the `tpchgen`
//! crate (a Rust port of TPC's dbgen that produces byte-identical rows).
//!
//! ```text
//!   shoal workload tpch-data --scale-factor 0.1 --out /tmp/tpch
//!   → region.tbl nation.tbl part.tbl supplier.tbl partsupp.tbl customer.tbl orders.tbl
//!     lineitem.tbl   (pipe-delimited, a trailing `|` per row, as dbgen writes them)
//! ```
//!
//! `scripts/bench-tpch.py` loads the files into Shoal and PostgreSQL and runs the 22 queries
//! on both (`make bench-tpch`). Rows at scale factor 1: lineitem about 6 million, orders 1.5
//! million; at 0.1 a tenth of that.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};

/// Flags of `shoal workload tpch-data`.
#[derive(Args, Clone)]
pub struct TpchDataArgs {
    /// TPC-H scale factor: 1 is about 1 GB of text.
    #[arg(long, default_value_t = 0.1)]
    pub scale_factor: f64,
    /// The directory to write the `.tbl` files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the eight tables' files and prints each one's row count.
pub fn run(args: TpchDataArgs) -> Result<(), String> {
    let sf = args.scale_factor;
    if !(sf > 0.0 && sf.is_finite()) {
        return Err(format!("--scale-factor must be positive, not {sf}"));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let out = args.out.as_path();
    write(out, "region", RegionGenerator::new(sf, 1, 1).iter())?;
    write(out, "nation", NationGenerator::new(sf, 1, 1).iter())?;
    write(out, "part", PartGenerator::new(sf, 1, 1).iter())?;
    write(out, "supplier", SupplierGenerator::new(sf, 1, 1).iter())?;
    write(out, "partsupp", PartSuppGenerator::new(sf, 1, 1).iter())?;
    write(out, "customer", CustomerGenerator::new(sf, 1, 1).iter())?;
    write(out, "orders", OrderGenerator::new(sf, 1, 1).iter())?;
    write(out, "lineitem", LineItemGenerator::new(sf, 1, 1).iter())?;
    Ok(())
}

/// Writes `rows` (their `Display` is dbgen's line format) to `<dir>/<table>.tbl`.
fn write(dir: &Path, table: &str, rows: impl Iterator<Item = impl Display>) -> Result<(), String> {
    let path = dir.join(format!("{table}.tbl"));
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(failed)?);
    let mut count = 0u64;
    for row in rows {
        writeln!(file, "{row}").map_err(failed)?;
        count += 1;
    }
    file.flush().map_err(failed)?;
    println!("{table}: {count} rows in {}", path.display());
    Ok(())
}
