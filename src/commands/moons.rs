//! `archsearch moons`: the default run's half moons written as CSV (x1,x2,label; train, dev,
//! test in order), to feed the same points to another implementation or back with `--data`.

use std::path::Path;

/// Writes the points to `out`; returns the exit code.
pub fn run(out: &Path) -> anyhow::Result<i32> {
    crate::outdir::check_file_out(out, "csv", "the points")?;
    let d = crate::config::DataSettings::default();
    let points = crate::data::make_moons(d.n_points, d.noise, d.seed);
    crate::data::write_csv(&points, out)?;
    crate::outln!("wrote {} points to {}", points.len(), out.display());
    Ok(0)
}
