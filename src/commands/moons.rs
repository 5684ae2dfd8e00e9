//! `archsearch moons`: the default run's half moons written as CSV (x1,x2,label; train, dev,
//! test in order), to feed the same points to another implementation or back with `--data`.

use std::path::Path;

/// Writes the points of `data_seed` to `out`; returns the exit code.
pub fn run(out: &Path, data_seed: u64) -> anyhow::Result<i32> {
    crate::outdir::check_file_out(out, "csv", "the points")?;
    let d = crate::config::DataSettings::default();
    let points = crate::data::make_moons(d.n_points, d.noise, data_seed);
    crate::data::write_csv(&points, out)?;
    let test = crate::data::split(&points, d.train_fraction, d.dev_fraction).test;
    crate::outln!(
        "wrote {} points (data seed {data_seed}) to {}; on its test split (the last {} points) the Bayes-optimal classifier scores {:.2} %",
        points.len(),
        out.display(),
        test.len(),
        100.0 * crate::data::moons_bayes_accuracy(&test, d.noise)
    );
    Ok(0)
}
