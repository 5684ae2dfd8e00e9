//! Genotypes of DARTS (Liu, Simonyan & Yang 2019): the discrete cells derived from the alphas
//! (per node the two strongest incoming edges by their largest non-`none` weight, each with its
//! best non-`none` primitive), written and read in Kubeflow Katib's format
//! `Genotype(normal=[[('op',0),('op',1)],...],normal_concat=range(2,6),reduce=[...],reduce_concat=range(2,6))`.

use rand::RngExt;
use rand_pcg::Pcg64;

use super::ops::Primitive;
use crate::error::UsageError;

/// One cell: per intermediate node its two (primitive, input) edges, strongest first.
pub type CellGenes = Vec<Vec<(Primitive, usize)>>;

#[derive(Clone, Debug, PartialEq)]
pub struct Genotype {
    pub normal: CellGenes,
    pub reduce: CellGenes,
    /// The nodes the cells' outputs concatenate: `range(2, 2 + nodes)`.
    pub concat: (usize, usize),
}

/// Edges kept per node.
pub const EDGES_PER_NODE: usize = 2;

/// The genes of one cell from its softmax weights (rows node by node, one per edge; columns
/// the primitives, `none` last).
pub fn derive_cell(weights: &[Vec<f64>], primitives: &[Primitive], num_nodes: usize) -> CellGenes {
    let mut genes = Vec::new();
    let mut row = 0;
    for i in 0..num_nodes {
        let mut scored: Vec<(f64, usize, Primitive)> = (0..2 + i)
            .map(|j| {
                let w = &weights[row + j];
                let (k, best) = primitives
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p != Primitive::None)
                    .map(|(k, _)| (k, w[k]))
                    .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
                (best, j, primitives[k])
            })
            .collect();
        row += 2 + i;
        // Strongest first; on a tie the earlier input (a stable sort).
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        genes.push(
            scored
                .into_iter()
                .take(EDGES_PER_NODE)
                .map(|(_, j, p)| (p, j))
                .collect(),
        );
    }
    genes
}

/// The genotype of a supernet's weights (`[normal]` or `[normal, reduce]`).
pub fn derive(weights: &[Vec<Vec<f64>>], primitives: &[Primitive], num_nodes: usize) -> Genotype {
    Genotype {
        normal: derive_cell(&weights[0], primitives, num_nodes),
        reduce: weights
            .get(1)
            .map(|w| derive_cell(w, primitives, num_nodes))
            .unwrap_or_default(),
        concat: (2, 2 + num_nodes),
    }
}

/// A genotype drawn uniformly: per node two distinct inputs and a primitive (not `none`) each.
pub fn random(
    primitives: &[Primitive],
    num_nodes: usize,
    reduction: bool,
    rng: &mut Pcg64,
) -> Genotype {
    let ops: Vec<Primitive> = primitives
        .iter()
        .copied()
        .filter(|p| *p != Primitive::None)
        .collect();
    let cell = |rng: &mut Pcg64| -> CellGenes {
        (0..num_nodes)
            .map(|i| {
                let a = rng.random_range(0..2 + i);
                let mut b = rng.random_range(0..1 + i);
                if b >= a {
                    b += 1;
                }
                vec![
                    (ops[rng.random_range(0..ops.len())], a),
                    (ops[rng.random_range(0..ops.len())], b),
                ]
            })
            .collect()
    };
    let normal = cell(rng);
    let reduce = if reduction { cell(rng) } else { Vec::new() };
    Genotype {
        normal,
        reduce,
        concat: (2, 2 + num_nodes),
    }
}

fn cell_text(genes: &CellGenes) -> String {
    let nodes: Vec<String> = genes
        .iter()
        .map(|edges| {
            let e: Vec<String> = edges
                .iter()
                .map(|(p, j)| format!("('{}',{j})", p.name()))
                .collect();
            format!("[{}]", e.join(","))
        })
        .collect();
    format!("[{}]", nodes.join(","))
}

impl std::fmt::Display for Genotype {
    /// Katib's format without spaces, as its trial prints after `Best-Genotype=`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = self.concat;
        write!(
            f,
            "Genotype(normal={},normal_concat=range({a},{b}),reduce={},reduce_concat=range({a},{b}))",
            cell_text(&self.normal),
            cell_text(&self.reduce)
        )
    }
}

impl Genotype {
    /// The line Katib's DARTS metrics collector reads (filter `([\w-]+)=(Genotype.*)`).
    pub fn katib_line(&self) -> String {
        format!("Best-Genotype={self}")
    }

    /// Intermediate nodes per cell.
    pub fn num_nodes(&self) -> usize {
        self.normal.len()
    }

    /// Every (primitive, input) of both cells.
    pub fn all_edges(&self) -> impl Iterator<Item = &(Primitive, usize)> {
        self.normal.iter().chain(&self.reduce).flatten()
    }

    /// Edges whose operation has no weights (pools, skip connections).
    pub fn parameter_free_edges(&self) -> usize {
        self.all_edges().filter(|(p, _)| p.parameter_free()).count()
    }

    /// Reads a genotype in Katib's format, with or without spaces, double or single quotes, and
    /// an optional `Best-Genotype=` in front.
    pub fn parse(text: &str) -> Result<Genotype, UsageError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let body = compact
            .strip_prefix("Best-Genotype=")
            .unwrap_or(&compact)
            .replace('"', "'");
        let mut p = Parser {
            s: body.as_bytes(),
            at: 0,
            text,
        };
        p.expect("Genotype(normal=")?;
        let normal = p.cell()?;
        p.expect(",normal_concat=")?;
        let normal_concat = p.range()?;
        p.expect(",reduce=")?;
        let reduce = p.cell()?;
        p.expect(",reduce_concat=")?;
        let reduce_concat = p.range()?;
        p.expect(")")?;
        if p.at != p.s.len() {
            return Err(p.error("nothing after the closing parenthesis"));
        }
        let nodes = normal.len();
        let bad = |m: String| Err(UsageError::new(format!("malformed genotype `{text}`: {m}")));
        if nodes == 0 {
            return bad("the normal cell has no nodes".into());
        }
        if !reduce.is_empty() && reduce.len() != nodes {
            return bad(format!(
                "the reduction cell has {} nodes, the normal cell {nodes}",
                reduce.len()
            ));
        }
        for (name, range) in [
            ("normal_concat", normal_concat),
            ("reduce_concat", reduce_concat),
        ] {
            if range != (2, 2 + nodes) {
                return bad(format!(
                    "{name} must be range(2,{}) for {nodes} nodes (every node is concatenated), got range({},{})",
                    2 + nodes,
                    range.0,
                    range.1
                ));
            }
        }
        for (cell, genes) in [("normal", &normal), ("reduce", &reduce)] {
            for (i, edges) in genes.iter().enumerate() {
                if edges.is_empty() {
                    return bad(format!("node {} of the {cell} cell has no edges", i + 2));
                }
                for (_, j) in edges {
                    if *j >= 2 + i {
                        return bad(format!(
                            "node {} of the {cell} cell takes input {j}, but only 0..{} come before it",
                            i + 2,
                            i + 1
                        ));
                    }
                }
            }
        }
        Ok(Genotype {
            normal,
            reduce,
            concat: normal_concat,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> UsageError {
        UsageError::new(format!(
            "malformed genotype `{}`: {what} (at character {} without spaces); the format is Katib's, e.g. \
             Genotype(normal=[[('skip_connection',0),('max_pooling_3x3',1)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))",
            self.text, self.at
        ))
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.s[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), UsageError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{token}`")))
        }
    }

    fn number(&mut self) -> Result<usize, UsageError> {
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at].is_ascii_digit() {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.error("expected a whole number"))
    }

    fn range(&mut self) -> Result<(usize, usize), UsageError> {
        self.expect("range(")?;
        let a = self.number()?;
        self.expect(",")?;
        let b = self.number()?;
        self.expect(")")?;
        Ok((a, b))
    }

    fn edge(&mut self) -> Result<(Primitive, usize), UsageError> {
        self.expect("('")?;
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at] != b'\'' {
            self.at += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        let primitive = Primitive::from_name(&name).ok_or_else(|| {
            let names: Vec<&str> = Primitive::all().iter().map(|p| p.name()).collect();
            self.error(&format!(
                "unknown primitive `{name}`; the primitives are {}",
                names.join(", ")
            ))
        })?;
        self.expect("',")?;
        let input = self.number()?;
        self.expect(")")?;
        Ok((primitive, input))
    }

    fn cell(&mut self) -> Result<CellGenes, UsageError> {
        self.expect("[")?;
        let mut nodes = Vec::new();
        if self.eat("]") {
            return Ok(nodes);
        }
        loop {
            self.expect("[")?;
            let mut edges = vec![self.edge()?];
            while self.eat(",") {
                edges.push(self.edge()?);
            }
            self.expect("]")?;
            nodes.push(edges);
            if self.eat("]") {
                return Ok(nodes);
            }
            self.expect(",")?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use Primitive::*;

    #[test]
    fn derivation_on_hand_set_weights() {
        let prims = [SepConv3, MaxPool3, Skip, None];
        // Two nodes: node 0 has edges from inputs 0 and 1, node 1 from 0, 1 and 2.
        let w = vec![
            vec![0.1, 0.2, 0.3, 0.4],   // node 0 <- 0: best non-none skip 0.3
            vec![0.5, 0.1, 0.1, 0.3],   // node 0 <- 1: sep 0.5
            vec![0.2, 0.2, 0.1, 0.5],   // node 1 <- 0: tie sep/max at 0.2: sep (first)
            vec![0.05, 0.05, 0.1, 0.8], // node 1 <- 1: skip 0.1 (none ignored)
            vec![0.1, 0.6, 0.2, 0.1],   // node 1 <- 2: max 0.6
        ];
        let g = derive_cell(&w, &prims, 2);
        assert_eq!(
            g,
            vec![
                vec![(SepConv3, 1), (Skip, 0)],
                vec![(MaxPool3, 2), (SepConv3, 0)]
            ]
        );
        let full = derive(&[w.clone(), w], &prims, 2);
        assert_eq!(full.reduce, full.normal);
        assert_eq!(full.concat, (2, 4));
        assert_eq!(full.parameter_free_edges(), 4);
    }

    #[test]
    fn the_string_round_trips_and_katibs_filter_reads_it() {
        let mut rng = Pcg64::seed_from_u64(1);
        let prims = Primitive::all();
        let re = regex::Regex::new(r"([\w-]+)=(Genotype.*)").unwrap();
        for (nodes, reduction) in [(4, true), (1, false), (3, true)] {
            let g = random(&prims, nodes, reduction, &mut rng);
            let text = g.to_string();
            assert!(!text.contains(' '));
            assert_eq!(Genotype::parse(&text).unwrap(), g);
            let line = g.katib_line();
            assert_eq!(Genotype::parse(&line).unwrap(), g);
            let caps = re.captures(&line).unwrap();
            assert_eq!(&caps[1], "Best-Genotype");
            assert_eq!(&caps[2], text);
            // Every edge of a random genotype: two distinct inputs per node, never none.
            for edges in g.normal.iter().chain(&g.reduce) {
                assert_ne!(edges[0].1, edges[1].1);
                assert!(edges.iter().all(|(p, _)| *p != None));
            }
        }
        // Katib's example, as Python prints it (with spaces).
        let katib = "Genotype(normal=[[('max_pooling_3x3', 0), ('max_pooling_3x3', 1)]], normal_concat=range(2, 3), reduce=[], reduce_concat=range(2, 3))";
        let g = Genotype::parse(katib).unwrap();
        assert_eq!(g.normal, vec![vec![(MaxPool3, 0), (MaxPool3, 1)]]);
        assert!(g.reduce.is_empty());
        assert_eq!(
            g.to_string(),
            "Genotype(normal=[[('max_pooling_3x3',0),('max_pooling_3x3',1)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))"
        );
    }

    #[test]
    fn malformed_genotypes_are_refused_with_the_reason() {
        for (text, says) in [
            ("Genotype(normal=[[('conv_9x9',0)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))", "conv_9x9"),
            ("Genotype(normal=[[('skip_connection',2)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))", "input 2"),
            ("Genotype(normal=[[('skip_connection',0)]],normal_concat=range(2,4),reduce=[],reduce_concat=range(2,3))", "normal_concat"),
            ("Genotype(normal=[],normal_concat=range(2,2),reduce=[],reduce_concat=range(2,2))", "no nodes"),
            ("Genotype(normal=[[('skip_connection',0)]]", "expected"),
            ("hello", "expected"),
        ] {
            let e = Genotype::parse(text).unwrap_err();
            assert!(e.0.contains(says), "{text}: {e}");
        }
    }
}
